"""Batched augmentation on uint8 image tensors (B, C, H, W): no per-image Python or PIL work.

Both ops draw their randomness from an explicit CPU generator, so a batch is a pure function of its
seed, the same on a GPU as on the CPU: that is what makes runs repeatable and resumed runs identical.
The draws (a few numbers per image) then go to the images' device without making the host wait.
"""
import torch
import torch.nn.functional as F


def random_crop(x, padding, generator):
    """Zero-pad by `padding` and cut a random HxW window per image, like torchvision's RandomCrop(padding=p)."""
    b, _, h, w = x.shape
    dy = to_device(torch.randint(0, 2 * padding + 1, (b,), generator=generator), x.device)
    dx = to_device(torch.randint(0, 2 * padding + 1, (b,), generator=generator), x.device)
    # every window of the zero-padded batch (zeros like torchvision's default fill), as a view: no copy
    windows = F.pad(x, (padding,) * 4).unfold(2, h, 1).unfold(3, w, 1)  # (B, C, 2p+1, 2p+1, H, W)
    return windows[torch.arange(b, device=x.device), :, dy, dx]  # one gather: (B, C, H, W)


def random_flip(x, generator):
    """Mirror each image left-right with probability 1/2."""
    flip = to_device(torch.rand(x.shape[0], generator=generator), x.device) < 0.5
    return torch.where(flip[:, None, None, None], x.flip(3), x)


def to_device(t, device):
    """A CPU tensor on `device`; to a GPU through pinned memory, asynchronously (no host-device sync)."""
    if device.type == "cuda":
        return t.pin_memory().to(device, non_blocking=True)
    return t.to(device)
