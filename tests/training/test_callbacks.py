"""training/callbacks.py: plain log lines where there is no terminal (a SLURM log, a pipe)."""
import os
import re
import subprocess
import sys

import train
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
