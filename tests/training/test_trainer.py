"""training/trainer.py's options: --profile writes Lightning's profiler reports into the run folder; every
checkpoint is written by runfolder.checkpoint.write and read weights-only."""
import os
import pickle

import pytest

import train
from tests.planted import plant
from training.trainer import WholeCheckpoints
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
