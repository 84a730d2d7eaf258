"""MLP: Flatten -> [Linear -> (norm) -> activation] x len(hidden) -> Linear.

    x (B, 3, 32, 32) -> (B, 3072) -> (B, hidden[0]) -> ... -> (B, 10) logits

`hidden=[]` is softmax regression. The norm goes after each hidden Linear, never after the output
layer; subclasses choose it through `make_norm` (the LayerNorm MLP does).
"""
from typing import Literal

import torch.nn as nn

from config.types import Fraction, Sizes

from .base import Classifier

ACTIVATIONS = {"elu": nn.ELU, "tanh": nn.Tanh, "relu": nn.ReLU}
# default: PyTorch's. kaiming: He normal, zero bias. course: N(0, 1e-4) weights and zero bias in every layer,
# the course's NumPy init. small-first: N(0, 1e-4) in the first layer only, PyTorch's default after it. With
# `normalize=center` the inputs are pixel-unit sized (std ~64), so a small first layer keeps its outputs
# O(1), while the later layers see O(1) inputs and need PyTorch's scale: with `course` everywhere a
# second hidden layer starts so small that plain SGD never leaves the start (0.10 for 64-128 here).
INITS = ("default", "kaiming", "course", "small-first")


class MLP(Classifier):
    """PyTorch MLP: hidden sizes, batch norm, ELU/Tanh/ReLU (course: 0.48)"""
    name = "mlp"

    def __init__(self, hidden: Sizes = (100,), activation: Literal[tuple(ACTIVATIONS)] = "elu", batchnorm: bool = False,
                 dropout: Fraction = 0.0, init: Literal[INITS] = "default", *, n_inputs=3072, **optim):
        """
        hidden: hidden layer sizes (64 128, 64,128 or [64,128]); none = softmax regression
        activation: after each hidden layer
        batchnorm: batch norm after each hidden linear layer
        dropout: dropout after each hidden activation
        init: weight init: course = N(0, 1e-4) everywhere, small-first = only in the first layer
        """
        super().__init__(**optim)
        if activation not in ACTIVATIONS:
            raise ValueError(f"activation must be one of {sorted(ACTIVATIONS)}, got {activation!r}")
        if init not in INITS:
            raise ValueError(f"init must be one of {INITS}, got {init!r}")
        if any(h <= 0 for h in hidden):
            raise ValueError(f"hidden sizes must be positive, got {list(hidden)}")
        layers, width = [nn.Flatten()], n_inputs
        for h in hidden:
            layers += [nn.Linear(width, h), self.make_norm(h), ACTIVATIONS[activation]()]
            if dropout:
                layers.append(nn.Dropout(dropout))
            width = h
        layers.append(nn.Linear(width, self.hparams.num_classes))
        self.net = nn.Sequential(*[m for m in layers if not isinstance(m, nn.Identity)])
        self._init_weights(init)

    def make_norm(self, width):
        return nn.BatchNorm1d(width) if self.hparams.batchnorm else nn.Identity()

    def _init_weights(self, init):
        linears = [m for m in self.net if isinstance(m, nn.Linear)]
        if init in ("default", "small-first"):
            linears = linears[:1] if init == "small-first" else []
        for m in linears:
            if init == "kaiming":
                nn.init.kaiming_normal_(m.weight)
            else:
                nn.init.normal_(m.weight, 0.0, 1e-4)
            nn.init.zeros_(m.bias)
