"""ConvClassifier: what the conv nets (ResNet, FastResNet) share: NHWC layout and test-time augmentation.

A subclass returns its net from `build_net()`; inputs and logits are (B, 3, 32, 32) -> (B, classes).
    channels_last  NHWC memory layout for the net and its inputs: what GPU tensor cores want
    tta            test-time augmentation in val/test: 0 = none, 1 = mirror, 2 = mirror + 1-pixel shifts
"""
from typing import Literal

import torch
import torch.nn.functional as F

from .base import Classifier

TTA_LEVELS = (0, 1, 2)


class ConvClassifier(Classifier):
    def __init__(self, channels_last: bool = False, tta: Literal[TTA_LEVELS] = 0, **optim):
        """
        channels_last: NHWC memory layout, faster convolutions on GPUs
        tta: test-time augmentation in val/test: 1 = mirror, 2 = mirror + shifts
        """
        super().__init__(**optim)
        if tta not in TTA_LEVELS:
            raise ValueError(f"tta must be one of {TTA_LEVELS}, got {tta!r}")
        self.net = self.build_net()
        if channels_last:  # convs keep the layout from layer to layer once weights and input have it
            self.net.to(memory_format=torch.channels_last)

    def build_net(self):
        raise NotImplementedError

    def forward(self, x):
        if self.hparams.channels_last:
            x = x.contiguous(memory_format=torch.channels_last)
        if self.hparams.tta and not self.training:
            return tta_logits(self.net, x, self.hparams.tta)
        return self.net(x)


def tta_logits(net, x, level):
    """Test-time augmentation, averaging logits. level 1: the image and its mirror (training flips at
    random, so the net knows both). level 2, airbench's: also both views shifted one pixel up-left and
    down-right (reflect-padded), weighted 1/4 each against 1/2 for the unshifted pair."""
    def mirror(v):
        return 0.5 * (net(v) + net(v.flip(3)))
    if level == 1:
        return mirror(x)
    padded = F.pad(x, (1, 1, 1, 1), mode="reflect")  # (B, 3, H+2, W+2)
    return 0.5 * mirror(x) + 0.25 * (mirror(padded[:, :, :-2, :-2]) + mirror(padded[:, :, 2:, 2:]))
