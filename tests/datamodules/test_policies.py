"""Augmentation policies (datamodules/policies.py): every op equals torchvision v2's applied image by image,
each image draws its own op, the draws follow v2's distributions, image statistics stay sane, erasing and
mixing put the right pixels and the right label weights where they say, all a function of the seed."""
import math

import pytest
import torch
from torchvision.transforms import v2

from datamodules import policies as P
from datamodules.batches import Batches
from datamodules.files import read_split


@pytest.fixture(scope="module")
def images(cifar_dir):
    """The fixture's 300 train images, uint8 (300, 3, 32, 32): class colours plus noise."""
    return torch.from_numpy(read_split(f"{cifar_dir}/cifar-10-batches-py", "train")[0])


def smooth_images(n=64, seed=0):
    """Images with edges and gradients (what sharpness, equalize and the shifts act on), uint8 (n, 3, 32, 32)."""
    g = torch.Generator().manual_seed(seed)
    low = torch.rand(n, 3, 4, 4, generator=g) * 255
    return torch.nn.functional.interpolate(low, size=32, mode="bilinear").round().to(torch.uint8)


def v2_reference(x, ops, magnitudes):
    """Each image through v2's own op code (what its AutoAugment family calls), one image at a time."""
    t = v2.TrivialAugmentWide()
    return torch.stack([t._apply_image_or_video_transform(img, P.OPS[k], float(m), interpolation=t.interpolation,
                                                          fill=t._fill)
                        for img, k, m in zip(x, ops.tolist(), magnitudes)])


CASES = [(policy, name) for policy, space in P.SPACES.items() for name in space.names if name != "Identity"]


@pytest.mark.parametrize("policy, name", CASES)
def test_each_op_at_each_magnitude_equals_v2_image_by_image(policy, name, images):
    space = P.SPACES[policy]
    k = space.names.index(name)
    x = torch.cat([images[:64], smooth_images(64)])
    bins = torch.arange(len(x)) % space.magnitudes.shape[1]  # every magnitude, each with both signs
    sign = torch.where((torch.arange(len(x)) // space.magnitudes.shape[1]) % 2 == 0, 1.0, -1.0)
    magnitudes = space.magnitudes[k, bins] * (sign if space.signed[k] else 1.0)
    ops = torch.full((len(x),), P.OPS.index(name))
    ours = P.apply_ops(x, ops, magnitudes)
    assert ours.dtype == torch.uint8 and ours.shape == x.shape
    assert torch.equal(ours, v2_reference(x, ops, magnitudes))


@pytest.mark.parametrize("policy", ["autoaugment", "randaugment", "trivialaugment"])
def test_a_policy_batch_equals_v2_applied_image_by_image_with_the_same_draws(policy, images):
    g = torch.Generator().manual_seed(3)
    x, steps = images[:128], P.draw_policy(policy, 128, g)
    expected = x
    for ops, magnitudes in steps:
        expected = v2_reference(expected, ops, magnitudes)
    assert torch.equal(P.apply_policy(x, policy, torch.Generator().manual_seed(3)), expected)


@pytest.mark.parametrize("policy", ["autoaugment", "randaugment", "trivialaugment"])
def test_every_image_draws_its_own_op(policy):
    # v2's transforms given a batch tensor apply one op to all of it; here copies of one image come out different
    x = smooth_images(1).expand(64, -1, -1, -1)
    out = P.apply_policy(x, policy, torch.Generator().manual_seed(0))
    assert len({o.numpy().tobytes() for o in out}) > 10


def test_draws_follow_v2s_distributions():
    n = 20000
    g = torch.Generator().manual_seed(0)
    # RandAugment and TrivialAugment pick ops uniformly: each count within 5 binomial sigmas of n / ops
    for policy in ("randaugment", "trivialaugment"):
        ops = P.draw_policy(policy, n, g)[0][0]
        k = len(P.SPACES[policy].names)
        counts = torch.bincount(ops, minlength=len(P.OPS))[P.SPACES[policy].ids]
        sigma = math.sqrt(n * (1 / k) * (1 - 1 / k))
        assert (counts - n / k).abs().max() < 5 * sigma
    # AutoAugment: a step happens with its sub-policy's probability, so step s is Identity with probability
    # mean over the 25 sub-policies of (1 - p) (plus the steps whose op is itself no op: none in CIFAR-10's)
    for s, (ops, magnitudes) in enumerate(P.draw_policy("autoaugment", n, g)):
        p_skip = float((1 - P.AA_PROB[:, s]).mean())
        skipped = int((ops == P.IDENTITY).sum())
        assert abs(skipped - n * p_skip) < 5 * math.sqrt(n * p_skip * (1 - p_skip))
    # signed magnitudes are negated half the time
    ops, m = P.draw_policy("trivialaugment", n, g)[0]
    signed = torch.isin(ops, torch.tensor([P.OPS.index(o) for o in ("ShearX", "Rotate", "Brightness")])) & (m != 0)
    assert abs(int((m[signed] < 0).sum()) - signed.sum() / 2) < 5 * math.sqrt(signed.sum() / 4)


@pytest.mark.parametrize("policy", ["autoaugment", "randaugment", "trivialaugment"])
def test_policies_keep_image_statistics_sane(policy, images):
    """Per-channel mean and std of the z-scored batch, before 0 and 1. Bounds: the ops that move the mean
    systematically are the geometric ones, whose zero fill darkens (at most 5 of 14 ops; TrivialAugment's
    shifts reach a whole image, so under 1/2 of an image blank on average: < 5/14 * 1/2 = 18% of the pixels
    at 0, a drop of < 0.18 * mean / std, about 0.45 here); Invert, Solarize, Equalize and AutoContrast
    spread values (std up to ~1.4). A scale bug (x / 255, or values wrapped around uint8) moves the mean by
    > 1 std or the std far out of [0.8, 1.6]."""
    x = images
    mean, std = x.float().mean((0, 2, 3), keepdim=True), x.float().std((0, 2, 3), keepdim=True)
    out = P.apply_policy(x, policy, torch.Generator().manual_seed(0))
    assert out.dtype == torch.uint8 and out.shape == x.shape
    z = (out.float() - mean) / std
    assert ((z.mean((0, 2, 3)) > -0.6) & (z.mean((0, 2, 3)) < 0.2)).all()
    assert ((z.std((0, 2, 3)) > 0.8) & (z.std((0, 2, 3)) < 1.6)).all()


def distinct_floats(n=200, seed=0):
    """Normalised-looking images with no exact zeros, so a 0 is an erased pixel."""
    x = torch.randn(n, 3, 32, 32, generator=torch.Generator().manual_seed(seed))
    return torch.where(x == 0, 1.0, x)


def test_random_erasing_blanks_one_box_per_chosen_image_as_v2_sizes_it():
    x = distinct_floats(400)
    out = P.random_erasing(x, 0.5, torch.Generator().manual_seed(0))
    assert out.dtype == x.dtype and out.shape == x.shape
    erased = (out == 0).all(1)  # (n, H, W): all three channels 0
    hit = erased.flatten(1).any(1)
    assert abs(int(hit.sum()) - 200) < 5 * math.sqrt(400 * 0.25)  # probability 0.5
    for e in erased[hit]:
        rows, cols = e.any(1).nonzero().squeeze(1), e.any(0).nonzero().squeeze(1)
        h, w = len(rows), len(cols)
        assert e.sum() == h * w and rows[-1] - rows[0] + 1 == h and cols[-1] - cols[0] + 1 == w  # one rectangle
        assert h < 32 and w < 32
        slack = (h + w) / 2 + 0.25  # v2 rounds each side of a box of area A: h w = A +- (h + w) / 2 + 1/4
        assert P.ERASE_SCALE[0] * 1024 - slack <= h * w <= P.ERASE_SCALE[1] * 1024 + slack
    assert torch.equal(out[~erased.unsqueeze(1).expand_as(x)], x[~erased.unsqueeze(1).expand_as(x)])
    assert len({(int(e.nonzero()[0, 0]), int(e.nonzero()[0, 1])) for e in erased[hit]}) > 20  # boxes differ


def test_cutout_blanks_a_clipped_square_in_every_image():
    x = distinct_floats()
    out = P.cutout(x, 16, torch.Generator().manual_seed(0))
    erased = (out == 0).all(1).flatten(1).sum(1)
    assert ((erased >= 8 * 8) & (erased <= 16 * 16)).all()  # the centre lies in the image: a quarter at least
    assert (erased == 256).float().mean() > 0.1  # and often the whole square (centre 8+ px from the border)


def labelled(n=100, seed=0):
    x = distinct_floats(n, seed)
    return x, torch.randint(10, (n,), generator=torch.Generator().manual_seed(seed))


def test_mixup_mixes_images_and_labels_by_the_same_lambda():
    x, y = labelled()
    out, target = P.mixup(x, y, 0.4, 10, torch.Generator().manual_seed(0))
    assert target.shape == (100, 10) and torch.allclose(target.sum(1), torch.ones(100))
    partner = y.roll(1, 0)
    lam = target[y != partner].gather(1, y[y != partner, None]).unique()
    assert len(lam) == 1 and 0 < lam < 1  # one lambda for the batch, the own label's weight
    lam = float(lam)
    assert torch.allclose(target[y != partner].gather(1, partner[y != partner, None]), torch.tensor(1 - lam))
    assert torch.allclose(out, lam * x + (1 - lam) * x.roll(1, 0), atol=1e-6)


def test_cutmix_label_weights_are_the_pasted_area():
    x, y = labelled()
    for seed in range(10):
        out, target = P.cutmix(x, y, 1.0, 10, torch.Generator().manual_seed(seed))
        assert torch.allclose(target.sum(1), torch.ones(100))
        pasted = (out != x).any(1)  # (n, H, W); every pixel of distinct_floats differs between images
        assert torch.equal(out[pasted.unsqueeze(1).expand_as(x)], x.roll(1, 0)[pasted.unsqueeze(1).expand_as(x)])
        area = pasted.flatten(1).float().mean(1)  # the same box in every image
        assert torch.all(area == area[0])
        own = target.gather(1, y[:, None]).squeeze(1)
        differ = y != y.roll(1, 0)
        assert torch.allclose(own[differ], 1 - area[differ])


def test_mix_with_both_alphas_picks_each_about_half_the_batches():
    x, y = labelled(20)
    picks = []
    for seed in range(200):
        out, target = P.mix(x, y, 0.4, 1.0, 10, torch.Generator().manual_seed(seed))
        picks.append(bool(((out == x).all(1)).any()))  # cutmix leaves pixels outside its box untouched
    assert 60 < sum(picks) < 140


def test_augmentations_reject_bad_settings():
    for kwargs in (dict(policy="autoaugment-imagenet"), dict(erase=1.5), dict(cutout=-1), dict(mixup=-0.1)):
        with pytest.raises(ValueError):
            P.Augmentations(**kwargs)


ALL_ON = P.Augmentations("trivialaugment", erase=0.5, cutout=8, mixup=0.2, cutmix=1.0)


def make(policies=ALL_ON, seed=7):
    x = smooth_images(103)
    return Batches(x, torch.arange(103) % 10, torch.arange(103), 10, (0, 0, 0), (1, 1, 1), train=True,
                   augment=True, seed=seed, policies=policies)


def test_batches_with_policies_are_a_function_of_seed_and_position():
    a, b, c = list(make()), list(make()), list(make(seed=8))
    assert all(torch.equal(xa, xb) and torch.equal(ya, yb) for (xa, ya), (xb, yb) in zip(a, b))
    assert not torch.equal(a[0][0], c[0][0])
    assert a[0][1].shape == (10, 10)  # soft labels
    plain = list(make(policies=None))  # the policies change the images, not crop and flip's draws
    assert not torch.equal(a[0][0], plain[0][0])


def test_restoring_mid_epoch_with_policies_continues_with_the_same_batches():
    ref = make()
    reference = list(ref) + list(ref)  # two epochs
    run = make()
    it = iter(run)
    for _ in range(4):
        next(it)
    resumed = make()
    resumed.load_state_dict(run.state_dict())
    rest = list(resumed) + list(resumed)
    assert len(rest) == len(reference) - 4
    assert all(torch.equal(xa, xb) and torch.equal(ya, yb) for (xa, ya), (xb, yb) in zip(rest, reference[4:]))
