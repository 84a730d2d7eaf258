"""Adding a model is one file in models/ (docs/adding-a-model.md): in a copy of the repository, a new
file with a new hyperparameter trains, evaluates and exports through the commands (their mains), its flag in --help,
and nothing else in the copy changes."""
import json
import os
import shutil
import subprocess
import sys

import yaml

from tests.conftest import ROOT

TINY = '''"""Tiny: one hidden layer of `width` units, for the add-a-model test."""
import torch.nn as nn

from config.types import PositiveInt

from .base import Classifier


class Tiny(Classifier):
    """a one-hidden-layer net of a chosen width"""
    name = "tiny"

    def __init__(self, width: PositiveInt = 8, **optim):
        """
        width: hidden units of the one hidden layer
        """
        super().__init__(**optim)
        self.net = nn.Sequential(nn.Flatten(), nn.Linear(3072, width), nn.ReLU(), nn.Linear(width, 10))
'''


def run(copy, *argv):
    return subprocess.run([sys.executable, *argv], cwd=copy, capture_output=True, text=True,
                          env=dict(os.environ, PYTHONWARNINGS="ignore"))


def ignored():
    """.gitignore's patterns as names to leave out of the copy: runs, data, and a .venv (CI makes one in the
    repository: gigabytes of torch)."""
    with open(os.path.join(ROOT, ".gitignore")) as f:
        return [line.strip().strip("/") for line in f if line.strip() and not line.startswith("#")]


def test_a_new_model_file_is_a_model_everywhere(cifar_dir, tmp_path):
    copy = tmp_path / "lab"
    shutil.copytree(ROOT, copy, ignore=shutil.ignore_patterns(".git", "*.png", *ignored()))
    before = sorted(os.path.relpath(os.path.join(d, f), copy) for d, _, fs in os.walk(copy) for f in fs)
    (copy / "models" / "tiny.py").write_text(TINY)

    shown = run(copy, "-c", "import sys, train\ntry: train.main(['--model', 'tiny', '--help'])\n"
                            "except SystemExit: pass\nassert 'torch' not in sys.modules, 'torch imported'")
    assert shown.returncode == 0, shown.stderr
    assert "--width WIDTH" in shown.stdout and "hidden units of the one hidden layer (default: 8)" in shown.stdout
    assert "tiny" in run(copy, "train.py", "--help").stdout  # listed among the models

    refused = run(copy, "train.py", "--model", "tiny", "--width", "0")
    assert refused.returncode == 2 and refused.stderr.count("\n") == 1 and "--width: must be > 0" in refused.stderr

    flags = ["--data-dir", cifar_dir, "--val-size", "50", "--max-steps", "4", "--eval-every", "2", "--batch-size", "16",
             "--eval-batch-size", "64", "--accelerator", "cpu", "--logger", "csv"]
    # Trained, evaluated and exported by the three commands' mains in one Python in the copy: one torch and
    # Lightning import, not three (their command-line behaviour is tests/test_arguments.py's and the others').
    commands = [("train", ["--model", "tiny", "--width", "5", "--output-dir", "runs/tiny", *flags]),
                ("evaluate", ["runs/tiny", "--data-dir", cifar_dir, "--accelerator", "cpu"]),
                ("export", ["runs/tiny", "--format", "onnx", "--data-dir", cifar_dir])]
    done = run(copy, "-c", "import evaluate, export, train\n" + "".join(f"{name}.main({argv!r})\n" for name, argv in commands))
    assert done.returncode == 0, done.stderr
    results = json.loads((copy / "runs" / "tiny" / "results.json").read_text())
    assert results["status"] == "completed" and results["params"] == 3072 * 5 + 5 + 5 * 10 + 10
    assert yaml.safe_load((copy / "runs" / "tiny" / "config.yaml").read_text())["width"] == 5
    metrics = json.loads((copy / "runs" / "tiny" / "eval" / "metrics.json").read_text())
    assert metrics["model"] == "tiny" and abs(metrics["accuracy"] - results["test_acc"]) < 1e-6
    assert (copy / "runs" / "tiny" / "model.onnx").is_file()

    after = sorted(os.path.relpath(os.path.join(d, f), copy) for d, _, fs in os.walk(copy) for f in fs
                   if "runs" not in os.path.relpath(d, copy).split(os.sep) and "__pycache__" not in d)
    assert set(after) - set(before) == {os.path.join("models", "tiny.py")} and set(before) <= set(after)
