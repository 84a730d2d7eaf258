"""Resume (resume.py and train.py's use of it): a run stopped by a signal leaves a checkpoint, and the
continued run ends exactly where an uninterrupted run ends: data order, augmentation, dropout RNG,
optimizer and schedule all come back. CPU, fixture data, in-process, seconds."""
import csv
import json
import os
import signal
import time
import zipfile

import pytest
import pytorch_lightning as pl

import train
from training.resume import latest_checkpoint
from runfolder.folder import RunFolder

# 250 train images / batch 16 = 15 steps an epoch, so 24 steps cross an epoch boundary; augmentation,
# dropout, Adam and a warm-up + cosine schedule each carry state a sloppy resume would lose.
FLAGS = ["--max-steps", "24", "--eval-every", "8", "--log-every", "1", "--augment", "--dropout", "0.2",
         "--optimizer", "adam", "--lr", "0.003", "--schedule", "cosine", "--warmup-steps", "3"]


class SignalAt(pl.Callback):
    """Sends this process a real signal after a given optimizer step."""

    def __init__(self, step, signum):
        self.step, self.signum = step, signum

    def on_train_batch_end(self, trainer, *args):
        if trainer.global_step == self.step:
            os.kill(os.getpid(), self.signum)


def rows(run_dir):
    """metrics.csv's rows as (step, the names logged in it), in file order."""
    with open(os.path.join(run_dir, "metrics.csv")) as f:
        return sorted((int(r["step"]), tuple(sorted(k for k, v in r.items() if v and k != "step")))
                      for r in csv.DictReader(f))


def metrics(run_dir):
    """Every logged value by (step, name); the CSV's rows after a resume come from both runs."""
    with open(os.path.join(run_dir, "metrics.csv")) as f:
        return {(row["step"], k): v for row in csv.DictReader(f) for k, v in row.items() if v and k != "step"}


def results(run_dir):
    with open(os.path.join(run_dir, "results.json")) as f:
        r = json.load(f)
    return {k: r[k] for k in ("test_acc", "test_loss", "best_val_acc", "steps")}


@pytest.fixture(scope="module")
def uninterrupted(cifar_dir, tmp_path_factory):
    run_dir = str(tmp_path_factory.mktemp("uninterrupted") / "run")
    train.main(tiny(cifar_dir, run_dir))
    return run_dir


def tiny(cifar_dir, run_dir):
    return ["--data-dir", cifar_dir, "--output-dir", run_dir, "--val-size", "50", "--batch-size", "16",
            "--eval-batch-size", "64", "--accelerator", "cpu", "--logger", "csv", *FLAGS]


# Stopping after step 12: mid-epoch; after 15: an epoch's last batch; after 16: a step with validation.
@pytest.mark.parametrize("signum, step", [(signal.SIGTERM, 12), (signal.SIGINT, 15),
                                          (signal.SIGTERM, 16)])
def test_signal_then_rerun_matches_uninterrupted(signum, step, uninterrupted, cifar_dir, tmp_path, capsys):
    run_dir, args = str(tmp_path / "run"), tiny(cifar_dir, str(tmp_path / "run"))
    with pytest.raises(SystemExit) as stop:
        train.main(args, callbacks=[SignalAt(step, signum)])
    assert stop.value.code == 128 + signum
    err = capsys.readouterr().err
    assert f"interrupted: {signal.Signals(signum).name} at step {step}: saved" in err  # SignalAt runs before Resumable
    stopped = json.loads(open(os.path.join(run_dir, "results.json")).read())
    assert stopped["status"] == "interrupted" and stopped["test_acc"] is None and stopped["steps"] == step
    assert latest_checkpoint(RunFolder(run_dir)) == os.path.join(run_dir, "checkpoints", "last.ckpt")

    train.main(args)  # the same command again continues
    assert f"continuing from {run_dir}" in capsys.readouterr().out
    assert results(run_dir) == results(uninterrupted)
    assert metrics(run_dir) == metrics(uninterrupted)  # every logged loss, accuracy and lr, step by step
    assert rows(run_dir) == rows(uninterrupted)  # and each step's row once, not repeated by the restart


# Every policy on at once: a per-image policy, erasing, Cutout, and MixUp or CutMix by batch (soft labels).
POLICY_FLAGS = ["--policy", "trivialaugment", "--erase", "0.5", "--cutout", "8", "--mixup", "0.2", "--cutmix", "1.0"]


def test_signal_then_rerun_with_policies_matches_uninterrupted(cifar_dir, tmp_path):
    """The policies' draws come from the batch's seed and position, so a continued run draws what the
    uninterrupted run drew: stopped mid-epoch (step 12), it ends with every logged value the same."""
    uninterrupted, run_dir = str(tmp_path / "uninterrupted"), str(tmp_path / "run")
    train.main(tiny(cifar_dir, uninterrupted) + POLICY_FLAGS)
    with pytest.raises(SystemExit):
        train.main(tiny(cifar_dir, run_dir) + POLICY_FLAGS, callbacks=[SignalAt(12, signal.SIGTERM)])
    assert results(run_dir)["steps"] == 12
    train.main(tiny(cifar_dir, run_dir) + POLICY_FLAGS)
    assert results(run_dir) == results(uninterrupted)
    assert metrics(run_dir) == metrics(uninterrupted)


def test_resume_flag_takes_the_saved_config(uninterrupted, cifar_dir, tmp_path):
    """--resume RUN_DIR needs no other flag; a flag typed now (a longer run) overrides the saved config."""
    run_dir = str(tmp_path / "run")
    train.main(tiny(cifar_dir, run_dir)[:-len(FLAGS)] + ["--max-steps", "8", "--eval-every", "4"])
    train.main(["--resume", run_dir, "--max-steps", "12"])
    with open(os.path.join(run_dir, "metrics.csv")) as f:
        steps = [int(row["step"]) for row in csv.DictReader(f) if row.get("val/acc")]
    # validation at 4 and 8 in the first run, 12 in the continued one (which repeats 8's, since it resumes
    # from the end-of-training checkpoint, and its row replaces the first run's)
    assert steps == [3, 7, 11]
    assert results(run_dir)["steps"] == 12


def test_resume_flag_errors_are_one_line(tmp_path, capsys):
    with pytest.raises(SystemExit) as e:
        train.main(["--resume", str(tmp_path)])
    assert e.value.code == 2
    err = capsys.readouterr().err
    assert "not a run folder" in err and len(err.strip().splitlines()) == 1
    (tmp_path / "config.yaml").write_text("model: mlp\n")
    with pytest.raises(SystemExit):
        train.main(["--resume", str(tmp_path)])
    assert "no checkpoint to continue from" in capsys.readouterr().err


def test_latest_checkpoint_is_the_newest_of_last_and_hpc(tmp_path):
    """A requeued SLURM job writes hpc_ckpt_N.ckpt, later steps write last.ckpt: the newest one wins."""
    folder = RunFolder(str(tmp_path))
    assert latest_checkpoint(folder) is None
    (tmp_path / "checkpoints").mkdir()
    last, hpc = tmp_path / "checkpoints" / "last.ckpt", tmp_path / "hpc_ckpt_1.ckpt"
    for path, age in ((last, 20), (hpc, 10)):
        with zipfile.ZipFile(path, "w") as z:  # torch.save's format: a zip archive
            z.writestr("archive/data.pkl", b"x")
        os.utime(path, (time.time() - age, time.time() - age))
    assert latest_checkpoint(folder) == str(hpc)
    os.utime(last)
    assert latest_checkpoint(folder) == str(last)
