"""Where a run's numbers come from: code, software, hardware, data and command line (provenance.json).

    collect(cfg, trainer)   -> the dict train() writes beside results.json (runfolder.folder.PROVENANCE)

reporting/provenance.py says in what the records of several runs differ (report.py).

The code is the git commit of this repository and whether the tree was dirty; when it was, the
diff against that commit goes to runfolder.folder.DIFF in the run folder, so the run can be rebuilt.
Data checksums are sha256 of the CIFAR-10 batch files, cached per user by (path, size, mtime) so
a sweep does not rehash 170 MB per run (CACHE).
"""
import hashlib
import json
import os
import platform
import socket
import subprocess
import sys
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))  # the repository this code runs from
CACHE = os.path.join(os.environ.get("XDG_CACHE_HOME") or os.path.expanduser("~/.cache"), "cifar10-lab", "sha256.json")


def git(*args):
    """A git command's stdout in ROOT, or None when git or the repository is missing."""
    try:
        out = subprocess.run(["git", "-C", ROOT, *args], capture_output=True, text=True, timeout=30)
    except (OSError, subprocess.TimeoutExpired):
        return None
    return out.stdout if out.returncode == 0 else None


def code_state():
    """(commit, dirty, diff): dirty counts changed tracked files and untracked files git does not ignore;
    diff is `git diff HEAD` plus each untracked file as an added one (None when clean)."""
    commit = git("rev-parse", "HEAD")
    if commit is None:
        return None, None, None
    status = git("status", "--porcelain") or ""
    if not status.strip():
        return commit.strip(), False, None
    diff = git("diff", "HEAD", "--binary") or ""
    untracked = (git("ls-files", "--others", "--exclude-standard", "-z") or "").split("\0")
    for path in filter(None, untracked):  # `git diff --no-index /dev/null FILE` shows it as new; exit 1 = differs
        out = subprocess.run(["git", "-C", ROOT, "diff", "--no-index", "--binary", "/dev/null", path],
                             capture_output=True, text=True)
        diff += out.stdout
    return commit.strip(), True, diff


def sha256(path, cache):
    st = os.stat(path)
    key = f"{os.path.realpath(path)}|{st.st_size}|{st.st_mtime_ns}"
    if key not in cache:
        h = hashlib.sha256()
        with open(path, "rb") as f:
            for chunk in iter(lambda: f.read(1 << 20), b""):
                h.update(chunk)
        cache[key] = h.hexdigest()
    return cache[key]


def data_checksums(data_dir):
    """{file name: sha256} of the batch files train.py reads, via the per-user cache."""
    from datamodules import files

    folder = files.locate(data_dir, download=False)
    try:
        with open(CACHE) as f:
            cache = json.load(f)
    except (OSError, ValueError):
        cache = {}
    before = len(cache)
    names = [*files.TRAIN_FILES, files.TEST_FILE]
    out = {name: sha256(os.path.join(folder, name), cache) for name in names}
    if len(cache) != before:  # best effort: an unwritable cache only costs the next run a rehash
        try:
            os.makedirs(os.path.dirname(CACHE), exist_ok=True)
            tmp = f"{CACHE}.tmp{os.getpid()}"
            with open(tmp, "w") as f:
                json.dump(cache, f)
            os.replace(tmp, CACHE)
        except OSError:
            pass
    return out


def cpu_model():
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def device(trainer):
    """The model of what trained: 'GPU: NVIDIA H200 x1', or 'CPU: <model> (N threads)'."""
    import torch

    root = trainer.strategy.root_device if trainer is not None else torch.device("cpu")
    if root.type == "cuda":
        return f"GPU: {torch.cuda.get_device_name(root)} x{trainer.world_size}"
    return f"CPU: {cpu_model()} ({torch.get_num_threads()} threads)"


def collect(cfg, trainer=None):
    """The provenance record of a run about to train with cfg on trainer: strict-JSON-able; 'diff' is
    the diff text (train() writes it to its own file and keeps only its hash in the record)."""
    import lightning_fabric  # noqa: F401  (Lightning's version below is pytorch_lightning's)
    import pytorch_lightning as pl
    import torch
    import torchmetrics

    commit, dirty, diff = code_state()
    cudnn = torch.backends.cudnn.version() if torch.backends.cudnn.is_available() else None
    record = dict(
        time=time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        command=list(getattr(sys, "orig_argv", [sys.executable, *sys.argv])),  # exactly as typed, interpreter first
        cwd=os.getcwd(),
        git_commit=commit, git_dirty=dirty, diff_sha256=hashlib.sha256(diff.encode()).hexdigest() if diff else None,
        python=platform.python_version(), torch=torch.__version__, lightning=pl.__version__,
        torchmetrics=torchmetrics.__version__, cuda=torch.version.cuda, cudnn=cudnn,
        device=device(trainer), host=socket.gethostname(), platform=platform.platform(),
        data_sha256=data_checksums(cfg["data_dir"]),
    )
    return record, diff

