"""Augmentation policies: CPU time per training batch with each policy on, against plain crop+flip.

Both sides are `Batches` making training batches as train.py does (slice, crop, flip, [policy], normalise,
[erasing, mixing]) from the same in-memory images, timed alternately in one process; ratio = crop+flip's
time / the policy's (0.25 = the policy makes a batch cost 4x crop+flip's). Then, for the choice
datamodules/policies.py makes, the policy step alone on one uint8 batch: ours (every image its own op,
batched) against torchvision v2's transform applied image by image (the same per-image policy the v2
way; ratio > 1: ours is faster) and against v2 given the whole batch tensor (one op for all the images:
not the policy, the floor of what a batched call costs).

    python -m bench.augment --data-dir data [--quick]
"""
import itertools
import time

import torch
from torchvision.transforms import v2

from datamodules import CIFAR10DataModule
from datamodules.batches import Batches
from datamodules.cifar10 import NORMALIZE
from datamodules.policies import Augmentations, apply_policy

from . import common

BATCH_SIZE = 256  # --preset mlp-search's
# what each row turns on over crop+flip; the values are the usual ones (policies.py, the flags' help)
SETTINGS = {"autoaugment": dict(policy="autoaugment"), "randaugment": dict(policy="randaugment"),
            "trivialaugment": dict(policy="trivialaugment"), "erase 0.25": dict(erase=0.25),
            "cutout 16": dict(cutout=16), "mixup 0.2": dict(mixup=0.2), "cutmix 1.0": dict(cutmix=1.0)}
V2 = {"autoaugment": lambda: v2.AutoAugment(v2.AutoAugmentPolicy.CIFAR10), "randaugment": v2.RandAugment,
      "trivialaugment": v2.TrivialAugmentWide}
FULL = dict(batches=10, repeats=5, warmup=1, val_size=5000)
QUICK = dict(batches=1, repeats=1, warmup=0, val_size=50)


def batches(dm, policies):
    """An endless stream of training batches as train.py gets them (crop padding 4 + flip, and `policies`)."""
    size = min(BATCH_SIZE, len(dm.splits["train"]))  # --quick's fixture data holds fewer images than a batch
    b = Batches(dm.x, dm.y, dm.splits["train"], size, *NORMALIZE["standard"], train=True, augment=True,
                policies=policies)
    return itertools.chain.from_iterable(itertools.repeat(b))


def taker(stream, n):
    def take():
        for _ in itertools.islice(stream, n):
            pass
    return take


def rows(quick=False, data_dir="data"):
    sizes = QUICK if quick else FULL
    with common.torch_threads(1):  # one thread: see bench/data_pipeline.py (two busy cores thrash)
        return _rows(sizes, data_dir)


def _rows(sizes, data_dir):
    dm = CIFAR10DataModule(data_dir, val_size=sizes["val_size"])
    dm.setup()
    n, pair = sizes["batches"], dict(repeats=sizes["repeats"], warmup=sizes["warmup"], clock=time.process_time)
    out = []
    for name, setting in SETTINGS.items():
        t_ours, t_base = common.measure_pair(taker(batches(dm, Augmentations(**setting)), n),
                                              taker(batches(dm, None), n), **pair)
        per_batch = lambda t: {k: 1e3 * v / n for k, v in t.items()}  # noqa: E731
        out.append(common.row(f"augment: crop+flip + {name} vs crop+flip alone, batch {BATCH_SIZE}",
                              "ms/batch (CPU)", per_batch(t_ours), per_batch(t_base), higher_is_better=False))
    x = dm.x[dm.splits["train"][:BATCH_SIZE]]  # one uint8 batch
    g = torch.Generator().manual_seed(0)
    for name, make in V2.items():
        t = make()
        ms = lambda s: {k: 1e3 * v for k, v in s.items()}  # noqa: E731
        ours, per_image = common.measure_pair(lambda: apply_policy(x, name, g),
                                              lambda: torch.stack([t(img) for img in x]), **pair)
        out.append(common.row(f"augment: {name}, ours batched vs v2 image by image, batch {BATCH_SIZE}",
                              "ms/batch (CPU)", ms(ours), ms(per_image), higher_is_better=False, goal=1))
        ours, whole = common.measure_pair(lambda: apply_policy(x, name, g), lambda: t(x), **pair)
        out.append(common.row(f"augment: {name}, ours (op per image) vs v2 on the batch (one op for all)",
                              "ms/batch (CPU)", ms(ours), ms(whole), higher_is_better=False))
    return out


if __name__ == "__main__":
    args = common.parser(__doc__).parse_args()
    common.print_table(rows(args.quick, args.data_dir), "Augmentation policies")
