"""Memory: peak memory of one training epoch of CIFAR10DataModule vs torchvision's CIFAR10 + DataLoader.

Each side runs alone in a fresh process (`python -m bench.memory --child ours|torchvision`), so peaks
cannot mix. The parent samples the child's process tree every few milliseconds and keeps the peak of
its summed PSS (proportional set size): a page shared by the baseline's forked workers counts once in
total, where summing RSS would count it once per worker. Both children import torch and read the same
files; ours also imports Lightning, which is part of what using the data module costs.

    python -m bench.memory --data-dir data [--quick]
"""
import argparse
import os
import subprocess
import sys
import time

from . import common

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
SAMPLE_EVERY = 0.05  # seconds; reading smaps costs CPU the child would otherwise get
FULL = dict(repeats=2, val_size=5000)
QUICK = dict(repeats=1, val_size=50)


def pss_mib(pid):
    """PSS of one process in MiB; 0 if it has gone."""
    try:
        with open(f"/proc/{pid}/smaps_rollup") as f:
            return next(int(line.split()[1]) for line in f if line.startswith("Pss:")) / 1024
    except (OSError, StopIteration):
        return 0.0


def tree(pid):
    """pid and all its descendants (the DataLoader workers)."""
    pids, todo = [], [pid]
    while todo:
        p = todo.pop()
        pids.append(p)
        try:
            for task in os.listdir(f"/proc/{p}/task"):
                with open(f"/proc/{p}/task/{task}/children") as f:
                    todo += [int(c) for c in f.read().split()]
        except OSError:
            pass
    return pids


def peak_mib(side, data_dir, val_size):
    """Run one epoch of `side` in a child process; the peak PSS of its process tree in MiB."""
    child = subprocess.Popen([sys.executable, "-W", "ignore", "-m", "bench.memory", "--child", side,
                              "--data-dir", data_dir, "--val-size", str(val_size)], cwd=ROOT)
    peak = 0.0
    while child.poll() is None:
        peak = max(peak, sum(pss_mib(p) for p in tree(child.pid)))
        time.sleep(SAMPLE_EVERY)
    if child.returncode:
        raise RuntimeError(f"bench.memory --child {side} failed with exit code {child.returncode}")
    return peak


def epoch(side, data_dir, val_size):
    import torch

    from .data_pipeline import our_loader, torchvision_loader

    torch.set_num_threads(1)  # as in bench.data_pipeline, and it leaves the memory unchanged
    loader = our_loader(data_dir, True, val_size) if side == "ours" else torchvision_loader(data_dir, True)
    for _ in loader:
        pass


def rows(quick=False, data_dir="data"):
    sizes = QUICK if quick else FULL
    peaks = {side: [peak_mib(side, data_dir, sizes["val_size"]) for _ in range(sizes["repeats"])]
             for side in ("ours", "torchvision")}
    return [common.row("memory: peak PSS of a crop+flip training epoch vs torchvision, incl. workers", "MiB",
                       common.summary(peaks["ours"]), common.summary(peaks["torchvision"]), higher_is_better=False)]


if __name__ == "__main__":
    p = common.parser(__doc__)
    p.add_argument("--child", choices=["ours", "torchvision"], help=argparse.SUPPRESS)
    p.add_argument("--val-size", type=int, default=5000, help=argparse.SUPPRESS)
    args = p.parse_args()
    if args.child:
        epoch(args.child, args.data_dir, args.val_size)
    else:
        common.print_table(rows(args.quick, args.data_dir), "Memory")
