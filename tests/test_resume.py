"""Resume (resume.py and train.py's use of it): a run stopped by a signal leaves a checkpoint, and the
continued run ends exactly where an uninterrupted run ends: data order, augmentation, dropout RNG,
optimizer and schedule all come back. CPU, fixture data, in-process, seconds."""
import csv
import json
import os
import re
import shlex
import signal
import sys
import time
import zipfile

import pytest
import pytorch_lightning as pl
import torch

import train
from runfolder import RunFolder, checkpoint
from runfolder.checkpoint import steps_in
from config.resolve import RUN_NAME_ENV
from training.resume import latest_checkpoint
from training.run import DIVERGED_EXIT

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


def steps(cifar_dir, run_dir, n):
    """A run of n steps, validated every 4, whose length changes nothing else (a constant learning rate)."""
    return tiny(cifar_dir, run_dir)[:-len(FLAGS)] + ["--max-steps", str(n), "--eval-every", "4", "--log-every", "1",
                                                     "--augment", "--dropout", "0.2", "--optimizer", "adam",
                                                     "--lr", "0.003", "--schedule", "constant"]


def last_step(run_dir):
    return steps_in(RunFolder(run_dir).last_path)


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
    assert last_step(run_dir) == step  # the step it stopped at, read back from the file

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


class AfterEachSave(pl.callbacks.Checkpoint):
    """Listed after Resumable (Lightning runs Checkpoint callbacks last, in order): after each validation's
    saves, whether the best checkpoint is new and whether last.ckpt is the same file as it."""

    def __init__(self):
        self.seen, self.best = [], ""

    def on_validation_end(self, trainer, pl_module):
        folder, best = RunFolder(trainer.default_root_dir), trainer.checkpoint_callback.best_model_path
        self.seen.append((trainer.global_step, best != self.best, os.path.samefile(folder.last_path, best)))
        self.best = best


def test_last_ckpt_is_the_new_best_checkpoint_itself_else_a_file_of_its_own(cifar_dir, tmp_path):
    """One write where two would hold the same bytes: a validation that improves links last.ckpt to the new
    best-stepN.ckpt; one that does not writes last.ckpt anew (the exact-resume tests continue from both)."""
    run_dir, seen = str(tmp_path / "run"), AfterEachSave()
    train.main(steps(cifar_dir, run_dir, 24) + ["--eval-every", "2"], callbacks=[seen])
    assert [step for step, _, _ in seen.seen] == list(range(2, 25, 2))
    assert all(new == same for _, new, same in seen.seen)
    assert {new for _, new, _ in seen.seen} == {True, False}  # both kinds among 12 validations on 50 images
    folder = RunFolder(run_dir)
    assert last_step(run_dir) == 24  # and no partial file left beside the two
    names = {os.path.basename(folder.last_path), os.path.basename(folder.best_checkpoint())}
    assert sorted(os.listdir(folder.checkpoint_dir)) == sorted(names)


def test_resume_flag_takes_the_saved_config(uninterrupted, cifar_dir, tmp_path):
    """--resume RUN_DIR needs no other flag; a flag typed now (a longer run) overrides the saved config."""
    run_dir = str(tmp_path / "run")
    train.main(tiny(cifar_dir, run_dir)[:-len(FLAGS)] + ["--max-steps", "8", "--eval-every", "4"])
    train.main(["--resume", run_dir, "--max-steps", "12"])
    with open(os.path.join(run_dir, "metrics.csv")) as f:
        steps = [int(row["step"]) for row in csv.DictReader(f) if row.get("val/acc")]
    # validation at 4 and 8 in the first run, 12 in the continued one, which starts after step 8's validation
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


@pytest.fixture(scope="module")
def twelve(cifar_dir, tmp_path_factory):
    run_dir = str(tmp_path_factory.mktemp("twelve") / "run")
    train.main(steps(cifar_dir, run_dir, 12))
    return run_dir


# 7: the run ends between validations (its only one, at 4, is the best); 8: it ends with a validation
@pytest.mark.parametrize("first", [7, 8])
def test_last_ckpt_is_the_final_step_a_rerun_trains_nothing_and_a_longer_run_continues(first, twelve, cifar_dir,
                                                                                      tmp_path, capsys):
    run_dir = str(tmp_path / "run")
    last, results_path = RunFolder(run_dir).last_path, RunFolder(run_dir).results_path
    train.main(steps(cifar_dir, run_dir, first))
    assert last_step(run_dir) == first  # the final step, not the best validation's
    saved, stamp = open(results_path).read(), os.stat(last).st_mtime_ns

    capsys.readouterr()
    train.main(steps(cifar_dir, run_dir, first))  # the same command again
    out = capsys.readouterr().out.splitlines()
    assert out[0] == f"{run_dir}: all {first} steps trained and tested already, nothing to do " \
                     "(a larger --max-steps continues it)"
    assert len(out) == 2 and out[1].startswith("test_acc ")  # no training line
    assert os.stat(last).st_mtime_ns == stamp and open(results_path).read() == saved

    train.main(steps(cifar_dir, run_dir, 12))
    assert f"continuing from {last} (step {first})" in capsys.readouterr().out
    assert last_step(run_dir) == 12
    assert results(run_dir) == results(twelve)  # as if it had run 12 steps at once
    assert {k: v for k, v in metrics(run_dir).items() if not k[1].startswith("test/")} == \
           {k: v for k, v in metrics(twelve).items() if not k[1].startswith("test/")}


def test_a_shorter_max_steps_than_trained_is_refused(cifar_dir, tmp_path, capsys):
    run_dir = str(tmp_path / "run")
    train.main(steps(cifar_dir, run_dir, 4))
    with pytest.raises(SystemExit) as e:
        train.main(steps(cifar_dir, run_dir, 3))
    assert e.value.code == f"error: {run_dir} has trained 4 steps, more than --max-steps 3: a larger --max-steps " \
                           "continues it; for a shorter run choose another --output-dir"


def test_a_diverged_runs_last_ckpt_is_its_last_evaluation_before_the_loss_broke(cifar_dir, tmp_path):
    run_dir = str(tmp_path / "run")
    args = tiny(cifar_dir, run_dir)[:-len(FLAGS)] + ["--max-steps", "30", "--eval-every", "2", "--log-every", "1",
                                                     "--optimizer", "sgd", "--momentum", "0.9", "--lr", "30"]
    with pytest.raises(SystemExit) as e:
        train.main(args)
    assert e.value.code == DIVERGED_EXIT
    reason = json.loads(open(RunFolder(run_dir).results_path).read())["reason"]
    bad = int(re.search(r"step (\d+)", reason).group(1))  # the loss (or the weights) after this step
    assert bad > 2, f"{reason}: this setting should diverge after the first evaluation"
    state = checkpoint.read(RunFolder(run_dir).last_path)
    assert state["global_step"] == (bad - 1) // 2 * 2  # the last evaluation before the bad step
    assert all(torch.isfinite(v).all() for v in state["state_dict"].values())


class BarAtFirstStep(pl.Callback):
    """The progress bar's (n, total) when this process trains its first step."""

    def on_train_batch_start(self, trainer, *args):
        if not hasattr(self, "seen"):
            bar = trainer.progress_bar_callback.train_progress_bar
            self.seen = (bar.n, bar.total)


def test_after_a_signal_the_last_line_is_the_command_that_continues(cifar_dir, tmp_path, monkeypatch, capfd):
    """Also with no --output-dir (the run folder's name has the time in it): the line names it, and running
    it continues the run, with a bar counting on from the checkpoint's step out of --max-steps."""
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv(RUN_NAME_ENV, raising=False)  # train.py sets it for the ranks it would start
    args = tiny(cifar_dir, "")
    args[args.index("--output-dir"):args.index("--output-dir") + 2] = []
    with pytest.raises(SystemExit) as stop:
        train.main(args, callbacks=[SignalAt(5, signal.SIGINT)])
    assert stop.value.code == 128 + signal.SIGINT
    out, err = capfd.readouterr()
    assert "weights_only" not in out + err  # Lightning's note on an unsaid save option
    last = err.strip().splitlines()[-1]
    assert last.startswith("interrupted: SIGINT at step 5: saved runs/mlp-s42-")
    words = shlex.split(last.split("; continue with: ")[1])
    assert words[:3] == ["python", "train.py", "--resume"] and os.path.isdir(words[3])

    monkeypatch.setattr(sys.stdout, "isatty", lambda: True)  # a terminal: the progress bar
    bar = BarAtFirstStep()
    train.main(words[2:], callbacks=[bar])
    assert f"continuing from {words[3]}/checkpoints/last.ckpt (step 5)" in capfd.readouterr().out
    assert bar.seen == (5, 24)
    assert results(words[3])["steps"] == 24


def test_ctrl_c_before_training_is_one_line(cifar_dir, tmp_path, monkeypatch, capsys):
    import training.run

    def interrupted(cfg):
        raise KeyboardInterrupt
    monkeypatch.setattr(training.run, "build_data", interrupted)
    with pytest.raises(SystemExit) as stop:
        train.main(tiny(cifar_dir, str(tmp_path / "run")))
    assert stop.value.code == 128 + signal.SIGINT
    assert capsys.readouterr().err.strip().splitlines() == [
        "interrupted before training began, nothing trained or saved: run the same command again"]


def test_sigusr1_under_slurm_requeues_last_and_says_so(cifar_dir, tmp_path, monkeypatch, capsys):
    """SLURM stops a job within milliseconds of its requeue, so the requeue comes after results.json and with
    the log line held from SIGTERM; a failed requeue leaves the command that continues. (A SLURM job step as
    Lightning detects it; tests/slurm sends the signal through a real SLURM.)"""
    import training.run
    for key, value in dict(SLURM_NTASKS="1", SLURM_PROCID="0", SLURM_LOCALID="0", SLURM_NODEID="0",
                           SLURM_JOB_ID="77", SLURM_JOB_NAME="train", SLURM_NODELIST="n1").items():
        monkeypatch.setenv(key, value)
    run_dir, seen = str(tmp_path / "run"), []
    monkeypatch.setattr(training.run, "requeue_job", lambda: seen.append(results(run_dir)["steps"]) and False)
    try:
        with pytest.raises(SystemExit) as stop:
            train.main(tiny(cifar_dir, run_dir), callbacks=[SignalAt(5, signal.SIGUSR1)])
    finally:
        signal.pthread_sigmask(signal.SIG_UNBLOCK, {signal.SIGTERM})
    assert stop.value.code == 128 + signal.SIGUSR1 and seen == [5]  # results.json was written first
    line = capsys.readouterr().err.strip().splitlines()[-1]
    assert line == f"interrupted: SIGUSR1 at step 5: saved {RunFolder(run_dir).last_path}; scontrol requeue failed; " \
                   f"continue with: python train.py --resume {run_dir}"
