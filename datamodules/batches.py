"""`Batches`: an iterable of normalised (x, y) batches sliced from one in-memory uint8 tensor.

Training batches are augmented on their device: crop and flip (`augment`), then the policies,
erasing and mixing of `policies` (datamodules/policies.py), which may turn y into soft labels (B, C).

It replaces a DataLoader: there are no workers and no per-image work, the tensors may live on the GPU,
and the order is a function of (seed, epoch), so it can be saved and restored mid-epoch
(`state_dict`/`load_state_dict`, which Lightning calls around checkpoints).
"""
import torch

from .augment import random_crop, random_flip, to_device


class Batches:
    def __init__(self, x, y, indices, batch_size, mean, std, *, train=False, augment=False, crop_padding=4,
                 seed=0, rank=0, world_size=1, policies=None):
        self.x, self.y = x, y  # x: uint8 (N, 3, 32, 32), y: int64 (N,), on the device batches are made on
        self.indices = indices  # int64 (n,) on the CPU: which rows of x belong to this split
        self.batch_size, self.train, self.augment, self.seed = batch_size, train, augment, seed
        self.crop_padding = crop_padding  # 0: flip only
        self.policies = policies  # an Augmentations (policies.py), or None: crop and flip only
        self.rank, self.world_size = rank, world_size
        self.mean = torch.tensor(mean, dtype=torch.float32, device=x.device).view(1, 3, 1, 1)
        self.std = torch.tensor(std, dtype=torch.float32, device=x.device).view(1, 3, 1, 1)
        self.epoch, self.done = 0, 0  # position: batches of this epoch handed out so far

    def _shard_size(self):
        n = len(self.indices)
        if self.train:  # every rank takes the same number of batches, else DDP waits forever at the end
            return n // self.world_size
        return len(range(self.rank, n, self.world_size))

    def __len__(self):
        n = self._shard_size()
        return n // self.batch_size if self.train else -(-n // self.batch_size)  # train drops a ragged tail

    def _epoch_indices(self):
        idx = self.indices
        if self.train:
            g = torch.Generator().manual_seed(self.seed * 1_000_003 + self.epoch)
            idx = idx[torch.randperm(len(idx), generator=g)]
            idx = idx[: len(idx) - len(idx) % self.world_size]
        return to_device(idx[self.rank::self.world_size], self.x.device)  # this rank's shard, disjoint from the others

    def __iter__(self):
        # The body runs at the first next(), so an iterator Lightning makes and drops has no effect.
        if self.done >= len(self):  # the last epoch was used up: Lightning stops after len(self) batches,
            self.epoch, self.done = self.epoch + 1, 0  # so the loop below never runs past its end by itself
        idx = self._epoch_indices()
        for b in range(self.done, len(self)):
            i = idx[b * self.batch_size:(b + 1) * self.batch_size]
            xb, yb = self.x[i], self.y[i]  # (B, 3, 32, 32) uint8, (B,) int64
            policies = self.train and self.policies
            if self.augment or policies:
                g = torch.Generator()  # on the CPU: GPU batches equal CPU ones
                g.manual_seed(hash((self.seed, self.epoch, b, self.rank)) & (2**63 - 1))
            if self.augment:
                if self.crop_padding:
                    xb = random_crop(xb, self.crop_padding, g)
                xb = random_flip(xb, g)
            if policies:  # draws after crop and flip's, so theirs stay what they were without policies
                xb = self.policies.pixels(xb, g)
            xb = (xb.float() - self.mean) / self.std
            if policies:
                xb, yb = self.policies.batch(xb, yb, g)
            self.done = b + 1
            yield xb, yb

    def state_dict(self):
        return {"epoch": self.epoch, "batch": self.done}

    def load_state_dict(self, state):
        self.epoch, self.done = state["epoch"], state["batch"]
