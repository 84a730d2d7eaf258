"""Batched crop and flip: windows of the zero- or reflect-padded image, uniform over the shifts; seeded draws."""
import pytest
import torch
import torch.nn.functional as F

from datamodules.augment import crop, draws, flip, reflect_index


def distinct_images(b=64):
    # every pixel value unique within an image (int64 so values do not wrap)
    return torch.arange(b * 3 * 32 * 32).view(b, 3, 32, 32)


def seeded(seed):
    """Batch b's generator, as Batches makes them: one seed a batch."""
    return lambda b: torch.Generator().manual_seed(seed * 1000 + b)


@pytest.mark.parametrize("pad", ["zeros", "reflect"])
def test_crop_is_the_window_at_the_drawn_offset_of_the_padded_image(pad):
    x = distinct_images()
    (dy, dx), _ = draws(len(x), 16, 2, seeded(0))
    out = crop(x, dy, dx, 2, pad)
    # torch's own padding, on floats (its reflect mode does not take integer images on the CPU)
    padded = F.pad(x.double(), (2,) * 4, mode="reflect" if pad == "reflect" else "constant").long()
    for i in range(len(x)):
        assert torch.equal(out[i], padded[i, :, dy[i]:dy[i] + 32, dx[i]:dx[i] + 32])


def test_reflect_index_mirrors_without_repeating_the_edge():
    assert reflect_index(5, 2, "cpu").tolist() == [2, 1, 0, 1, 2, 3, 4, 3, 2]


def test_crop_offsets_are_uniform_over_all_shifts():
    """25 shifts of up to 2 px: each drawn with probability 1/25. Over 50,000 draws a count is
    Binomial(50000, 1/25): mean 2000, sd 43.8; 5 sd (219) either way fails by chance with p ~ 1e-5 over all 25."""
    (dy, dx), _ = draws(50_000, 1024, 2, seeded(3))
    counts = torch.bincount(dy * 5 + dx, minlength=25)
    assert len(counts) == 25 and (counts - 2000).abs().max() < 219
    assert dy.min() == 0 and dy.max() == 4  # shifts -2..2, as offsets 0..4 into the padded image


def test_draws_are_seeded_per_batch():
    """A batch's draws depend on its own seed only: drawing the epoch in one go or batch by batch agrees."""
    (dy, dx), coin = draws(100, 32, 4, seeded(1))
    again = draws(100, 32, 4, seeded(1))
    assert torch.equal(dy, again[0][0]) and torch.equal(coin, again[1])
    (dy2, _), coin2 = draws(32, 32, 4, lambda b: seeded(1)(b + 1))  # the second batch alone
    assert torch.equal(dy2, dy[32:64]) and torch.equal(coin2, coin[32:64])
    assert not torch.equal(draws(100, 32, 4, seeded(2))[0][0], dy)
    (none, _), coin = draws(10, 4, 0, seeded(1))
    assert none is None and coin.dtype == torch.bool and len(coin) == 10


def test_flip_mirrors_left_right_where_the_mask_says():
    x = distinct_images(200)
    _, coin = draws(200, 64, 0, seeded(0))
    out = flip(x, coin)
    assert torch.equal(out[coin], x[coin].flip(3)) and torch.equal(out[~coin], x[~coin])
    assert 60 < coin.sum() < 140  # Binomial(200, 1/2): sd 7; 40 either way is 5.7 sd
    assert torch.equal(out[coin][:, :, :, 0], x[coin][:, :, :, -1])  # left column came from the right
