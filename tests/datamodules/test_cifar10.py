"""CIFAR10DataModule on tiny fixture data in the real on-disk format."""
import pytest
import torch

from runfolder import BadInput
from datamodules import CIFAR10DataModule
from datamodules.cifar10 import MEAN, STD


def setup(cifar_dir, **kw):
    dm = CIFAR10DataModule(cifar_dir, batch_size=32, eval_batch_size=64, val_size=50, **kw)
    dm.setup()
    return dm


def test_batches_have_the_right_shapes_dtypes_and_labels(cifar_dir):
    dm = setup(cifar_dir)
    x, y = next(iter(dm.train_dataloader()))
    assert x.shape == (32, 3, 32, 32) and x.dtype == torch.float32
    assert y.dtype == torch.int64 and 0 <= y.min() and y.max() <= 9
    assert dm.x.dtype == torch.uint8 and dm.x.shape == (400, 3, 32, 32)  # one tensor: 300 train + 100 test
    assert len(dm.train_dataloader()) == 250 // 32 and sum(len(b[1]) for b in dm.val_dataloader()) == 50
    assert sum(len(b[1]) for b in dm.test_dataloader()) == 100


def test_split_is_seeded_disjoint_and_complete(cifar_dir):
    a, b, c = setup(cifar_dir, seed=1), setup(cifar_dir, seed=1), setup(cifar_dir, seed=2)
    assert torch.equal(a.splits["val"], b.splits["val"]) and not torch.equal(a.splits["val"], c.splits["val"])
    train, val = set(a.splits["train"].tolist()), set(a.splits["val"].tolist())
    assert not train & val and train | val == set(range(300)) and len(val) == 50


def test_val_size_zero_means_no_validation(cifar_dir):
    dm = CIFAR10DataModule(cifar_dir, val_size=0)
    dm.setup()
    assert dm.val_dataloader() == [] and len(dm.splits["train"]) == 300


@pytest.mark.parametrize("normalize, std", [("standard", STD), ("center", (1 / 255,) * 3)])
def test_normalisation_uses_the_channel_statistics(cifar_dir, normalize, std):
    dm = setup(cifar_dir, normalize=normalize)
    x, y = next(iter(dm.test_dataloader()))
    raw = dm.x[300:364].float() / 255
    expected = (raw - torch.tensor(MEAN).view(1, 3, 1, 1)) / torch.tensor(std).view(1, 3, 1, 1)
    torch.testing.assert_close(x, expected)
    assert torch.equal(y, dm.y[300:364])


def test_augmentation_changes_train_batches_only(cifar_dir):
    plain, aug = setup(cifar_dir), setup(cifar_dir, augment=True)
    assert not torch.equal(next(iter(plain.train_dataloader()))[0], next(iter(aug.train_dataloader()))[0])
    assert torch.equal(next(iter(plain.test_dataloader()))[0], next(iter(aug.test_dataloader()))[0])


def test_crop_padding_zero_only_flips(cifar_dir):
    dm = setup(cifar_dir, augment=True, crop_padding=0, normalize="center")
    batches = dm.train_dataloader()
    x, y = next(iter(batches))
    source = dm.x[batches._epoch_indices()[:32]].float() - torch.tensor(MEAN).view(1, 3, 1, 1) * 255
    same = (x == source).flatten(1).all(1)
    mirrored = (x == source.flip(3)).flatten(1).all(1)
    assert (same | mirrored).all() and mirrored.any() and same.any()


def test_a_subset_is_used_with_a_warning(cifar_dir):
    with pytest.warns(UserWarning, match="300 train images, not 50000"):
        setup(cifar_dir)


def test_bad_options_are_refused(cifar_dir):
    with pytest.raises(ValueError, match="normalize"):
        CIFAR10DataModule(cifar_dir, normalize="minmax")
    with pytest.raises(ValueError, match="crop_padding must be >= 0"):
        CIFAR10DataModule(cifar_dir, crop_padding=-1)
    with pytest.raises(BadInput, match="val_size"):
        CIFAR10DataModule(cifar_dir, val_size=300).setup()
