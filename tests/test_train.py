"""train.py end to end on fixture data, config layering and bad input."""
import json
import os
import subprocess
import sys

import pytest
import yaml

import train
from config.resolve import resolve
from tests.conftest import ROOT


def run_cli(args, **env):
    """train.py in a subprocess: what a user sees (exit status, stderr)."""
    return subprocess.run([sys.executable, "train.py", *args], cwd=ROOT, capture_output=True, text=True,
                          timeout=300, env={**os.environ, **env})


def config_of(argv):
    return resolve(argv)[0]


def test_tiny_run_writes_the_run_folder(tiny_args, tmp_path, capsys):
    results = train.main(["--model", "mlp", *tiny_args])
    run = tmp_path / "run"
    assert {"config.yaml", "metrics.csv", "results.json", "checkpoints"} <= set(os.listdir(run))
    assert "last.ckpt" in os.listdir(run / "checkpoints")
    saved = json.loads((run / "results.json").read_text())
    for key in ("test_acc", "test_loss", "best_val_acc", "steps", "wall_seconds", "model", "seed"):
        assert key in saved
    assert saved["steps"] == 5 and saved["model"] == "mlp" and 0 <= saved["test_acc"] <= 1
    assert saved == results
    config = yaml.safe_load((run / "config.yaml").read_text())
    assert config["max_steps"] == 5 and config["hidden"] == [100]  # flag, and the course default
    last_line = capsys.readouterr().out.strip().splitlines()[-1]
    assert last_line.startswith(f"test_acc {saved['test_acc']:.4f}") and str(run) in last_line


def test_same_seed_same_metrics(tiny_args, tmp_path):
    first = train.main(["--model", "mlp", *tiny_args, "--output-dir", str(tmp_path / "a")])
    second = train.main(["--model", "mlp", *tiny_args, "--output-dir", str(tmp_path / "b")])
    assert (first["test_acc"], first["test_loss"]) == (second["test_acc"], second["test_loss"])
    metrics = [(tmp_path / d / "metrics.csv").read_text() for d in "ab"]
    assert metrics[0] == metrics[1]


def test_defaults_preset_and_flags_layer_in_that_order():
    assert config_of([])["model"] == "mlp" and config_of([])["lr"] == 1e-3  # course default
    best = config_of(["--preset", "seed-best"])
    assert (best["optimizer"], best["hidden"], best["batchnorm"], best["max_steps"]) == ("adam", [64, 128, 256],
                                                                                         True, 10000)
    assert config_of(["--preset", "seed-best", "--max-steps", "7"])["max_steps"] == 7  # flags win


def test_help_lists_models_and_presets(capsys):
    with pytest.raises(SystemExit):
        train.main(["--help"])
    out = capsys.readouterr().out
    assert all(name in out for name in ("numpy_mlp", "layernorm_mlp", "resnet", "seed-best"))


@pytest.mark.parametrize("argv, message", [
    (["--model", "vgg"], "invalid choice: 'vgg'"),
    (["--preset", "best"], "invalid choice: 'best'"),
    (["--lr", "-1"], "--lr: must be > 0"),
    (["--lr", "0"], "--lr: must be > 0"),
    (["--batch-size", "0"], "--batch-size: must be > 0"),
    (["--max-steps", "-5"], "--max-steps: must be > 0"),
    (["--hidden", "64", "0"], "--hidden: must be > 0"),
    (["--lr", "fast"], "expected a float"),
    (["--steps-per-call", "ten"], "--steps-per-call: expected an int or auto, got 'ten'"),
    (["--crop-padding", "-1"], "--crop-padding: must be >= 0"),
    (["--val-size", "-5"], "--val-size: must be >= 0"),
])
def test_bad_arguments_end_in_one_usage_line(argv, message, capsys):
    with pytest.raises(SystemExit) as e:
        train.main(argv)
    err = capsys.readouterr().err
    assert e.value.code == 2 and message in err and len(err.strip().splitlines()) == 1


def test_empty_data_dir_without_network_is_one_line(tmp_path):
    # a proxy that refuses at once stands in for "no network", on any machine
    proc = run_cli(["--data-dir", str(tmp_path / "nothing"), "--output-dir", str(tmp_path / "run")],
                   https_proxy="http://127.0.0.1:9", http_proxy="http://127.0.0.1:9")
    lines = proc.stderr.strip().splitlines()
    assert proc.returncode == 1 and len(lines) == 1 and proc.stdout == ""  # nothing started: no W&B, no folder
    assert lines[0].startswith("error: no CIFAR-10 in") and str(tmp_path / "nothing") in lines[0]
    assert "cifar-10-batches-py" in lines[0] and not (tmp_path / "run").exists()
