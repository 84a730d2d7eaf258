"""training/callbacks.py: plain log lines where there is no terminal (a SLURM log, a pipe); the divergence guard;
the learning rate logged with the step's metrics."""
import csv
import os
import re
import subprocess
import sys

import pytest
import torch

import train
from models.base import lr_factor
from runfolder.folder import METRICS_CSV
from training.callbacks import Diverged, StopOnDivergence
from tests.conftest import ROOT

NUMBER = r"\d+\.\d{4}"  # every metric with 4 decimals: no float noise
TRAIN = rf"step (\d+)/12( \| train/loss {NUMBER})? \| [\d.e+]+ steps/s \| \d+\.\ds"  # step 1: no loss logged yet
VAL = rf"step (\d+)/12 \| train/loss {NUMBER} \| val/loss {NUMBER} \| val/acc {NUMBER} \| \d+\.\ds"
DONE = rf"done 12/12 \| train/loss {NUMBER} \| \d+\.\ds"


def progress(out):
    return [line for line in out.splitlines() if line.startswith(("step ", "done "))]


def test_plain_lines_from_the_first_step_at_the_bars_cadence(tiny_args, capsys):
    capsys.readouterr()
    train.main(["--model", "mlp", *tiny_args, "--max-steps", "12", "--eval-every", "10", "--log-every", "5"])
    lines = progress(capsys.readouterr().out)  # pytest's stdout is no terminal: plain lines, no bar
    assert len(lines) == 4, lines
    assert [int(re.fullmatch(TRAIN, line).group(1)) for line in lines[:2]] == [1, 5]  # the first step, then every 5
    assert "train/loss" in lines[1]  # logged every --log-every steps
    assert re.fullmatch(VAL, lines[2]).group(1) == "10"  # a validation step: its own line only
    assert re.fullmatch(DONE, lines[3])


def test_a_piped_run_prints_its_lines_and_nothing_else(cifar_dir, tmp_path):
    done = subprocess.run([sys.executable, os.path.join(ROOT, "train.py"), "--data-dir", cifar_dir,
                           "--output-dir", str(tmp_path / "run"), "--val-size", "50", "--max-steps", "12",
                           "--eval-every", "10", "--log-every", "5", "--batch-size", "16", "--eval-batch-size", "64",
                           "--accelerator", "cpu", "--logger", "csv"],
                          cwd=tmp_path, capture_output=True, text=True, timeout=600,
                          env={**os.environ, "PYTHONWARNINGS": "ignore::UserWarning:datamodules.cifar10"})  # tiny data
    assert done.returncode == 0 and done.stderr == ""  # no stray warnings
    lines = done.stdout.splitlines()
    assert lines[0].startswith("mlp | ") and f"run {tmp_path / 'run'}" in lines[0]
    assert all(re.fullmatch(p, line) for p, line in zip((TRAIN, TRAIN, VAL, DONE), lines[1:5])), lines
    assert re.fullmatch(rf"test_acc {NUMBER}  test_loss {NUMBER}  run {re.escape(str(tmp_path / 'run'))}", lines[5])
    assert len(lines) == 6


class Trainer:  # what StopOnDivergence reads of a Trainer
    world_size, global_step = 1, 0

    def __init__(self, weights):
        self.lightning_module = torch.nn.Linear(1, 1)
        self.lightning_module.weight.data.fill_(weights)


@pytest.mark.parametrize("bad_step, loss", [(7, float("nan")), (10, float("inf")), (1, float("-inf"))])
def test_the_divergence_guard_names_the_first_bad_step_between_its_reads(bad_step, loss):
    guard, trainer = StopOnDivergence({"log_every": 10, "lr": 0.1}), Trainer(1.0)
    with pytest.raises(Diverged, match=rf"not finite at step {bad_step};") as stopped:
        for step in range(1, 21):  # the losses after the bad one are not finite either, as in a real run
            trainer.global_step = step
            guard.on_train_batch_end(trainer, None, torch.tensor(loss if step >= bad_step else 1.0), None, step)
    assert trainer.global_step == 10  # read at the next log step, not before
    assert "--lr" in str(stopped.value)


def test_the_divergence_guard_reads_the_weights_before_a_checkpoint():
    guard, trainer = StopOnDivergence({"log_every": 10, "lr": 0.1}), Trainer(float("nan"))
    trainer.global_step = 3
    for _ in range(3):
        guard.on_train_batch_end(trainer, None, torch.tensor(1.0), None, 0)
    guard.check(trainer)  # the losses were finite
    with pytest.raises(Diverged, match="weights are not finite after step 3"):
        guard.check(trainer, weights=True)


def test_the_learning_rate_is_logged_with_the_steps_metrics(tiny_args, tmp_path):
    train.main(["--model", "mlp", *tiny_args, "--max-steps", "12", "--log-every", "5", "--logger", "csv",
                "--schedule", "cosine"])
    with open(tmp_path / "run" / METRICS_CSV) as f:
        rows = [r for r in csv.DictReader(f) if r.get("lr-SGD")]
    assert [int(r["step"]) for r in rows] == [4, 9] and all(r["train/loss"] for r in rows)  # one row a logged step
    cosine = lr_factor("cosine", 0, 12)
    assert [float(r["lr-SGD"]) for r in rows] == [1e-3 * cosine(4), 1e-3 * cosine(9)]  # as set: not rounded to float32
