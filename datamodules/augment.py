"""Batched augmentation on uint8 image tensors (B, C, H, W): no per-image Python or PIL work.

Both ops draw their randomness from an explicit generator, so a batch is a pure function of its seed:
that is what makes runs repeatable and resumed runs identical.
"""
import torch
import torch.nn.functional as F


def random_crop(x, padding, generator):
    """Zero-pad by `padding` and cut a random HxW window per image, like torchvision's RandomCrop(padding=p)."""
    b, _, h, w = x.shape
    padded = F.pad(x, (padding,) * 4)  # (B, C, H+2p, W+2p), zeros like torchvision's default fill
    dy = torch.randint(0, 2 * padding + 1, (b,), generator=generator, device=generator.device).to(x.device)
    dx = torch.randint(0, 2 * padding + 1, (b,), generator=generator, device=generator.device).to(x.device)
    rows = (dy[:, None] + torch.arange(h, device=x.device))[:, None, :, None]  # (B, 1, H, 1)
    cols = (dx[:, None] + torch.arange(w, device=x.device))[:, None, None, :]  # (B, 1, 1, W)
    batch = torch.arange(b, device=x.device)[:, None, None, None]
    chans = torch.arange(x.shape[1], device=x.device)[None, :, None, None]
    return padded[batch, chans, rows, cols]  # one gather: (B, C, H, W)


def random_flip(x, generator):
    """Mirror each image left-right with probability 1/2."""
    flip = torch.rand(x.shape[0], generator=generator, device=generator.device).to(x.device) < 0.5
    return torch.where(flip[:, None, None, None], x.flip(3), x)
