"""Batched crop and flip move pixels exactly as torchvision's RandomCrop(padding=4) and flip would."""
import torch
import torch.nn.functional as F

from datamodules.augment import random_crop, random_flip


def distinct_images(b=64):
    # every pixel value unique within an image (int64 so values do not wrap)
    return torch.arange(b * 3 * 32 * 32).view(b, 3, 32, 32)


def test_crop_is_a_window_of_the_zero_padded_image():
    x = distinct_images()
    out = random_crop(x, 4, torch.Generator().manual_seed(0))
    padded = F.pad(x, (4, 4, 4, 4))
    offsets = set()
    for i in range(len(x)):
        hits = [(dy, dx) for dy in range(9) for dx in range(9)
                if torch.equal(out[i], padded[i, :, dy:dy + 32, dx:dx + 32])]
        assert len(hits) == 1  # the output is exactly one window
        offsets.add(hits[0])
    assert len(offsets) > 20  # and the windows differ from image to image


def test_crop_is_seeded():
    x = distinct_images(8)
    a = random_crop(x, 4, torch.Generator().manual_seed(1))
    b = random_crop(x, 4, torch.Generator().manual_seed(1))
    c = random_crop(x, 4, torch.Generator().manual_seed(2))
    assert torch.equal(a, b) and not torch.equal(a, c)


def test_flip_mirrors_left_right_about_half_the_images():
    x = distinct_images(200)
    out = random_flip(x, torch.Generator().manual_seed(0))
    flipped = torch.tensor([torch.equal(o, i.flip(2)) for o, i in zip(out, x)])
    kept = torch.tensor([torch.equal(o, i) for o, i in zip(out, x)])
    assert (flipped ^ kept).all()  # each image is either mirrored (along width) or untouched
    assert 60 < flipped.sum() < 140
    assert torch.equal(out[flipped][:, :, :, 0], x[flipped][:, :, :, -1])  # left column came from the right
