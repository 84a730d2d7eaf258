"""CIFAR10DataModule: the whole data set as one uint8 tensor, seeded splits, fast batches.

    dm = CIFAR10DataModule("data")   # holds cifar-10-batches-py/ or gets it
    dm.prepare_data(); dm.setup()
    x, y = next(iter(dm.train_dataloader()))   # x float32 (B, 3, 32, 32) normalised, y int64 (B,)

Under a Trainer on a GPU the tensor and the augmentation live on that GPU; under DDP each rank
iterates its own shard.
"""
import warnings
from typing import Literal

import numpy as np
import pytorch_lightning as pl
import torch

from config.types import Count, Fraction, NonNegative, PositiveInt, Runtime
from runfolder import BadInput

from . import files
from .files import CLASSES  # noqa: F401  (datamodules.cifar10.CLASSES, as before)
from .augment import FLIPS, PADS
from .batches import Batches
from .policies import POLICIES, Augmentations

# Per-channel mean and std of the 50,000 official training images in [0, 1] units: stack the five
# data batches, divide by 255, reshape to (50000, 3, 1024), then mean and (population) std over axes
# 0 and 2. The JPEG copy from shared/data gives (0.4913, 0.4821, 0.4465) and (0.2452, 0.2428, 0.2606).
MEAN = (0.4914, 0.4822, 0.4465)
STD = (0.2470, 0.2435, 0.2616)

# How pixels become model inputs, as (mean, std) in 0..255 pixel units:
#   standard: z-score per channel, what conv nets and Adam-trained nets want;
#   center:   subtract the channel mean only, the course's own preprocessing. Its larger input scale
#             is what lets the course's plain SGD (lr 1e-3, 1400 steps) MLP reach its 0.48.
NORMALIZE = {
    "standard": (tuple(255 * m for m in MEAN), tuple(255 * s for s in STD)),
    "center": (tuple(255 * m for m in MEAN), (1.0, 1.0, 1.0)),
}


class CIFAR10DataModule(pl.LightningDataModule):
    num_classes = 10
    dims = (3, 32, 32)

    def __init__(self, data_dir: Runtime[str] = "data", batch_size: PositiveInt = 128,
                 eval_batch_size: Runtime[PositiveInt] = 1000, val_size: Count = 5000, augment: bool = False,
                 crop_padding: Count = 4, crop_pad: Literal[PADS] = "zeros", flips: Literal[FLIPS] = "random",
                 policy: Literal[POLICIES] = "none", erase: Fraction = 0.0, cutout: Count = 0,
                 mixup: NonNegative = 0.0, cutmix: NonNegative = 0.0, normalize: Literal[tuple(NORMALIZE)] = "standard",
                 seed: int = 42, *, steps_per_call=1, download=True):
        """
        data_dir: folder holding cifar-10-batches-py/ or cifar-10-python.tar.gz
        batch_size: training batch size per device
        eval_batch_size: batch size of validation and test
        val_size: images held out of train for validation; 0 = none
        augment: random crop (zero padding --crop-padding) and horizontal flip
        crop_padding: --augment's crop padding in pixels; 0 = flip only
        crop_pad: --augment's crop fills shifted-in pixels with zeros or a reflection
        flips: --augment's flips: random per image per epoch, or alternate (airbench94's: each image the other way each epoch)
        policy: per-image augmentation policy after crop/flip: AutoAugment's CIFAR-10 policy, RandAugment, TrivialAugmentWide
        erase: random erasing: erase a random box of each image with this probability
        cutout PX: Cutout: blank a PX x PX square of every image (16 is the paper's for CIFAR-10); 0 = off
        mixup ALPHA: MixUp with lambda ~ Beta(ALPHA, ALPHA) (0.2 is common); 0 = off; soft labels
        cutmix ALPHA: CutMix with lambda ~ Beta(ALPHA, ALPHA) (1.0 is common); 0 = off; with --mixup: one of the two per batch
        normalize: standard = per-channel z-score, center = mean only
        seed: the run's seed: the split, the initial weights, the batches

        Code passes steps_per_call, the run's --steps-per-call as a number K: training batches come in lists
        of K, one list per Lightning step, in the order K = 1 gives them.
        """
        super().__init__()
        if normalize not in NORMALIZE:
            raise ValueError(f"normalize must be one of {sorted(NORMALIZE)}, got {normalize!r}")
        if crop_padding < 0:
            raise ValueError(f"crop_padding must be >= 0, got {crop_padding}")
        if crop_pad not in PADS or flips not in FLIPS:
            raise ValueError(f"crop_pad must be one of {PADS} and flips one of {FLIPS}, got {crop_pad!r}, {flips!r}")
        self.save_hyperparameters()
        self.policies = Augmentations(policy, erase, cutout, mixup, cutmix, self.num_classes)  # checks them
        self.x = self.y = None  # uint8 (60000, 3, 32, 32) and int64 (60000,): train batches, then test
        self.splits = {}  # name -> int64 indices into x

    def prepare_data(self):
        # Lightning calls this on one process per node, so the download happens once.
        files.locate(self.hparams.data_dir, download=self.hparams.download)

    def setup(self, stage=None):
        if self.x is not None:
            return
        folder = files.locate(self.hparams.data_dir, download=False)
        train_x, train_y = files.read_split(folder, "train")
        test_x, test_y = files.read_split(folder, "test")
        for split, n in (("train", len(train_y)), ("test", len(test_y))):
            if n != files.FULL_SIZES[split]:
                warnings.warn(f"{folder}: {n} {split} images, not {files.FULL_SIZES[split]}; using them as they are")
        val_size = self.hparams.val_size
        if not 0 <= val_size < len(train_y):
            raise BadInput(f"val_size must be in [0, {len(train_y)}), got {val_size}")
        self.x = torch.from_numpy(np.concatenate([train_x, test_x]))
        self.y = torch.from_numpy(np.concatenate([train_y, test_y]))
        # The split depends on the seed only, never on the world size or the device.
        perm = torch.randperm(len(train_y), generator=torch.Generator().manual_seed(self.hparams.seed))
        self.splits = {"train": perm[val_size:], "val": perm[:val_size],
                       "test": torch.arange(len(train_y), len(self.y))}

    def _batches(self, split, batch_size, train=False):
        rank, world = 0, 1
        if self.trainer is not None:
            rank, world = self.trainer.global_rank, self.trainer.world_size
            device = self.trainer.strategy.root_device
            if device.type == "cuda" and self.x.device != device:  # moves once; batches are then made on the GPU
                self.x, self.y = self.x.to(device), self.y.to(device)
        mean, std = NORMALIZE[self.hparams.normalize]
        return Batches(self.x, self.y, self.splits[split], batch_size, mean, std, train=train,
                       augment=train and self.hparams.augment, crop_padding=self.hparams.crop_padding,
                       crop_pad=self.hparams.crop_pad, flips=self.hparams.flips,
                       seed=self.hparams.seed, rank=rank, world_size=world, policies=self.policies or None,
                       steps_per_call=self.hparams.steps_per_call)

    def train_dataloader(self):
        return self._batches("train", self.hparams.batch_size, train=True)

    def val_dataloader(self):
        return self._batches("val", self.hparams.eval_batch_size) if self.hparams.val_size else []

    def test_dataloader(self):
        return self._batches("test", self.hparams.eval_batch_size)

    def transfer_batch_to_device(self, batch, device, dataloader_idx):
        """Batches are made where the model is (`_batches`); Lightning's walk over each batch to move it
        would cost every step for nothing."""
        batches = batch if isinstance(batch, list) else [batch]  # a list: --steps-per-call's K batches
        if all(torch.is_tensor(t) and t.device == device for b in batches for t in b):
            return batch
        return super().transfer_batch_to_device(batch, device, dataloader_idx)
