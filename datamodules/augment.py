"""Batched augmentation on uint8 image tensors (B, C, H, W): no per-image Python or PIL work.

`draws` makes an epoch's random numbers on the CPU from explicit seeds, so they are the same on a GPU as
on the CPU and a resumed run draws what an uninterrupted one did; `crop` and `flip` then apply them to
the epoch's images on the images' device, all at once.

    PADS   how a crop fills the pixels it shifts in:
           zeros    black, like torchvision's RandomCrop(padding=p)
           reflect  the image mirrored at its edge (no edge of the first/last row or column repeated),
                    as airbench94 and the test-time shifts (models/conv.py tta_logits) do
    FLIPS  which images are mirrored left-right in an epoch:
           random     each image, each epoch, with probability 1/2
           alternate  airbench94's: a random half in epoch 0 (drawn once per run, per image), then every
                      image the other way in each next epoch, so each is seen both ways every 2 epochs
"""
import torch

PADS = ("zeros", "reflect")
FLIPS = ("random", "alternate")


def draws(n, batch_size, padding, generator_of_batch):
    """(dy, dx), flip for n images taken in batches: CPU int64 shifts in [0, 2 * padding] (None when padding
    is 0) and a bool coin per image, each batch's drawn from its own CPU generator_of_batch(b)."""
    per_batch = [batch_draws(generator_of_batch(b), min(batch_size, n - start), padding)
                 for b, start in enumerate(range(0, n, batch_size))]
    dy, dx, coin = (torch.cat(ts) if ts else torch.zeros(0, dtype=torch.long) for ts in zip(*per_batch))
    return (dy, dx) if padding else (None, None), coin


def batch_draws(g, size, padding):
    """One batch's (dy, dx, coin) from generator g, in this order (dy, dx empty when padding is 0)."""
    shifts = [torch.randint(0, 2 * padding + 1, (size,), generator=g) for _ in range(2)] if padding else \
        [torch.zeros(0, dtype=torch.long)] * 2
    return (*shifts, torch.rand(size, generator=g) < 0.5)


def reflect_index(size, padding, device):
    """Indices that pad a length-`size` axis by `padding` on both sides by reflection: [p, ..., 1, 0, 1, ...]."""
    i = torch.arange(-padding, size + padding, device=device).abs()
    return torch.where(i >= size, 2 * (size - 1) - i, i)


def crop(x, dy, dx, padding, pad="zeros"):
    """Pad x (B, C, H, W) by `padding` and cut the HxW window at offset (dy[i], dx[i]) of image i."""
    b, _, h, w = x.shape
    if pad == "reflect":  # by index, which works for uint8 too (F.pad's reflect mode does not on the CPU)
        padded = x[:, :, reflect_index(h, padding, x.device)[:, None], reflect_index(w, padding, x.device)]
    else:
        padded = torch.nn.functional.pad(x, (padding,) * 4)
    windows = padded.unfold(2, h, 1).unfold(3, w, 1)  # every window, as a view: (B, C, 2p+1, 2p+1, H, W)
    return windows[torch.arange(b, device=x.device), :, dy, dx]  # one gather: (B, C, H, W)


def flip(x, mask):
    """x with the images where mask (B,) is True mirrored left-right."""
    return torch.where(mask[:, None, None, None], x.flip(3), x)


def to_device(t, device):
    """A CPU tensor on `device`; to a GPU through pinned memory, asynchronously (no host-device sync)."""
    if device.type == "cuda":
        return t.pin_memory().to(device, non_blocking=True)
    return t.to(device)
