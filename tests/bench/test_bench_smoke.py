"""Every benchmark runs end to end at tiny sizes, so none can rot. Times are never asserted: only that
each module gives well-formed rows, and that run_all collects them, skips what is missing and reports
what fails."""
import math
import sys
import types

import pytest

from bench import common, run_all

STATS = ("median", "min", "max")


def check_row(r):
    assert {"what", "unit", "ours", "baseline", "ratio", "goal", "met"} <= set(r)
    for side in (r["ours"], r["baseline"]):
        assert set(STATS) <= set(side) and side["min"] <= side["median"] <= side["max"]
        assert all(math.isfinite(side[k]) and side[k] > 0 for k in STATS)
    assert math.isfinite(r["ratio"]) and r["ratio"] > 0
    assert r["met"] is None or r["met"] == (r["ratio"] >= float(r["goal"].split()[1].rstrip("x")))


# memory starts two fresh Pythons (torch, Lightning, torchvision imports): slow on a busy machine;
# test_memory_parts covers its code in-process by default.
@pytest.mark.parametrize("name", [pytest.param(n, marks=pytest.mark.slow) if n == "memory" else n
                                  for n in run_all.MODULES])
def test_module_gives_well_formed_rows(name, cifar_dir, capsys, monkeypatch):
    module = run_all.load(name)
    if module is None:
        pytest.skip(f"bench/{name}.py is not there yet")
    if name == "packing":
        # It times whole train.py processes, three ways (6 at --quick: ~30 s of torch imports); with
        # --print-config each resolves the bench's flags and exits, so the bench's own code runs end to end
        # in seconds. Packed train.py runs that train: tests/training/test_seeds.py's
        # test_three_packed_runs_end_as_each_does_alone and test_search.py's two-worker test.
        monkeypatch.setitem(module.QUICK, "flags", [*module.QUICK["flags"], "--print-config"])
    rows, notes, failed = run_all.collect(quick=True, data_dir=cifar_dir, modules=[name])
    assert not failed, notes
    assert rows, notes
    for r in rows:
        check_row(r)
    common.print_table(rows)
    lines = capsys.readouterr().out.splitlines()
    assert sum(line.startswith("| ") for line in lines) == len(rows) + 1  # the header, then one line per row


def test_device_resident_path_runs(cifar_dir):
    """The GPU row's code, run on the CPU, so a machine without a GPU still checks it."""
    import torch

    from bench import data_pipeline

    check_row(data_pipeline.device_row(data_pipeline.QUICK, cifar_dir, torch.device("cpu")))


def test_memory_parts(cifar_dir):
    import os

    from bench import memory

    assert os.getpid() in memory.tree(os.getpid())
    assert 10 < memory.pss_mib(os.getpid()) < 100_000  # this process: torch is loaded, so tens of MiB at least
    assert memory.pss_mib(2**22 + 1) == 0.0  # a pid that cannot exist: gone processes count 0
    for side in ("ours", "torchvision"):
        memory.epoch(side, cifar_dir, val_size=50)


def test_run_all_skips_missing_and_reports_failures(monkeypatch, capsys):
    broken = types.ModuleType("bench.broken_for_test")
    broken.rows = lambda quick=False: 1 / 0
    monkeypatch.setitem(sys.modules, "bench.broken_for_test", broken)
    monkeypatch.setattr(run_all, "MODULES", ["no_such_bench", "broken_for_test"])
    assert run_all.main(["--quick"]) == 1
    out = capsys.readouterr().out
    assert "bench.no_such_bench: not there, skipped" in out
    assert "bench.broken_for_test: FAILED (ZeroDivisionError" in out
    assert "| what | unit |" in out and "machine: CPU" in out and "command: python -m bench.run_all --quick" in out
