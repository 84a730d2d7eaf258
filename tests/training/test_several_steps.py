"""--steps-per-call K: K optimizer steps in each Lightning step train what K = 1 trains, step for step: the same
weights, the same logged values at the same steps, the same exact resume and divergence step. CPU, fixture
data, in-process, seconds."""
import csv
import glob
import json
import os
import signal

import pytest
import torch
import wandb

import train
from runfolder import RunFolder, checkpoint
from runfolder.folder import RAW_STATE
from tests.test_loggers import isolate_wandb
from tests.test_resume import SignalAt, results
from tests.wandb_records import config_and_history
from training.run import DIVERGED_EXIT

# 250 train images / batch 16 = 15 batches an epoch: 24 steps in lists of 4 cross the data's epoch boundary
# inside a list, and Lightning's epochs (3 lists) end elsewhere than the data's. Adam, a warm-up and cosine
# schedule, gradient clipping, dropout, crops and MixUp each carry state or a step count a slip would show.
FLAGS = ["--max-steps", "24", "--eval-every", "8", "--log-every", "4", "--augment", "--dropout", "0.2",
         "--mixup", "0.2", "--optimizer", "adam", "--lr", "0.003", "--schedule", "cosine", "--warmup-steps", "3",
         "--grad-clip", "0.5"]


def args(cifar_dir, run_dir, k, flags=FLAGS):
    return ["--data-dir", cifar_dir, "--output-dir", run_dir, "--val-size", "50", "--batch-size", "16",
            "--eval-batch-size", "64", "--accelerator", "cpu", "--logger", "csv", "--steps-per-call", str(k), *flags]


def logged(run_dir):
    """metrics.csv as {(step, name): value}, the epoch column included."""
    with open(os.path.join(run_dir, "metrics.csv")) as f:
        return {(r["step"], k): v for r in csv.DictReader(f) for k, v in r.items() if v and k != "step"}


def weights(run_dir):
    return checkpoint.read(RunFolder(run_dir).last_path)["state_dict"]


@pytest.fixture(scope="module")
def one_step_each(cifar_dir, tmp_path_factory):
    run_dir = str(tmp_path_factory.mktemp("k1") / "run")
    train.main(args(cifar_dir, run_dir, 1))
    return run_dir


def test_four_steps_per_call_train_what_one_does(one_step_each, cifar_dir, tmp_path, capsys):
    run_dir = str(tmp_path / "run")
    train.main(args(cifar_dir, run_dir, 4))
    assert "cpu, 32-true, 4 steps per Lightning step |" in capsys.readouterr().out.splitlines()[0]
    mine, theirs = weights(run_dir), weights(one_step_each)
    assert mine.keys() == theirs.keys() and all(torch.equal(mine[k], theirs[k]) for k in mine)
    assert logged(run_dir) == logged(one_step_each)  # every loss, accuracy, lr and validation, at its step
    assert {step for step, name in logged(run_dir) if name == "train/loss"} == {"3", "7", "11", "15", "19", "23"}
    assert results(run_dir) == results(one_step_each)


def test_the_weight_average_moves_after_each_of_the_k_steps(cifar_dir, tmp_path):
    """--ema: the average is updated after every optimizer step, not once per Lightning step: the averaged
    and the raw weights (batch norm's statistics too) end as K = 1's."""
    flags = FLAGS + ["--ema", "0.9", "--batchnorm"]
    ends = []
    for k in (1, 4):
        run_dir = str(tmp_path / f"k{k}")
        train.main(args(cifar_dir, run_dir, k, flags))
        saved = checkpoint.read(RunFolder(run_dir).last_path)
        ends.append((saved["state_dict"], saved[RAW_STATE], results(run_dir)))
    (avg1, raw1, res1), (avg4, raw4, res4) = ends
    assert all(torch.equal(avg1[n], avg4[n]) for n in avg1) and all(torch.equal(raw1[n], raw4[n]) for n in raw1)
    assert not all(torch.equal(avg1[n], raw1[n]) for n in avg1)  # an average, not the weights
    assert res1 == res4


@pytest.mark.parametrize("step", [12, 16])  # mid data epoch; just after a validation, in the data's second epoch
def test_a_stopped_run_continues_as_if_never_stopped(step, one_step_each, cifar_dir, tmp_path):
    run_dir = str(tmp_path / "run")
    with pytest.raises(SystemExit):
        train.main(args(cifar_dir, run_dir, 4), callbacks=[SignalAt(step, signal.SIGTERM)])
    assert results(run_dir)["steps"] == step
    train.main(args(cifar_dir, run_dir, 4))
    mine, theirs = weights(run_dir), weights(one_step_each)
    assert all(torch.equal(mine[k], theirs[k]) for k in mine)
    assert logged(run_dir) == logged(one_step_each) and results(run_dir) == results(one_step_each)


def test_divergence_names_the_step_k1_names(cifar_dir, tmp_path, capsys):
    """The loss of each of the K steps is watched: the first bad one is named, not the list's last."""
    flags = ["--max-steps", "24", "--eval-every", "24", "--log-every", "8", "--optimizer", "sgd", "--lr", "30",
             "--momentum", "0.9"]
    said = []
    for k in (1, 4):
        with pytest.raises(SystemExit) as stop:
            train.main(args(cifar_dir, str(tmp_path / f"k{k}"), k, flags))
        assert stop.value.code == DIVERGED_EXIT
        said.append(capsys.readouterr().err.strip().splitlines()[-1])
    assert "not finite at step" in said[0] and said[0] == said[1]


@pytest.mark.parametrize("flags, says", [
    (["--max-steps", "10"], "--steps-per-call 4 must divide --max-steps 10"),
    (["--max-steps", "8", "--log-every", "6"], "must divide --log-every 6"),
    (["--max-steps", "8", "--eval-every", "6"], "must divide --eval-every 6"),
    (["--max-steps", "8", "--accumulate", "2"], "does not work with --accumulate"),
    (["--max-steps", "8", "--preset", "fast"], "FastResNet has its own"),
    (["--max-steps", "8", "--model", "numpy_mlp"], "has its own"),
])
def test_what_it_cannot_do_is_one_line_before_anything_is_written(flags, says, cifar_dir, tmp_path):
    run_dir = str(tmp_path / "run")
    with pytest.raises(SystemExit) as stop:  # its message is what the user sees
        train.main(args(cifar_dir, run_dir, 4, ["--log-every", "4", "--eval-every", "4", *flags]))
    err = str(stop.value.code)
    assert says in err and len(err.splitlines()) == 1, err
    assert not os.path.exists(run_dir)


def test_wandb_gets_the_steps_and_values_k1_gives_it(cifar_dir, tmp_path, monkeypatch):
    """The W&B run file's history: every number at K = 4 is K = 1's, in the same row at the same trainer/global_step."""
    isolate_wandb(monkeypatch, str(tmp_path))
    rows = {}
    for k in (1, 4):
        run_dir = str(tmp_path / f"k{k}")
        train.main(args(cifar_dir, run_dir, k) + ["--logger", "wandb"])
        wandb.teardown()  # the run file is complete once the W&B service has flushed it
        _, history = config_and_history(glob.glob(os.path.join(run_dir, "wandb", "offline-run-*", "run-*.wandb"))[0])
        rows[k] = [{key: v for key, v in row.items()  # the numbers; not the tables' per-run artifact names
                    if not key.startswith("_") and isinstance(json.loads(v), (int, float))}
                   for row in history]
    assert len(rows[4]) > 6 and rows[4] == rows[1]
