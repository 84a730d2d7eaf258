"""--early-stop (training/early_stopping.py): a run whose validation metric stops improving ends as a
`completed` run that says where and why it stopped; a continue keeps that stop, or trains on with more
patience; an interrupted run stops where the uninterrupted one does. CPU, fixture data, in-process.

An lr of 1e-12 leaves the weights as they were, so val/acc never improves after the first evaluation:
with evaluations every 4 steps and a patience of 3, the run stops at step 4 + 3 * 4 = 16, wherever
the data or the CPU."""
import csv
import json
import os
import shutil
import signal

import pytest

import train
from tests.test_resume import SignalAt
from training.early_stopping import EarlyStop

PATIENCE, EVERY = 3, 4
STOP = EVERY + PATIENCE * EVERY


def args(cifar_dir, run_dir, *more):
    return ["--data-dir", cifar_dir, "--output-dir", run_dir, "--val-size", "50", "--batch-size", "16",
            "--eval-batch-size", "64", "--accelerator", "cpu", "--logger", "csv", "--lr", "1e-12",
            "--max-steps", "40", "--eval-every", str(EVERY), "--early-stop", str(PATIENCE), *more]


def results(run_dir):
    with open(os.path.join(run_dir, "results.json")) as f:
        return json.load(f)


def val_steps(run_dir):
    with open(os.path.join(run_dir, "metrics.csv")) as f:
        return [int(row["step"]) + 1 for row in csv.DictReader(f) if row.get("val/acc")]


@pytest.fixture(scope="module")
def stopped(cifar_dir, tmp_path_factory):
    run_dir = str(tmp_path_factory.mktemp("early") / "run")
    train.main(args(cifar_dir, run_dir))
    return run_dir


def test_a_run_that_stops_improving_stops_and_says_so(stopped):
    r = results(stopped)
    assert r["status"] == "completed" and r["steps"] == STOP and r["test_acc"] is not None
    assert r["stopped_early"] == dict(step=STOP, metric="val/acc", best=r["best_val_acc"], best_step=EVERY,
                                      patience=PATIENCE)
    assert r["reason"] == (f"stopped early at step {STOP}: val/acc did not improve in {PATIENCE} evaluations "
                           f"after its best, {r['best_val_acc']:.4f} at step {EVERY}")
    assert val_steps(stopped) == list(range(EVERY, STOP + 1, EVERY))


def test_a_stopped_run_run_again_stays_stopped_and_more_patience_trains_on(stopped, cifar_dir, tmp_path, capsys):
    run_dir = str(tmp_path / "run")
    shutil.copytree(stopped, run_dir)
    before = results(run_dir)
    capsys.readouterr()
    train.main(args(cifar_dir, run_dir))
    assert (f"{run_dir}: stopped early at step {STOP} and tested already, nothing to do (a larger --early-stop "
            "continues it)") in capsys.readouterr().out.splitlines()
    assert results(run_dir) == before

    train.main(args(cifar_dir, run_dir)[:-1] + [str(PATIENCE + 2)])  # --early-stop 5: two more evaluations
    r = results(run_dir)
    assert r["steps"] == STOP + 2 * EVERY and r["stopped_early"]["patience"] == PATIENCE + 2
    assert r["stopped_early"]["best_step"] == EVERY
    assert val_steps(run_dir) == list(range(EVERY, STOP + 2 * EVERY + 1, EVERY))


# after step 8: right after a validation; after 10: between two
@pytest.mark.parametrize("step", [8, 10])
def test_an_interrupted_run_stops_where_the_uninterrupted_one_does(step, stopped, cifar_dir, tmp_path):
    run_dir = str(tmp_path / "run")
    with pytest.raises(SystemExit):
        train.main(args(cifar_dir, run_dir), callbacks=[SignalAt(step, signal.SIGTERM)])
    assert results(run_dir)["status"] == "interrupted"
    train.main(args(cifar_dir, run_dir))
    keep = ("status", "steps", "stopped_early", "reason", "test_acc", "best_val_acc")
    assert {k: results(run_dir)[k] for k in keep} == {k: results(stopped)[k] for k in keep}


def test_early_stop_needs_validation(cifar_dir, tmp_path):
    with pytest.raises(SystemExit) as e:
        train.main(args(cifar_dir, str(tmp_path / "run"), "--val-size", "0"))
    assert e.value.code == "error: --early-stop needs a validation split to watch: --val-size > 0"
    assert not os.path.exists(tmp_path / "run")


def test_loss_is_watched_downwards():
    assert EarlyStop(3, "val/loss").mode == "min" and EarlyStop(3).mode == "max"
