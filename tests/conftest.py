"""Shared fixtures: tiny CIFAR-10 data in the true on-disk format, and a way to run train.py."""
import os
import pickle
import sys

import numpy as np
import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, ROOT)

TRAIN_PER_BATCH, TEST_SIZE = 60, 100  # 300 train images, 100 test images


def write_batch(path, data, labels):
    """One batch file as the official archive has it: a pickled dict with bytes keys."""
    with open(path, "wb") as f:
        pickle.dump({b"batch_label": b"fixture", b"labels": [int(v) for v in labels], b"data": data,
                     b"filenames": [b"x.png"] * len(labels)}, f, protocol=2)


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
        pickle.dump({b"label_names": [b"c%d" % i for i in range(10)]}, f, protocol=2)
    return root


@pytest.fixture(scope="session")
def cifar_dir(tmp_path_factory):
    """A data dir holding tiny CIFAR-10 batches (300 train / 100 test). Treat it as read-only."""
    return make_cifar(str(tmp_path_factory.mktemp("cifar")))


@pytest.fixture
def tiny_args(cifar_dir, tmp_path):
    """Flags for a seconds-long train.py run on the fixture data, writing into tmp_path/run."""
    return ["--data-dir", cifar_dir, "--output-dir", str(tmp_path / "run"), "--val-size", "50",
            "--max-steps", "5", "--eval-every", "5", "--batch-size", "16", "--eval-batch-size", "64",
            "--accelerator", "cpu", "--logger", "csv"]
