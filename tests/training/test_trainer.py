"""training/trainer.py's options: --profile writes Lightning's profiler reports into the run folder; every
checkpoint is written by runfolder.checkpoint.write and read weights-only; --steps-per-call auto's K."""
import os
import pickle

import pytest

import models
import train
from config.resolve import resolve
from tests.planted import plant
from training.trainer import WholeCheckpoints, auto_steps_per_call
from runfolder import RunFolder, checkpoint
from runfolder.folder import PROFILE, PROFILE_REPORT


# what each profiler's fit report names: Lightning's action names, cProfile's functions, torch's ops
@pytest.mark.parametrize("profiler, word", [("simple", "run_training_batch"), ("advanced", "run_training_batch"),
                                            ("pytorch", "ProfilerStep")])
def test_profile_writes_its_reports_into_the_run_folder(profiler, word, tiny_args, tmp_path):
    results = train.main([*tiny_args, "--max-steps", "3", "--eval-every", "3", "--profile", profiler])
    assert results["status"] == "completed"
    folder = tmp_path / "run" / PROFILE
    for stage in ("fit", "test"):
        report = (folder / f"{stage}-{PROFILE_REPORT}.txt").read_text()
        assert report.startswith(f"{stage.upper()} Profiler Report")
    assert word in (folder / f"fit-{PROFILE_REPORT}.txt").read_text()
    assert not any(name.startswith(("fit-", "test-")) for name in os.listdir(tmp_path / "run"))  # all in profile/


def test_every_checkpoint_goes_through_runfolders_write(tiny_args, tmp_path, monkeypatch):
    written, write = [], checkpoint.write
    monkeypatch.setattr(checkpoint, "write", lambda ckpt, path: (written.append(path), write(ckpt, path)))
    train.main([*tiny_args, "--max-steps", "3", "--eval-every", "3"])
    folder = RunFolder(str(tmp_path / "run"))
    assert folder.best_checkpoint() in written and folder.last_path in written  # last: the final step's save


def test_the_trainer_reads_checkpoints_weights_only_even_when_asked_otherwise(tmp_path):
    """What Lightning restores (a continue, SLURM's hpc_ckpt, the final test) goes through WholeCheckpoints."""
    marker = tmp_path / "marker"
    path = plant(tmp_path / "x.ckpt", "ckpt", marker)
    with pytest.raises(pickle.UnpicklingError):
        WholeCheckpoints().load_checkpoint(path, weights_only=False)
    assert not marker.exists()


# (flags, what --steps-per-call auto gives): the largest K <= 10 dividing the step settings, else 1
@pytest.mark.parametrize("flags, k", [
    (["--model", "mlp"], 10),                                                          # 1400, log 10, eval 100
    (["--model", "resnet"], 10),                                                       # 5000, log 10, eval 500
    (["--model", "mlp", "--max-steps", "24", "--log-every", "4", "--eval-every", "8"], 4),
    (["--model", "mlp", "--max-steps", "60", "--log-every", "6", "--eval-every", "12"], 6),
    (["--model", "mlp", "--max-steps", "90", "--eval-every", "1000"], 10),  # validates at the end only
    (["--model", "mlp", "--max-steps", "7"], 1),
    (["--model", "mlp", "--accumulate", "2"], 1),
    (["--model", "mlp", "--precision", "16-mixed"], 1),
    (["--model", "mlp", "--devices", "2"], 1),
    (["--model", "numpy_mlp"], 1),                                                     # a training step of its own
    (["--preset", "fast"], 1),
    (["--model", "mlp", "--steps-per-call", "2"], 2),                                  # a number is taken as it is
])
def test_auto_picks_the_largest_k_the_settings_allow(flags, k):
    cfg = resolve(flags)[0]
    assert auto_steps_per_call(cfg, models.load(cfg["model"])) == k


def test_auto_keeps_a_continued_runs_k_and_an_older_folders_one():
    cfg = resolve(["--model", "mlp"])[0]
    mlp = models.load("mlp")
    assert auto_steps_per_call(cfg, mlp, saved={"steps_per_call": 5}) == 5
    assert auto_steps_per_call(cfg, mlp, saved={"lr": 0.001}) == 1  # saved before the setting: it ran at 1
    assert auto_steps_per_call(dict(cfg, steps_per_call=2), mlp, saved={"steps_per_call": 5}) == 2  # refused later


def test_a_run_saves_the_k_auto_picked_and_continues_with_it(tiny_args, tmp_path, capsys):
    run = tmp_path / "run"
    train.main([*tiny_args, "--max-steps", "8", "--eval-every", "4", "--log-every", "4"])
    assert "4 steps per Lightning step" in capsys.readouterr().out.splitlines()[0]
    assert "steps_per_call: 4\n" in (run / "config.yaml").read_text()
    results = train.main([*tiny_args, "--max-steps", "16", "--eval-every", "8", "--log-every", "8"])  # fresh: 8
    assert results["steps"] == 16 and "steps_per_call: 4\n" in (run / "config.yaml").read_text()
    assert "4 steps per Lightning step" in capsys.readouterr().out.splitlines()[0]
