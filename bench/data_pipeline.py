"""Data pipeline: training images/s of CIFAR10DataModule vs torchvision's CIFAR10 + DataLoader.

The baseline is what a course user writes: `torchvision.datasets.CIFAR10` with RandomCrop(32, padding=4),
RandomHorizontalFlip, ToTensor and Normalize, in a shuffling DataLoader with worker processes, i.e.
a PIL image and four transforms per image. Ours slices one uint8 tensor and augments a whole batch at
once. Both sides are timed in steady state: an endless stream of batches over epochs (the baseline's
workers persist, so no worker start-up is counted), warmed up, then a fixed number of batches per call.

    python -m bench.data_pipeline --data-dir data [--quick]
"""
import itertools
import os

import torch
import torchvision.transforms as T
from torch.utils.data import DataLoader
from torchvision.datasets import CIFAR10

from datamodules import CIFAR10DataModule
from datamodules.batches import Batches
from datamodules.cifar10 import MEAN, NORMALIZE, STD

from . import common

BATCH_SIZE = 128  # the data module's default, and the usual tutorial value
# A SLURM job is confined to the cores it asked for, and the usual script sets
# num_workers = $SLURM_CPUS_PER_TASK. On this machine a job gets at most all of its cores (2 here),
# so that is the user's setting; outside SLURM we take the cores this process may run on.
WORKERS = int(os.environ.get("SLURM_CPUS_PER_TASK", len(os.sched_getaffinity(0))))
FULL = dict(ours_batches=351, baseline_batches=60, repeats=5, warmup=1, val_size=5000)  # 351: an epoch of 45,000
QUICK = dict(ours_batches=2, baseline_batches=2, repeats=1, warmup=0, val_size=50)
GOAL = 10  # x the baseline's images/s on CPU


class UncheckedCIFAR10(CIFAR10):
    """torchvision's CIFAR10 without its md5 checks: they reject any copy that is not byte-identical
    to the official files (our JPEG-decoded copy, the test fixtures), though the format is the same."""
    train_list = [[name, None] for name, _ in CIFAR10.train_list]
    test_list = [[name, None] for name, _ in CIFAR10.test_list]
    meta = {**CIFAR10.meta, "md5": None}


def torchvision_loader(data_dir, augment, workers=WORKERS, pin_memory=False):
    """The baseline loader, as the tutorials write it."""
    ops = [T.RandomCrop(32, padding=4), T.RandomHorizontalFlip()] if augment else []
    dataset = UncheckedCIFAR10(data_dir, train=True, transform=T.Compose(ops + [T.ToTensor(), T.Normalize(MEAN, STD)]))
    return DataLoader(dataset, batch_size=BATCH_SIZE, shuffle=True, drop_last=True, num_workers=workers,
                      persistent_workers=workers > 0, pin_memory=pin_memory)


def our_loader(data_dir, augment, val_size=5000):
    """CIFAR10DataModule's train loader, as train.py uses it (on the CPU: no trainer, no GPU)."""
    dm = CIFAR10DataModule(data_dir, batch_size=BATCH_SIZE, augment=augment, val_size=val_size)
    dm.setup()
    return dm.train_dataloader()


def stream(loader, device=None):
    """Batches forever, epoch after epoch; moved to `device` when given."""
    while True:
        for x, y in loader:
            yield (x.to(device, non_blocking=True), y.to(device, non_blocking=True)) if device else (x, y)


def taker(batches, n, cuda=False):
    """A function that pulls n batches (and waits for the GPU, if any, to finish them)."""
    def take():
        for _ in itertools.islice(batches, n):
            pass
        if cuda:
            torch.cuda.synchronize()
    return take


def compare(what, ours, baseline, sizes, cuda=False):
    """ours, baseline: endless batch streams."""
    n_ours, n_base = sizes["ours_batches"], sizes["baseline_batches"]
    t_ours, t_base = common.measure_pair(taker(ours, n_ours, cuda), taker(baseline, n_base, cuda),
                                          repeats=sizes["repeats"], warmup=sizes["warmup"])
    return common.row(what, "images/s", common.per_second(t_ours, n_ours * BATCH_SIZE),
                      common.per_second(t_base, n_base * BATCH_SIZE), higher_is_better=True, goal=GOAL)


def rows(quick=False, data_dir="data"):
    sizes = QUICK if quick else FULL
    # One torch thread, as each baseline worker has (DataLoader sets it). Batch slicing and augmenting
    # are small memory-bound ops that gain little from threads, and on a shared machine two OpenMP
    # threads on two busy cores wait on each other: we measured 610 images/s with 2 threads against
    # 16,800 with 1 (crop+flip, load average 16 on 2 cores).
    with common.torch_threads(1):
        return _rows(sizes, data_dir)


def _rows(sizes, data_dir):
    out = []
    for augment in (True, False):
        what = f"data: train batches, {'crop+flip' if augment else 'no augmentation'} vs torchvision, {WORKERS} workers"
        out.append(compare(what, stream(our_loader(data_dir, augment, sizes["val_size"])),
                           stream(torchvision_loader(data_dir, augment)), sizes))
    if torch.cuda.is_available():
        out.append(device_row(sizes, data_dir, torch.device("cuda")))
    return out


def device_row(sizes, data_dir, device):
    """Ours makes crop+flip batches on `device` (as under a GPU Trainer); the baseline copies pinned CPU
    batches there, as a training loop would."""
    cpu = our_loader(data_dir, True, sizes["val_size"])
    ours = Batches(cpu.x.to(device), cpu.y.to(device), cpu.indices, BATCH_SIZE, *NORMALIZE["standard"],
                   train=True, augment=True)
    cuda = device.type == "cuda"
    base = torchvision_loader(data_dir, True, pin_memory=cuda)
    what = f"data: {device.type.upper()}-resident crop+flip batches vs torchvision + copy, {WORKERS} workers"
    return compare(what, stream(ours), stream(base, device), sizes, cuda)


if __name__ == "__main__":
    p = common.parser(__doc__)
    args = p.parse_args()
    common.print_table(rows(args.quick, args.data_dir), "Data pipeline")
