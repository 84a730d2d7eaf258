"""A finished run's test data, as evaluate.py, predict.py and export.py read it.

    data = test_data(cfg, data_dir)     # the run's data module, set up, never downloading
    images, labels = test_images(data, n)
"""
from config.resolve import data_kwargs
from config.signatures import data_settings
from datamodules import CIFAR10DataModule
from runfolder import BadInput


def test_data(cfg, data_dir=None):
    """The run's data module (its normalisation and eval batch size), set up, reading `data_dir` (default:
    the run's own). Never downloads: a run copied elsewhere says where it looked, and how to point it."""
    settings = data_kwargs(cfg)
    default = data_settings()["data_dir"].default
    settings.update(data_dir=data_dir or cfg.get("data_dir") or default, download=False, augment=False)
    data = CIFAR10DataModule(**settings)
    try:
        data.setup()
    except BadInput as e:
        hint = "" if data_dir else " (or pass --data-dir DIR)"
        raise BadInput(f"{e}{hint}") from None
    return data


def test_images(data, n=None):
    """The first n test images as uint8 (n, 3, 32, 32) and their labels (n,), in the test loader's order."""
    idx = data.splits["test"][:n]
    return data.x[idx], data.y[idx]
