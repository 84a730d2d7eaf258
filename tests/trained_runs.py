"""Tiny finished run folders, trained once per test session and shared by the tests that read runs
(loading, evaluate, predict, export). Treat them as read-only; copy one to change it."""
import os

import train
from config import signatures
from tests.conftest import made_once

MODELS = tuple(signatures.models())  # every registered model: loading, evaluating and exporting are generic over them
EXTRA_FLAGS = {"resnet": ["--tta", "2"]}  # the config's TTA is part of what evaluate and export must reproduce
_made = {}


def flags(model, cifar_dir, out):
    """train.py's flags for a 5-step run of `model` on the fixture data into `out` (CSV logger)."""
    return ["--model", model, "--data-dir", cifar_dir, "--output-dir", out, "--val-size", "50",
            "--max-steps", "5", "--eval-every", "5", "--batch-size", "16", "--eval-batch-size", "64",
            "--accelerator", "cpu", "--logger", "csv", *EXTRA_FLAGS.get(model, [])]


def trained_run(model, cifar_dir, tmp_path_factory):
    """The folder of a 5-step run of `model` on the fixture data (train.py's own path, `flags`), trained
    once for all pytest-xdist processes (conftest.made_once)."""
    if model not in _made:
        folder = made_once(tmp_path_factory, f"run-{model}",
                           lambda path: train.main(flags(model, cifar_dir, os.path.join(path, "run"))))
        _made[model] = os.path.join(folder, "run")
    return _made[model]
