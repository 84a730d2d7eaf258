"""Batches made on the GPU equal the CPU path's for the same seed: order, crops, flips, shards, epochs."""
import pytest
import torch

from datamodules import CIFAR10DataModule
from datamodules.batches import Batches
from datamodules.cifar10 import NORMALIZE

pytestmark = [pytest.mark.gpu, pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU")]


@pytest.mark.parametrize("rank,world", [(0, 1), (0, 2), (1, 2)])
@pytest.mark.parametrize("padding,pad,flips", [(2, "zeros", "random"), (0, "zeros", "random"), (2, "reflect", "alternate")])
def test_gpu_batches_equal_cpu_batches(cifar_dir, rank, world, padding, pad, flips):
    dm = CIFAR10DataModule(cifar_dir, val_size=50, augment=True, crop_padding=padding, seed=7)
    dm.setup()
    mean, std = NORMALIZE["standard"]
    kw = dict(train=True, augment=True, crop_padding=padding, crop_pad=pad, flips=flips, seed=7, rank=rank,
              world_size=world)
    cpu = Batches(dm.x, dm.y, dm.splits["train"], 32, mean, std, **kw)
    gpu = Batches(dm.x.cuda(), dm.y.cuda(), dm.splits["train"], 32, mean, std, **kw)
    assert len(cpu) == len(gpu) > 0
    for epoch in range(2):
        pairs = list(zip(cpu, gpu))
        assert len(pairs) == len(cpu)
        for b, ((xc, yc), (xg, yg)) in enumerate(pairs):
            assert xg.is_cuda and yg.is_cuda
            assert torch.equal(yc, yg.cpu()), f"epoch {epoch} batch {b}: another order or shard on the GPU"
            assert torch.equal(xc, xg.cpu()), f"epoch {epoch} batch {b}: other crops or flips on the GPU"


def test_gpu_eval_batches_equal_cpu_batches(cifar_dir):
    dm = CIFAR10DataModule(cifar_dir, val_size=50)
    dm.setup()
    mean, std = NORMALIZE["standard"]
    for split in ("val", "test"):
        cpu = Batches(dm.x, dm.y, dm.splits[split], 40, mean, std)
        gpu = Batches(dm.x.cuda(), dm.y.cuda(), dm.splits[split], 40, mean, std)
        for (xc, yc), (xg, yg) in zip(cpu, gpu):
            assert torch.equal(xc, xg.cpu()) and torch.equal(yc, yg.cpu())
