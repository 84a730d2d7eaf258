"""No host-device sync inside the fast recipe's training steps on the GPU (tests/gpu/syncs.py says how
they are caught). A sync makes the host wait for the GPU to drain, and the GPU then waits for the host
to queue the next kernels: at ~10 ms a step, a few of them per step cost as much as the step."""
import pytest
import torch

import train
from tests.gpu.syncs import SyncWatch

pytestmark = [pytest.mark.gpu, pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU")]


def watch(gpu_args, batch_size, first, last):
    w = SyncWatch(first, last)
    train.main(gpu_args + ["--preset", "fast", "--batch-size", str(batch_size), "--max-steps", str(last + 1),
                           "--log-every", "1000"], callbacks=[w])  # no log step in the window
    assert w.watched == last - first
    return w.found


def test_no_sync_in_steps_within_an_epoch(gpu_args):
    """Steps 2-7 at batch 32 (300 fixture images: 9 steps an epoch)."""
    found = watch(gpu_args, 32, 2, 8)
    assert not found, "\n".join(f"{what} at {where}" for what, where in found)


def test_no_sync_in_steps_across_epoch_boundaries(gpu_args):
    """Steps 2-9 at batch 64 (4 steps an epoch): a new epoch's order and Lightning's epoch hooks too."""
    found = watch(gpu_args, 64, 2, 10)
    assert not found, "\n".join(f"{what} at {where}" for what, where in found)
