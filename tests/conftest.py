"""Shared fixtures: tiny CIFAR-10 data in the true on-disk format, and a way to run train.py."""
import fcntl
import os
import pickle
import shutil
import sys

import struct

import numpy as np
import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, ROOT)
# One thread per process, for this one and the train.py processes tests start: the fixture's tensors are
# too small for a second thread to pay, and on a busy machine two OpenMP threads on two busy cores wait on
# each other at every op (a course-ResNet test ran 8x the CPU seconds with two; 2026-12-04, load 13-20).
os.environ.setdefault("OMP_NUM_THREADS", "1")

WORKERS = 2  # pytest-xdist processes for the whole default suite (each peaks at ~3.5 GB of memory)
# Tests that must share one process: tests/slurm's share one local SLURM (tests/slurm/conftest.py), which a
# second process would start and stop under them. (xdist_group marks would say it, but pytest 9.2 ignores
# them: pytest-xdist issue 1386.)
ONE_PROCESS = ("tests/slurm/",)


@pytest.hookimpl(tryfirst=True)
def pytest_cmdline_main(config):
    """With pytest-xdist (requirements.txt) and no -n, `python -m pytest` (the whole default suite) runs in
    WORKERS processes where there are as many cores: much of a test's time is a subprocess, a SLURM job or
    a second worker it waits for, and another test runs meanwhile. Tests named on the command line run in
    this one process, where starting workers would cost more than they give; so do all where pytest-xdist
    is not installed (a GPU machine with pytest alone, docs/gpu.md)."""
    if not config.pluginmanager.hasplugin("xdist") or hasattr(config, "workerinput"):
        return  # no pytest-xdist, or this is one of its workers (which must not start workers of its own)
    config.pluginmanager.register(Scheduling(), "tests-scheduling")
    if config.option.numprocesses is None and not config.getoption("usepdb"):
        from training.packing import cores

        whole = config.args_source == pytest.Config.ArgsSource.TESTPATHS
        config.option.numprocesses = WORKERS if whole and cores() >= WORKERS else 0


class Scheduling:
    def pytest_xdist_make_scheduler(self, config, log):
        """Tests go to the workers one by one (as --dist load), except ONE_PROCESS's, which go together."""
        if config.getvalue("dist") != "load":  # a --dist given on the command line
            return None
        from xdist.scheduler import LoadScopeScheduling

        class OneByOne(LoadScopeScheduling):
            def _split_scope(self, nodeid):
                return next((prefix for prefix in ONE_PROCESS if nodeid.startswith(prefix)), nodeid)

        return OneByOne(config, log)


TRAIN_PER_BATCH, TEST_SIZE = 60, 100  # 300 train images, 100 test images


class Py2Pickler(pickle._Pickler):
    """Writes bytes with Python 2's string opcodes, as the official CIFAR-10 files do."""

    def save_bytes(self, obj):
        op = pickle.SHORT_BINSTRING + bytes([len(obj)]) if len(obj) < 256 else pickle.BINSTRING + struct.pack("<i", len(obj))
        self.write(op + obj)
        self.memoize(obj)

    dispatch = {**pickle._Pickler.dispatch, bytes: save_bytes}


def write_batch(path, data, labels):
    """One batch file as the official archive has it: a Python-2 pickle of a dict with bytes keys."""
    with open(path, "wb") as f:
        Py2Pickler(f, protocol=2).dump({b"batch_label": b"fixture", b"labels": [int(v) for v in labels],
                                        b"data": data, b"filenames": [b"x.png"] * len(labels)})


def make_cifar(root, seed=0):
    """Write root/cifar-10-batches-py with learnable tiny data: each class has its own mean colour."""
    rng = np.random.default_rng(seed)
    folder = os.path.join(root, "cifar-10-batches-py")
    os.makedirs(folder, exist_ok=True)
    colours = rng.integers(30, 225, size=(10, 3))

    def images(n):
        labels = rng.integers(0, 10, size=n)
        x = colours[labels][:, :, None] + rng.normal(0, 25, size=(n, 3, 1024))
        return np.clip(x, 0, 255).astype(np.uint8).reshape(n, 3072), labels

    for i in range(1, 6):
        write_batch(os.path.join(folder, f"data_batch_{i}"), *images(TRAIN_PER_BATCH))
    write_batch(os.path.join(folder, "test_batch"), *images(TEST_SIZE))
    with open(os.path.join(folder, "batches.meta"), "wb") as f:
        Py2Pickler(f, protocol=2).dump({b"label_names": [b"c%d" % i for i in range(10)]})
    return root


def made_once(tmp_path_factory, name, make):
    """The path of folder `name`, made by make(path) once for every pytest-xdist process of this run: in
    the folder their own base folders share (the base folder itself without xdist), under a lock that
    the others wait on. For what tests only read: the fixture data, tests/trained_runs.py's runs."""
    base = tmp_path_factory.getbasetemp()
    root = base.parent if os.environ.get("PYTEST_XDIST_WORKER") else base
    path, done = root / name, root / f"{name}.done"
    with open(root / f"{name}.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)  # released when the file closes
        if not done.exists():
            shutil.rmtree(path, ignore_errors=True)  # a make that failed in another process
            make(str(path))
            done.touch()
    return str(path)


@pytest.fixture(scope="session")
def cifar_dir(tmp_path_factory):
    """A data dir holding tiny CIFAR-10 batches (300 train / 100 test). Treat it as read-only."""
    return made_once(tmp_path_factory, "cifar", make_cifar)


@pytest.fixture
def tiny_args(cifar_dir, tmp_path):
    """Flags for a seconds-long train.py run on the fixture data, writing into tmp_path/run."""
    return ["--data-dir", cifar_dir, "--output-dir", str(tmp_path / "run"), "--val-size", "50",
            "--max-steps", "5", "--eval-every", "5", "--batch-size", "16", "--eval-batch-size", "64",
            "--accelerator", "cpu", "--logger", "csv"]
