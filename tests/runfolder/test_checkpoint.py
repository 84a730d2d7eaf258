"""runfolder.checkpoint.read: a checkpoint's tensors and plain values, never code; one line naming the file
for anything else. (tests/inference/test_loading.py reads every model's checkpoints through it, and
tests/test_planted_files.py plants files for every command.)"""
import os

import pytest
import torch

from tests.planted import plant
from runfolder import checkpoint
from runfolder import BadInput


def lightning_like(path, **extra):
    torch.save({"global_step": 7, "state_dict": {"w": torch.ones(2)}, "loops": {"n": [1, 2.0, "x", None]}, **extra},
               path)
    return str(path)


def test_reads_tensors_and_plain_values(tmp_path):
    ckpt = checkpoint.read(lightning_like(tmp_path / "a.ckpt"))
    assert torch.equal(ckpt["state_dict"]["w"], torch.ones(2)) and ckpt["loops"]["n"] == [1, 2.0, "x", None]
    assert checkpoint.steps_in(str(tmp_path / "a.ckpt")) == 7


@pytest.mark.parametrize("kind, says", [("ckpt", "refused: it holds more than tensors and plain values "
                                                 "(Unsupported global: GLOBAL io.open"),
                                        ("pickle", "not a checkpoint (not the zip archive torch.save writes)")])
def test_a_planted_file_is_refused_unbuilt(kind, says, tmp_path):
    marker = tmp_path / "marker"
    path = plant(tmp_path / "x.ckpt", kind, marker)
    with pytest.raises(BadInput) as e:
        checkpoint.read(path)
    assert not marker.exists()
    assert str(e.value).startswith(f"{path}: {says}") and "\n" not in str(e.value)


def test_refused_even_when_torch_is_told_to_trust_files(tmp_path, monkeypatch):
    """TORCH_FORCE_NO_WEIGHTS_ONLY_LOAD changes torch.load's default only; read() sets weights_only itself."""
    monkeypatch.setenv("TORCH_FORCE_NO_WEIGHTS_ONLY_LOAD", "1")
    marker = tmp_path / "marker"
    with pytest.raises(BadInput, match="refused"):
        checkpoint.read(plant(tmp_path / "x.ckpt", "ckpt", marker))
    assert not marker.exists()


def test_damaged_missing_and_foreign_files_are_one_line(tmp_path):
    whole = open(lightning_like(tmp_path / "a.ckpt"), "rb").read()
    (tmp_path / "cut.ckpt").write_bytes(whole[: len(whole) // 2])
    torch.save({"weights": torch.ones(1)}, tmp_path / "other.ckpt")
    for name, says in [("cut.ckpt", "not a checkpoint"), ("missing.ckpt", "no such file"),
                       ("other.ckpt", "not a Lightning checkpoint")]:
        path = str(tmp_path / name)
        with pytest.raises(BadInput) as e:
            checkpoint.read(path)
        assert str(e.value).startswith(f"{path}: {says}") and "\n" not in str(e.value)


def test_a_corrupted_member_is_named_as_damage(tmp_path):
    path = lightning_like(tmp_path / "a.ckpt")
    blob = bytearray(open(path, "rb").read())
    start = blob.index(b"data.pkl") + 40  # inside the pickle's stored bytes: the zip directory stays whole
    blob[start:start + 8] = b"\xff" * 8
    open(path, "wb").write(bytes(blob))
    with pytest.raises(BadInput) as e:
        checkpoint.read(path)
    assert str(e.value).startswith(f"{path}: ") and "\n" not in str(e.value)


def test_write_replaces_whole_and_leaves_nothing_beside(tmp_path):
    path = str(tmp_path / "checkpoints" / "last.ckpt")  # the folder is made
    checkpoint.write({"global_step": 1, "state_dict": {"w": torch.zeros(3)}}, path)
    keep = str(tmp_path / "keep.ckpt")
    os.link(path, keep)  # a second name of the old file (what training.resume.second_name makes)
    checkpoint.write({"global_step": 2, "state_dict": {"w": torch.ones(3)}}, path)
    assert checkpoint.steps_in(path) == 2 and checkpoint.steps_in(keep) == 1  # replaced, not written into
    assert os.listdir(tmp_path / "checkpoints") == ["last.ckpt"]
    umask = os.umask(0)
    os.umask(umask)
    assert os.stat(path).st_mode & 0o777 == 0o666 & ~umask  # readable as any file the user writes


def test_a_failed_write_keeps_the_old_checkpoint_and_no_partial_file(tmp_path):
    path = lightning_like(tmp_path / "last.ckpt")
    with pytest.raises(Exception):
        checkpoint.write({"global_step": 8, "state_dict": {"w": lambda: 0}}, path)  # torch.save cannot pickle it
    assert checkpoint.steps_in(path) == 7 and os.listdir(tmp_path) == ["last.ckpt"]


@pytest.mark.parametrize("links", [True, False])  # False: a file system without hard links gets a copy
def test_second_name_is_the_same_checkpoint_and_replaces_the_old_whole(links, tmp_path, monkeypatch):
    best, last = lightning_like(tmp_path / "best.ckpt"), str(tmp_path / "last.ckpt")
    checkpoint.write({"global_step": 3, "state_dict": {"w": torch.zeros(1)}}, last)
    old = str(tmp_path / "old.ckpt")
    os.link(last, old)
    if not links:
        monkeypatch.setattr(os, "link", lambda *a: (_ for _ in ()).throw(OSError("not supported")))
    checkpoint.second_name(best, last)
    assert os.path.samefile(best, last) == links and open(best, "rb").read() == open(last, "rb").read()
    assert checkpoint.steps_in(old) == 3  # the old last.ckpt was replaced, not written into
    assert sorted(os.listdir(tmp_path)) == ["best.ckpt", "last.ckpt", "old.ckpt"]
