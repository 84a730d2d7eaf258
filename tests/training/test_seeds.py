"""training/seeds.py and training/packing.py: a seed group is one folder of ordinary run folders, and
K runs packed on one device end as each does alone."""
import json
import os
import subprocess
import sys

import pytest

from tests.conftest import ROOT
from training import packing, seeds
from config.resolve import resolve


def group(tmp_path, tiny_args, *flags, env=None):
    """Run `train.py ... --seeds 3 FLAGS` as a user would; (exit status, output, {seed: results})."""
    out = str(tmp_path / "group")
    args = list(tiny_args)
    args[args.index("--output-dir") + 1] = out
    proc = subprocess.run([sys.executable, "train.py", *args, "--seeds", "3", *flags], cwd=ROOT,
                          capture_output=True, text=True, env={**os.environ, **(env or {})})
    results = {}
    for seed in (42, 43, 44):
        path = os.path.join(out, f"s{seed}", "results.json")
        if os.path.isfile(path):
            with open(path) as f:
                results[seed] = json.load(f)
    return proc.returncode, proc.stdout + proc.stderr, results


def test_seed_list_and_flag_stripping():
    assert seeds.seed_list(3, 42) == [42, 43, 44]
    assert seeds.seed_list([7, 1, 7], 42) == [7, 1]
    argv = ["--model", "mlp", "--seeds", "3", "--lr", "0.1", "--per-device=2"]
    assert seeds.strip_own_flags(argv) == ["--model", "mlp", "--lr", "0.1"]


def test_a_group_has_no_seed_in_its_name_and_refuses_misuse(capsys):
    cfg, inv = resolve(["--seeds", "2"])
    assert inv["seeds"] == 2 and "-seeds42-" in cfg["run_name"] and "seeds" not in cfg
    for argv in (["--per-device", "2"], ["--seeds", "0"]):
        with pytest.raises(SystemExit) as e:
            resolve(argv)
        assert e.value.code == 2
        assert len(capsys.readouterr().err.strip().splitlines()) == 1


@pytest.mark.slow  # 8 processes: about 30 s on 2 quiet cores
def test_three_packed_runs_end_as_each_does_alone(tmp_path, tiny_args):
    # Packed, each child gets OMP_NUM_THREADS = cores // 3 = 1 on a machine with fewer than 6 cores;
    # alone we give it the same, so both compute the same ops in the same order on one thread: the
    # numbers must agree exactly, whatever the CPU. (Across thread counts float sums may differ.)
    threads = str(max(1, packing.cores() // 3))
    code, out, packed = group(tmp_path / "packed", tiny_args, "--per-device", "3")
    assert code == 0, out
    assert out.count("started") == 3 and "log " in out
    code, out, alone = group(tmp_path / "alone", tiny_args, env={"OMP_NUM_THREADS": threads, "MKL_NUM_THREADS": threads})
    assert code == 0, out
    assert "test_acc" in out and "95% interval" in out and "n 3 of 3" in out
    for seed in (42, 43, 44):
        assert packed[seed]["status"] == alone[seed]["status"] == "completed"
        assert packed[seed]["seed"] == seed
        for key in ("test_acc", "test_loss", "best_val_acc", "steps"):
            assert packed[seed][key] == alone[seed][key], (seed, key)
    assert len({packed[s]["test_loss"] for s in packed}) > 1  # the seeds did differ


def test_a_rerun_group_skips_its_completed_seeds(tmp_path):
    cfg, _ = resolve(["--seeds", "3", "--output-dir", str(tmp_path / "g"), "--group", "mine"])
    done = tmp_path / "g" / "s43"
    done.mkdir(parents=True)
    (done / "config.yaml").write_text("model: mlp\n")
    (done / "results.json").write_text('{"status": "completed", "test_acc": 0.5}')
    todo = seeds.jobs(["--seeds", "3", "--lr", "0.1"], cfg, seeds.seed_list(3, 42))
    assert [j.name.split("/")[-1] for j in todo] == ["s42", "s44"]
    argv = todo[1].argv
    assert "--seeds" not in argv and argv[argv.index("--seed") + 1] == "44"
    assert argv[argv.index("--output-dir") + 1] == str(tmp_path / "g" / "s44")
    assert "--group" not in argv  # the user's own W&B group stays
    assert "--lr" in argv and todo[1].log == str(tmp_path / "g" / "s44") + ".log"


def test_a_config_file_may_name_the_seeds(tmp_path, monkeypatch, capsys):
    path = tmp_path / "group.yaml"
    path.write_text("lr: 0.01\nseeds: [7, 9]\n")
    cfg, inv = resolve(["--config", str(path)])
    assert inv["seeds"] == [7, 9] and cfg["lr"] == 0.01 and "seeds" not in cfg
    assert seeds.seed_list(inv["seeds"], cfg["seed"]) == [7, 9]
    assert resolve(["--config", str(path), "--seeds", "2"])[1]["seeds"] == 2  # the command line wins
    monkeypatch.setenv(seeds.GROUP_ENV, "runs/g")  # one of the group's runs: one seed, not a group again
    assert "seeds" not in resolve(["--config", str(path)])[1]
    path.write_text("seeds: three\n")
    with pytest.raises(SystemExit):
        resolve(["--config", str(path)])
    assert "seeds: expected a count" in capsys.readouterr().err
