"""The NumPy MLP's training step against the same MLP in PyTorch on the CPU, measured in one run.

    python -m bench.numpy_mlp

One step = forward, cross-entropy, backward and the SGD update on a batch of 200, 3072-100-10 with
ELU, float32: what `train.py --model numpy_mlp` does per step (NumpySGD included), against
nn.Linear/ELU/cross_entropy/autograd/torch.optim.SGD. Both sides get the same number of threads
(OpenBLAS for NumPy, torch's intra-op pool) and alternate round by round, so a busy machine slows
both alike. ratio > 1 means the NumPy step is faster.
"""
import os

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F

from bench.common import measure_pair, print_table, row
from models.numpy_classifier import NumpySGD
from models.numpy_mlp import MLP, CrossEntropyModule

BATCH, N_IN, HIDDEN, N_CLASSES, LR = 200, 3072, 100, 10, 1e-3
GOAL = 0.5  # within 2x of PyTorch's step time


def numpy_step_fn(x, y):
    mlp, ce = MLP(N_IN, [HIDDEN], N_CLASSES, init="kaiming", rng=np.random.default_rng(0), dtype=np.float32), \
        CrossEntropyModule()
    opt = NumpySGD(mlp, LR)
    x, y = x.numpy(), y.numpy()

    def step():
        probs = mlp.forward(x)
        ce.forward(probs, y)
        mlp.backward(ce.backward(probs, y))
        opt.step()
    return step


def torch_step_fn(x, y):
    net = nn.Sequential(nn.Linear(N_IN, HIDDEN), nn.ELU(), nn.Linear(HIDDEN, N_CLASSES))
    opt = torch.optim.SGD(net.parameters(), lr=LR)

    def step():
        opt.zero_grad(set_to_none=True)
        F.cross_entropy(net(x), y).backward()
        opt.step()
    return step


def rows(quick=False):
    steps, rounds = (1, 3) if quick else (50, 7)  # steps per timing, timings per side
    threads = int(os.environ.get("OPENBLAS_NUM_THREADS") or os.environ.get("OMP_NUM_THREADS") or os.cpu_count())
    old_threads = torch.get_num_threads()
    torch.set_num_threads(threads)  # OpenBLAS's default is every CPU; give torch the same
    try:
        g = torch.Generator().manual_seed(0)
        x, y = torch.randn(BATCH, N_IN, generator=g), torch.randint(0, N_CLASSES, (BATCH,), generator=g)
        many = lambda step: lambda: [step() for _ in range(steps)]  # noqa: E731
        t_ours, t_base = measure_pair(many(numpy_step_fn(x, y)), many(torch_step_fn(x, y)), repeats=rounds)
    finally:
        torch.set_num_threads(old_threads)
    what = f"numpy_mlp train step (batch {BATCH}, {N_IN}-{HIDDEN}-{N_CLASSES}, {threads} threads) vs torch CPU"
    per_step = lambda t: {k: v / steps for k, v in t.items()}  # noqa: E731
    return [row(what, "s/step", per_step(t_ours), per_step(t_base), higher_is_better=False, goal=GOAL)]


if __name__ == "__main__":
    print_table(rows(), "NumPy MLP vs PyTorch MLP, training step on CPU")
