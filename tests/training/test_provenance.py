"""training/provenance.py: every run folder says which code, software, hardware, data and command made it."""
import hashlib
import json
import os
import subprocess

import pytest

import train
from training import provenance
from runfolder import RunFolder


def git(repo, *args):
    subprocess.run(["git", "-C", repo, "-c", "user.name=t", "-c", "user.email=t@t", *args], check=True,
                   capture_output=True)


@pytest.fixture
def repo(tmp_path, monkeypatch):
    """A throwaway git repository posing as this code's checkout (provenance.ROOT), one commit in it."""
    path = str(tmp_path / "repo")
    os.makedirs(path)
    git(path, "init", "-q")
    with open(os.path.join(path, "model.py"), "w") as f:
        f.write("WIDTH = 100\n")
    git(path, "add", "model.py")
    git(path, "commit", "-q", "-m", "first")
    monkeypatch.setattr(provenance, "ROOT", path)
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    monkeypatch.setattr(provenance, "CACHE", str(tmp_path / "cache" / "sha256.json"))
    return path


def test_a_run_records_everything_and_a_clean_tree_has_no_diff(repo, tiny_args, tmp_path, cifar_dir):
    train.main(tiny_args)
    folder = RunFolder(str(tmp_path / "run"))
    with open(folder.provenance_path) as f:
        record = json.load(f)  # strict: json.load would take NaN; nothing here is a float anyway
    head = subprocess.run(["git", "-C", repo, "rev-parse", "HEAD"], capture_output=True, text=True).stdout.strip()
    assert record["git_commit"] == head and record["git_dirty"] is False and record["diff_sha256"] is None
    for key in ("python", "torch", "lightning", "torchmetrics", "device", "host", "command", "time"):
        assert record[key], key
    assert "cudnn" in record and "cuda" in record  # None on a CPU-only build, but always said
    assert record["device"].startswith("CPU: ")
    with open(os.path.join(cifar_dir, "cifar-10-batches-py", "test_batch"), "rb") as f:
        assert record["data_sha256"]["test_batch"] == hashlib.sha256(f.read()).hexdigest()
    assert sorted(record["data_sha256"]) == sorted([f"data_batch_{i}" for i in range(1, 6)] + ["test_batch"])
    assert not [n for n in os.listdir(folder.path) if n.endswith(".diff")]


def test_changed_code_is_dirty_and_its_diff_is_saved(repo, tiny_args, tmp_path):
    with open(os.path.join(repo, "model.py"), "w") as f:
        f.write("WIDTH = 256\n")
    with open(os.path.join(repo, "new_layer.py"), "w") as f:  # untracked, not ignored: part of the code too
        f.write("class Layer: pass\n")
    train.main(tiny_args)
    folder = RunFolder(str(tmp_path / "run"))
    record = folder.read_provenance()
    assert record["git_dirty"] is True
    with open(folder.diff_path(record)) as f:
        diff = f.read()
    assert "-WIDTH = 100" in diff and "+WIDTH = 256" in diff and "+class Layer: pass" in diff
    assert hashlib.sha256(diff.encode()).hexdigest() == record["diff_sha256"]


def test_a_continued_run_keeps_the_earlier_starts(repo, tiny_args, tmp_path):
    train.main(tiny_args)
    train.main(tiny_args[:tiny_args.index("--max-steps") + 1] + ["10"] + tiny_args[tiny_args.index("--max-steps") + 2:])
    record = RunFolder(str(tmp_path / "run")).read_provenance()
    assert len(record["earlier"]) == 1 and "earlier" not in record["earlier"][0]
    assert record["time"] >= record["earlier"][0]["time"]


def test_no_git_repository_says_unknown(tmp_path, monkeypatch):
    monkeypatch.setattr(provenance, "ROOT", str(tmp_path))
    assert provenance.code_state() == (None, None, None)

