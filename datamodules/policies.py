"""Augmentation policies on whole batches, every image with its own draw: what `Batches` adds to crop and flip.

    stage                      on                        flag
    policy                     uint8 (B, 3, H, W)        --policy autoaugment | randaugment | trivialaugment
    random erasing, Cutout     normalised float batch    --erase P, --cutout PX   (erased pixels = channel mean)
    MixUp, CutMix              normalised batch + labels --mixup ALPHA, --cutmix ALPHA -> soft labels (B, C)

The policies are torchvision.transforms.v2's AutoAugment (CIFAR-10 policy), RandAugment (2 ops,
magnitude 9 of 31) and TrivialAugmentWide: their op lists, magnitude tables and sub-policies are read
from v2 itself (`SPACES`), and the parameter-free ops (Equalize, Invert, grayscale) are v2's own
batched kernels. What is written here, and why: given a (B, C, H, W) tensor, v2's policy
transforms draw ONE op and magnitude for the whole batch, and v2.RandomErasing one box; applied image
by image they cost about 4.5x more than the batched ops below (bench/augment.py, docs/benchmarks.md).
v2's functional ops take one scalar magnitude per call, and grouping images by (op, magnitude) to call
them once per group does not batch TrivialAugment (14 ops x 31 magnitudes x 2 signs: about one image a
group at batch 256), so the ops that have a magnitude are written here for a vector of per-image
magnitudes, following v2's kernels step by step (tests/datamodules/test_policies.py checks each, at
every magnitude, equal to v2's applied image by image). MixUp and CutMix follow v2.MixUp/v2.CutMix
(partner = the batch rolled by one, one lambda per batch) but draw from the generator passed in (v2's
draw from torch's global RNG) and build soft labels without F.one_hot (which checks labels on the host).

Every random number comes from the CPU generator `g` the caller passes (Batches seeds it from seed,
epoch and batch), so a batch is a pure function of its seed on any device, and a resumed run redraws
exactly what the uninterrupted run drew. Draws go to the images' device without making the host wait.
"""
import math

import numpy as np
import torch
import torch.nn.functional as F
from torchvision.transforms import v2
from torchvision.transforms.v2 import functional as TF

from .augment import to_device

POLICIES = ("none", "autoaugment", "randaugment", "trivialaugment")
RANDAUGMENT = dict(num_ops=2, magnitude=9, bins=31)  # v2.RandAugment's defaults (the paper's N=2, M=9)
TRIVIAL_BINS = 31                                     # v2.TrivialAugmentWide's
AUTOAUGMENT_BINS = 10                                 # v2.AutoAugment's magnitude scale
ERASE_SCALE, ERASE_RATIO = (0.02, 0.33), (0.3, 3.3)   # v2.RandomErasing's defaults: area fraction, aspect
ERASE_ATTEMPTS = 10                                   # as v2.RandomErasing: no box fits after 10 -> no erase

GEOMETRIC = ("ShearX", "ShearY", "TranslateX", "TranslateY", "Rotate")
OPS = ("Identity", *GEOMETRIC, "Brightness", "Color", "Contrast", "Sharpness", "Posterize", "Solarize",
       "AutoContrast", "Equalize", "Invert")
IDENTITY = OPS.index("Identity")


class Space:
    """One policy's op table, from v2: op ids (into OPS), whether each is signed, magnitudes (op, bin)."""

    def __init__(self, transform_cls, bins, height=32, width=32):
        space = transform_cls._AUGMENTATION_SPACE  # name -> (magnitudes(num_bins, h, w) or None, signed)
        self.names = list(space)
        self.ids = torch.tensor([OPS.index(n) for n in self.names])
        self.signed = torch.tensor([signed for _, signed in space.values()])
        mags = [fn(bins, height, width) for fn, _ in space.values()]
        # v2 reads a magnitude as float(table[bin]): float32 table values, used as doubles
        self.magnitudes = torch.stack([torch.zeros(bins, dtype=torch.float64) if m is None else m.double()
                                       for m in mags])

    def signed_magnitudes(self, op, bins, g):
        """(n,) op indices into this space and (n,) bins -> (n,) magnitudes, the signed ones negated at random 1/2."""
        m = self.magnitudes[op, bins]
        negate = self.signed[op] & (torch.rand(len(op), generator=g) <= 0.5)  # v2: rand() <= 0.5 negates
        return torch.where(negate, -m, m)


SPACES = {"autoaugment": Space(v2.AutoAugment, AUTOAUGMENT_BINS),
          "randaugment": Space(v2.RandAugment, RANDAUGMENT["bins"]),
          "trivialaugment": Space(v2.TrivialAugmentWide, TRIVIAL_BINS)}
# AutoAugment's 25 CIFAR-10 sub-policies, each two (op, probability, magnitude bin) steps, as v2 lists them
AA_CIFAR10 = v2.AutoAugment(v2.AutoAugmentPolicy.CIFAR10)._policies


def _aa_table():
    """AA_CIFAR10 as tensors: op index into SPACES['autoaugment'], probability, bin; each (25, 2)."""
    names = SPACES["autoaugment"].names
    op = torch.tensor([[names.index(n) for n, _, _ in sub] for sub in AA_CIFAR10])
    prob = torch.tensor([[p for _, p, _ in sub] for sub in AA_CIFAR10], dtype=torch.float64)
    bins = torch.tensor([[b or 0 for _, _, b in sub] for sub in AA_CIFAR10])
    return op, prob, bins


AA_OP, AA_PROB, AA_BIN = _aa_table()


def draw_policy(policy, n, g):
    """Each image's ops, one (ops, magnitudes) pair of (n,) CPU tensors per step applied in turn.

    ops index OPS; magnitudes are float64 with the sign applied, as v2 passes them to its ops.
    """
    space = SPACES[policy]
    steps = []
    if policy == "autoaugment":  # a sub-policy per image; each of its two steps happens with its probability
        sub = torch.randint(len(AA_CIFAR10), (n,), generator=g)
        for s in range(2):
            op, bins = AA_OP[sub, s], AA_BIN[sub, s]
            happens = torch.rand(n, generator=g, dtype=torch.float64) <= AA_PROB[sub, s]
            m = space.signed_magnitudes(op, bins, g)
            steps.append((torch.where(happens, space.ids[op], IDENTITY), m))
    elif policy == "randaugment":  # num_ops uniform picks, all at the one magnitude
        for _ in range(RANDAUGMENT["num_ops"]):
            op = torch.randint(len(space.names), (n,), generator=g)
            steps.append((space.ids[op], space.signed_magnitudes(op, torch.full((n,), RANDAUGMENT["magnitude"]), g)))
    else:  # trivialaugment: one uniform op at a uniform magnitude bin
        op = torch.randint(len(space.names), (n,), generator=g)
        bins = torch.randint(TRIVIAL_BINS, (n,), generator=g)
        steps.append((space.ids[op], space.signed_magnitudes(op, bins, g)))
    return steps


def apply_policy(x, policy, g):
    """x uint8 (B, 3, H, W) -> the same, each image through its own draw of `policy`."""
    for ops, magnitudes in draw_policy(policy, len(x), g):
        x = apply_ops(x, ops, magnitudes)
    return x


def apply_ops(x, ops, magnitudes):
    """Image i through op OPS[ops[i]] at magnitudes[i]: one batched call per op present (the geometric
    ones share one resampling)."""
    out = x.clone()
    present = set(ops.tolist())  # CPU tensors: no device sync
    geometric = [OPS.index(n) for n in GEOMETRIC if OPS.index(n) in present]
    if geometric:
        sel = torch.isin(ops, torch.tensor(geometric)).nonzero().squeeze(1)
        rows = to_device(sel, x.device)
        out[rows] = affine(x[rows], inverse_affine(ops[sel], magnitudes[sel], *x.shape[-2:]))
    for k in present - set(geometric) - {IDENTITY}:
        sel = (ops == k).nonzero().squeeze(1)
        rows = to_device(sel, x.device)
        out[rows] = COLOR_OPS[OPS[k]](x[rows], magnitudes[sel])
    return out


# --- geometric ops: per-image inverse affine matrices (v2's _get_inverse_affine_matrix worked out for each
# op), then one nearest-neighbour resampling with zero fill, as v2.functional.affine / rotate do.

def inverse_affine(ops, m, h, w):
    """(n,) op ids and signed magnitudes -> (n, 2, 3) float64 matrices mapping output pixels to input pixels,
    in v2's coordinates (origin at the image centre)."""
    theta = torch.zeros(len(ops), 2, 3, dtype=torch.float64)
    theta[:, 0, 0] = theta[:, 1, 1] = 1.0
    name = [OPS[k] for k in ops.tolist()]
    for i, op in enumerate(name):
        if op == "ShearX":    # v2: affine(shear=[degrees(atan(m)), 0], center=[0, 0])
            t = math.tan(math.radians(math.degrees(math.atan(m[i]))))
            theta[i, 0, 1], theta[i, 0, 2] = t, t * h / 2
        elif op == "ShearY":  # v2: affine(shear=[0, degrees(atan(m))], center=[0, 0])
            t = math.tan(math.radians(math.degrees(math.atan(m[i]))))
            theta[i, 1, 0], theta[i, 1, 2] = t, t * w / 2
        elif op == "TranslateX":  # v2: affine(translate=[int(m), 0])
            theta[i, 0, 2] = -float(int(m[i]))
        elif op == "TranslateY":
            theta[i, 1, 2] = -float(int(m[i]))
        elif op == "Rotate":  # v2: rotate(angle=m), counter-clockwise, about the centre
            r = math.radians(-(float(m[i]) % 360))
            theta[i, 0] = torch.tensor([math.cos(r), math.sin(r), 0.0], dtype=torch.float64)
            theta[i, 1] = torch.tensor([-math.sin(r), math.cos(r), 0.0], dtype=torch.float64)
    return theta


def affine(x, theta):
    """uint8 (n, C, H, W) resampled through per-image inverse matrices (n, 2, 3): v2's _affine_grid with a
    matrix per image, then grid_sample (nearest, zeros outside), rounded back to uint8."""
    n, _, h, w = x.shape
    theta = to_device(theta.float(), x.device)
    xs = torch.linspace((1.0 - w) * 0.5, (w - 1.0) * 0.5, w, device=x.device)
    ys = torch.linspace((1.0 - h) * 0.5, (h - 1.0) * 0.5, h, device=x.device)
    base = torch.stack([xs.expand(h, w), ys[:, None].expand(h, w), torch.ones(h, w, device=x.device)], -1)
    scale = torch.tensor([0.5 * w, 0.5 * h], device=x.device)
    grid = base.view(1, h * w, 3).expand(n, -1, -1).bmm(theta.transpose(1, 2) / scale)  # (n, H*W, 2)
    out = F.grid_sample(x.float(), grid.view(n, h, w, 2), mode="nearest", padding_mode="zeros", align_corners=False)
    return out.round_().to(x.dtype)


# --- colour ops with a magnitude: v2's kernels with a per-image factor (v2's take one float per call)

def _per_image(values, x, dtype=torch.float32):
    return to_device(values.to(dtype), x.device).view(-1, 1, 1, 1)


def _blend(x, other, ratio):
    """v2's _blend with a ratio per image: x * r + other * (1 - r), clamped to [0, 255], truncated to uint8."""
    r, q = _per_image(ratio, x), _per_image(1.0 - ratio, x)
    # addcmul_ rounds as v2's add_(other, alpha=1 - r) does (a fused multiply-add); `+ other * q` differs by 1 at times
    return x.mul(r).addcmul_(other, q).clamp_(0, 255).to(x.dtype)


def _gray(x):
    """v2's float greyscale of a uint8 image, floored: (n, 1, H, W) float32."""
    return TF.rgb_to_grayscale(x).float()  # uint8 output = the floor v2 takes of its float greyscale


def brightness(x, m):
    return x.mul(_per_image(1.0 + m, x)).clamp_(0, 255).to(x.dtype)


def color(x, m):
    return _blend(x, _gray(x), 1.0 + m)


def contrast(x, m):
    return _blend(x, _gray(x).mean(dim=(-3, -2, -1), keepdim=True), 1.0 + m)


def sharpness(x, m):
    """The inner pixels blended with a 3x3 smoothing (1s around a 5, /13) of themselves; the border kept."""
    a, b = 1.0 / 13.0, 5.0 / 13.0
    kernel = torch.tensor([[a, a, a], [a, b, a], [a, a, a]], device=x.device).expand(x.shape[1], 1, 3, 3)
    out = x.float()
    blurred = F.conv2d(out, kernel, groups=x.shape[1]).round_()
    inner = out[..., 1:-1, 1:-1]
    inner.addcmul_(blurred.sub_(inner), _per_image(1.0 - (1.0 + m), x))  # as _blend: v2's rounding
    return out.clamp_(0, 255).to(x.dtype)


def posterize(x, m):
    bits = m.to(torch.int64)  # v2: int(magnitude), 4..8 bits kept
    mask = ((1 << bits) - 1) << (8 - bits)
    return x & _per_image(mask, x, torch.uint8)


def solarize(x, m):
    return torch.where(x >= _per_image(255.0 * m, x), TF.invert(x), x)  # v2: threshold = 255 * magnitude


def autocontrast(x, m):
    """v2's autocontrast (each image and channel stretched from its min..max to 0..255; a flat one kept),
    with torch.where where v2 assigns through a boolean mask, which on a GPU makes the host wait."""
    f = x.float()
    low, high = f.amin(dim=(-2, -1), keepdim=True), f.amax(dim=(-2, -1), keepdim=True)
    flat = high == low
    inv_scale = torch.where(flat, 1.0, (high - low).mul_(1.0 / 255))
    return f.sub_(torch.where(flat, 0.0, low)).div_(inv_scale).clamp_(0, 255).to(x.dtype)


COLOR_OPS = {"Brightness": brightness, "Color": color, "Contrast": contrast, "Sharpness": sharpness,
             "Posterize": posterize, "Solarize": solarize, "AutoContrast": autocontrast,
             # no magnitude: v2's kernels, batched per image already
             "Equalize": lambda x, m: TF.equalize(x),
             "Invert": lambda x, m: TF.invert(x)}


# --- erasing, on the normalised batch (value 0 = the channel mean)

def _box_mask(top, left, height, width, h, w, device):
    """(n,) box corners and sizes (CPU) -> bool (n, 1, h, w) mask, True inside each image's box."""
    top, left, height, width = (to_device(t, device).view(-1, 1, 1, 1) for t in (top, left, height, width))
    ys = torch.arange(h, device=device).view(1, 1, h, 1)
    xs = torch.arange(w, device=device).view(1, 1, 1, w)
    return (ys >= top) & (ys < top + height) & (xs >= left) & (xs < left + width)


def random_erasing(x, p, g):
    """v2.RandomErasing(p) with each image its own box (v2 erases one box in the whole batch): a box of
    2-33% of the area at aspect 0.3-3.3 (log-uniform), the first of 10 tries that fits, set to 0."""
    n, _, h, w = x.shape
    area = h * w * torch.empty(n, ERASE_ATTEMPTS, dtype=torch.float64).uniform_(*ERASE_SCALE, generator=g)
    log_ratio = torch.empty(n, ERASE_ATTEMPTS, dtype=torch.float64).uniform_(
        math.log(ERASE_RATIO[0]), math.log(ERASE_RATIO[1]), generator=g)
    bh = (area * log_ratio.exp()).sqrt().round().long()
    bw = (area / log_ratio.exp()).sqrt().round().long()
    fits = (bh < h) & (bw < w)
    first = fits.long().argmax(1)  # the first try that fits (0 if none does; `erase` then says no)
    rows = torch.arange(n)
    bh, bw = bh[rows, first], bw[rows, first]
    erase = fits.any(1) & (torch.rand(n, generator=g) < p)
    top = (torch.rand(n, generator=g, dtype=torch.float64) * (h - bh + 1)).long()
    left = (torch.rand(n, generator=g, dtype=torch.float64) * (w - bw + 1)).long()
    mask = _box_mask(top, left, torch.where(erase, bh, 0), bw, h, w, x.device)
    return x.masked_fill(mask, 0.0)


def cutout(x, size, g):
    """Cutout (DeVries & Taylor 2017): a size x size square, centred anywhere in the image and clipped at
    its border, set to 0 in every image."""
    n, _, h, w = x.shape
    cy, cx = torch.randint(h, (n,), generator=g), torch.randint(w, (n,), generator=g)
    top, left = (cy - size // 2).clamp(min=0), (cx - size // 2).clamp(min=0)
    bottom, right = (cy - size // 2 + size).clamp(max=h), (cx - size // 2 + size).clamp(max=w)
    return x.masked_fill(_box_mask(top, left, bottom - top, right - left, h, w, x.device), 0.0)


# --- MixUp and CutMix: (x, int labels) -> (mixed x, soft labels (B, C) whose rows sum to 1)

def beta(alpha, g):
    """One draw of Beta(alpha, alpha) from the torch generator g (through NumPy's, seeded from it)."""
    return float(np.random.default_rng(int(torch.randint(2**62, (), generator=g))).beta(alpha, alpha))


def one_hot(y, num_classes):
    return torch.zeros(len(y), num_classes, device=y.device).scatter_(1, y[:, None], 1.0)  # no host sync


def mixup(x, y, alpha, num_classes, g):
    """v2.MixUp: lam ~ Beta(alpha, alpha); x lam + x_rolled (1 - lam); labels mixed alike."""
    lam = beta(alpha, g)
    target = one_hot(y, num_classes)
    return x.mul(lam).add_(x.roll(1, 0), alpha=1.0 - lam), target.mul(lam).add_(target.roll(1, 0), alpha=1.0 - lam)


def cutmix(x, y, alpha, num_classes, g):
    """v2.CutMix: a box of about (1 - lam) of the area, centred anywhere, clipped, pasted from the rolled
    batch; labels mixed by the area actually kept."""
    lam = beta(alpha, g)
    h, w = x.shape[-2:]
    cy, cx = int(torch.randint(h, (), generator=g)), int(torch.randint(w, (), generator=g))
    r = 0.5 * math.sqrt(1.0 - lam)
    rh, rw = int(r * h), int(r * w)
    y1, y2, x1, x2 = max(cy - rh, 0), min(cy + rh, h), max(cx - rw, 0), min(cx + rw, w)
    lam = 1.0 - (y2 - y1) * (x2 - x1) / (h * w)
    out = x.clone()
    out[..., y1:y2, x1:x2] = x.roll(1, 0)[..., y1:y2, x1:x2]
    target = one_hot(y, num_classes)
    return out, target.mul(lam).add_(target.roll(1, 0), alpha=1.0 - lam)


def mix(x, y, mixup_alpha, cutmix_alpha, num_classes, g):
    """MixUp or CutMix, whichever alpha is > 0; with both, one of the two per batch at 1/2 each (timm's
    and torchvision's reference recipe)."""
    use_cutmix = cutmix_alpha > 0 and (mixup_alpha <= 0 or bool(torch.rand((), generator=g) < 0.5))
    if use_cutmix:
        return cutmix(x, y, cutmix_alpha, num_classes, g)
    return mixup(x, y, mixup_alpha, num_classes, g)


class Augmentations:
    """The policy, erasing and mixing settings of a run, applied by `Batches` after crop and flip."""

    def __init__(self, policy="none", erase=0.0, cutout=0, mixup=0.0, cutmix=0.0, num_classes=10):
        if policy not in POLICIES:
            raise ValueError(f"policy must be one of {POLICIES}, got {policy!r}")
        if not 0 <= erase <= 1:
            raise ValueError(f"erase is a probability in [0, 1], got {erase}")
        if cutout < 0 or mixup < 0 or cutmix < 0:
            raise ValueError(f"cutout, mixup and cutmix must be >= 0, got {cutout}, {mixup}, {cutmix}")
        self.policy, self.erase, self.cutout = policy, erase, cutout
        self.mixup, self.cutmix, self.num_classes = mixup, cutmix, num_classes

    def __bool__(self):
        return self.policy != "none" or bool(self.erase or self.cutout or self.mixup or self.cutmix)

    def pixels(self, x, g):
        """uint8 (B, 3, H, W) -> the same, through the policy."""
        return x if self.policy == "none" else apply_policy(x, self.policy, g)

    def batch(self, x, y, g):
        """Normalised x and int labels y -> erased/mixed x and labels (soft (B, C) when mixing)."""
        if self.erase:
            x = random_erasing(x, self.erase, g)
        if self.cutout:
            x = cutout(x, self.cutout, g)
        if self.mixup or self.cutmix:
            x, y = mix(x, y, self.mixup, self.cutmix, self.num_classes, g)
        return x, y
