"""Sweep files: each parses, each command it makes is one train.py accepts with the values intended,
and the local runner runs a small sweep on fixture data."""
import glob
import json
import os
import shlex

import pytest
import yaml

from config.resolve import resolve
from sweeps import run_local

# The grid files; random and bayes files are sweeps/search.py's (tests/sweeps/test_search.py checks them).
SWEEPS = sorted(p for p in glob.glob(os.path.join(run_local.ROOT, "sweeps", "*.yaml"))
                if yaml.safe_load(open(p)).get("method") == "grid")


def test_there_are_the_four_sweeps():
    names = {os.path.basename(p) for p in SWEEPS}
    assert {"table1.yaml", "activation.yaml", "norm.yaml", "resnet_lr.yaml"} <= names


@pytest.mark.parametrize("path", SWEEPS, ids=os.path.basename)
def test_every_command_of_a_sweep_is_accepted_by_train(path):
    sweep = run_local.load(path)
    assert sweep["program"] == "train.py" and any("${args" in c for c in sweep["command"])
    configs = run_local.grid(sweep)
    assert len(configs) > 1
    for i, params in enumerate(configs):
        argv = run_local.command(sweep, i)
        assert argv[1] == os.path.join(run_local.ROOT, "train.py")
        try:
            cfg, _ = resolve(argv[2:])
        except SystemExit:
            pytest.fail(f"{path} config {i}: train.py rejects {argv[2:]}")
        for key, value in params.items():  # the value the sweep meant is the value the run gets
            assert cfg[key.replace("-", "_")] == value, (path, i, key)


def test_only_picks_the_config_that_changes_just_those_parameters():
    sweep = run_local.load(os.path.join(run_local.ROOT, "sweeps", "table1.yaml"))
    configs = run_local.grid(sweep)
    base, adam = (configs[i] for i in run_local.select(sweep, ["", "optimizer=adam hidden=[64,128]"]))
    assert base == dict(model="mlp", optimizer="sgd", hidden=[100], batchnorm=False, **{"batch-size": 200},
                        activation="elu", **{"max-steps": 1400})
    assert adam == dict(base, optimizer="adam", hidden=[64, 128])
    for bad in ("optimizer=rmsprop", "width=3", "adam"):
        with pytest.raises(run_local.BadInput):
            run_local.select(sweep, [bad])


def test_runner_counts_lists_and_rejects_a_bad_index(capsys):
    table1 = os.path.join(run_local.ROOT, "sweeps", "table1.yaml")
    assert run_local.main([table1, "--count"]) == 0
    assert capsys.readouterr().out.strip() == "144"
    run_local.main([table1, "--list", "--index", "5", "--", "--data-dir", "d"])
    line = capsys.readouterr().out.strip()
    assert line.startswith("5 ") and "table1-005" in line and line.endswith("--data-dir d")
    with pytest.raises(SystemExit) as e:
        run_local.main([table1, "--index", "144"])
    assert e.value.code == 2


def test_local_runner_runs_a_two_config_sweep(cifar_dir, tmp_path, capsys):
    sweep = dict(name="two", program="train.py", method="grid", metric=dict(name="test/acc", goal="maximize"),
                 parameters={"model": {"value": "mlp"}, "hidden": {"values": [[8], [8, 8]]},
                             "batchnorm": {"value": True}},
                 command=["${env}", "${interpreter}", "${program}", "${args_no_boolean_flags}"])
    path = tmp_path / "two.yaml"
    path.write_text(yaml.safe_dump(sweep))
    out = tmp_path / "runs"
    flags = ["--data-dir", cifar_dir, "--val-size", "50", "--max-steps", "3", "--eval-every", "3",
             "--batch-size", "16", "--eval-batch-size", "64", "--accelerator", "cpu", "--logger", "csv"]
    assert run_local.main([str(path), "--out", str(out), "--", *flags]) == 0
    for i, hidden in enumerate([[8], [8, 8]]):
        folder = out / f"two-{i:03d}"
        cfg = yaml.safe_load((folder / "config.yaml").read_text())
        assert cfg["hidden"] == hidden and cfg["batchnorm"] is True and cfg["group"] == "two"
        assert json.loads((folder / "results.json").read_text())["steps"] == 3


def test_seeds_make_each_config_a_seed_group(capsys):
    table1 = os.path.join(run_local.ROOT, "sweeps", "table1.yaml")
    run_local.main([table1, "--list", "--index", "5", "--seeds", "2", "--", "--seed", "7"])
    lines = capsys.readouterr().out.strip().splitlines()
    assert len(lines) == 2
    for line, seed in zip(lines, (7, 8)):
        argv = shlex.split(line.split("  ", 1)[1])
        assert argv[argv.index("--output-dir") + 1] == os.path.join("runs", "table1", "table1-005", f"s{seed}")
        assert argv[argv.index("--group") + 1] == "table1-005"  # W&B pools one config's seeds
        assert argv[len(argv) - 1 - argv[::-1].index("--seed") + 1] == str(seed)  # the last --seed wins
    activation = os.path.join(run_local.ROOT, "sweeps", "activation.yaml")
    with pytest.raises(SystemExit) as e:
        run_local.main([activation, "--seeds", "2", "--list"])  # it has seed as a parameter already
    assert e.value.code == 2
