"""`Batches`: an iterable of normalised (x, y) batches sliced from one in-memory uint8 tensor.

Training batches are augmented on their device: crop and flip (`augment`), then the policies,
erasing and mixing of `policies` (datamodules/policies.py), which may turn y into soft labels (B, C).

It replaces a DataLoader: there are no workers and no per-image work, the tensors may live on the GPU,
and the order is a function of (seed, epoch), so it can be saved and restored mid-epoch
(`state_dict`/`load_state_dict`, which Lightning calls around checkpoints).

Each epoch is made at once where the images are: one gather puts the epoch's images in order, crop
and flip (datamodules/augment.py) are applied to all of them, and a step then takes a slice. Without
policies a step does no random draw and no host-to-device copy; an epoch does one copy of its draws
(a few numbers per image, drawn on the CPU so that GPU batches equal CPU ones).
"""
import torch

from .augment import FLIPS, PADS, batch_draws, crop, draws, flip, to_device


class Batches:
    def __init__(self, x, y, indices, batch_size, mean, std, *, train=False, augment=False, crop_padding=4,
                 crop_pad="zeros", flips="random", seed=0, rank=0, world_size=1, policies=None, steps_per_call=1):
        if crop_pad not in PADS or flips not in FLIPS:
            raise ValueError(f"crop_pad must be one of {PADS} and flips one of {FLIPS}, got {crop_pad!r}, {flips!r}")
        self.x, self.y = x, y  # x: uint8 (N, 3, 32, 32), y: int64 (N,), on the device batches are made on
        self.indices = indices  # int64 (n,) on the CPU: which rows of x belong to this split
        self.batch_size, self.train, self.augment, self.seed = batch_size, train, augment, seed
        self.crop_padding, self.crop_pad, self.flips = crop_padding, crop_pad, flips  # padding 0: flip only
        self.policies = policies  # an Augmentations (policies.py), or None: crop and flip only
        self.rank, self.world_size = rank, world_size
        self.mean = torch.tensor(mean, dtype=torch.float32, device=x.device).view(1, 3, 1, 1)
        self.std = torch.tensor(std, dtype=torch.float32, device=x.device).view(1, 3, 1, 1)
        self.steps_per_call = steps_per_call if train else 1  # batches per item
        self.epoch, self.done = 0, 0  # position: batches of this epoch handed out so far
        self._made = (None,)  # (epoch, its images, its labels) under steps_per_call > 1

    def _shard_size(self):
        n = len(self.indices)
        if self.train:  # every rank takes the same number of batches, else DDP waits forever at the end
            return n // self.world_size
        return len(range(self.rank, n, self.world_size))

    def batches_per_epoch(self):
        n = self._shard_size()
        return n // self.batch_size if self.train else -(-n // self.batch_size)  # train drops a ragged tail

    def __len__(self):
        return max(self.batches_per_epoch() // self.steps_per_call, 1)

    def _epoch_indices(self):
        """This epoch's rows of x for this rank, in order, on the CPU."""
        idx = self.indices
        if self.train:
            g = torch.Generator().manual_seed(self.seed * 1_000_003 + self.epoch)
            idx = idx[torch.randperm(len(idx), generator=g)]
            idx = idx[: len(idx) - len(idx) % self.world_size]
        # this rank's shard, disjoint from the others
        return idx[self.rank::self.world_size][: self.batches_per_epoch() * self.batch_size]

    def _epoch(self):
        """(images uint8 (n, 3, 32, 32), labels (n,)) of this epoch's batches, in order and augmented."""
        idx = self._epoch_indices()
        dev = self.x.device
        rows = to_device(idx, dev)
        x = self.x[rows]
        if self.augment:
            (dy, dx), coin = draws(len(idx), self.batch_size, self.crop_padding, self._generator)
            if self.flips == "alternate":  # each image's coin from epoch 0, the other way in odd epochs
                first = torch.rand(len(self.x), generator=torch.Generator().manual_seed(self.seed)) < 0.5
                coin = first[idx] ^ bool(self.epoch % 2)
            if self.crop_padding:
                x = crop(x, to_device(dy, dev), to_device(dx, dev), self.crop_padding, self.crop_pad)
            x = flip(x, to_device(coin, dev))
        return x, self.y[rows]

    def __iter__(self):
        # The body runs at the first next(), so an iterator Lightning makes and drops has no effect.
        if self.steps_per_call == 1:
            if self.done >= len(self):  # the last epoch was used up: Lightning stops after len(self) batches,
                self.epoch, self.done = self.epoch + 1, 0  # so the loop below never runs past its end by itself
            yield from self._epoch_batches()
            return
        stream = self._stream()
        for _ in range(len(self)):
            yield [next(stream) for _ in range(self.steps_per_call)]

    def _stream(self):
        """Batches from the current position on, through as many epochs as asked for. A Lightning epoch
        mostly ends inside one of the data's: the next goes on with that epoch's images, made once."""
        while True:
            if self.done >= self.batches_per_epoch():
                self.epoch, self.done = self.epoch + 1, 0
            if self._made[0] != self.epoch:
                self._made = (self.epoch, *self._epoch())
            yield from self._epoch_batches(*self._made[1:])

    def _epoch_batches(self, x=None, y=None):
        """This epoch's batches from position `done` on, advancing it; x, y: the epoch's images and labels
        when made already."""
        x, y = (x, y) if x is not None else self._epoch()
        policies = self.train and self.policies
        for b in range(self.done, self.batches_per_epoch()):
            s = slice(b * self.batch_size, (b + 1) * self.batch_size)
            xb, yb = x[s], y[s]  # (B, 3, 32, 32) uint8, cropped and flipped; (B,) int64
            if policies:  # per batch, from the batch's generator after crop and flip's draws (theirs stay as
                g = self._generator(b)  # they are without policies)
                if self.augment:
                    batch_draws(g, len(yb), self.crop_padding)
                xb = self.policies.pixels(xb, g)
            xb = (xb.float() - self.mean) / self.std
            if policies:
                xb, yb = self.policies.batch(xb, yb, g)
            self.done = b + 1
            yield xb, yb

    def _generator(self, b):
        """Batch b's CPU generator (GPU batches equal CPU ones): its draws are a function of its position."""
        return torch.Generator().manual_seed(hash((self.seed, self.epoch, b, self.rank)) & (2**63 - 1))

    def clean(self, n):
        """The first n images of the split (a seeded random sample of it), normalised, unaugmented: what the
        fast recipe fits its whitening layer to. The same on every rank."""
        x = self.x[to_device(self.indices[:n], self.x.device)]
        return (x.float() - self.mean) / self.std

    def state_dict(self):
        return {"epoch": self.epoch, "batch": self.done}

    def load_state_dict(self, state):
        self.epoch, self.done = state["epoch"], state["batch"]

