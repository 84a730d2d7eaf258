"""What evaluate.py, predict.py and export.py share: a finished run's model and test data, and one-line errors.

    @one_line_errors
    def main(argv=None): ... load_run(...) ... test_data(cfg, args.data_dir) ...

A bad run folder, checkpoint or data directory ends the command with one line on stderr and exit
status 1; a bad flag with argparse's usage line and status 2.
"""
import functools
import sys

from datamodules import CIFAR10DataError, CIFAR10DataModule
from training.config import data_kwargs
from training.run_folder import RunFolderError


class UsageError(Exception):
    """A request that cannot be served (e.g. --tta for a model without it); one line."""


def one_line_errors(main):
    """Wrap a script's main: the user-facing errors become `error: <message>` on stderr and exit status 1."""
    @functools.wraps(main)
    def wrapped(*args, **kwargs):
        try:
            return main(*args, **kwargs)
        except (RunFolderError, CIFAR10DataError, UsageError) as e:
            sys.exit(f"error: {e}")
    return wrapped


def test_data(cfg, data_dir=None):
    """The run's data module (its normalisation and eval batch size), set up, reading `data_dir` (default:
    the run's own). Never downloads: a run copied elsewhere says where it looked, and how to point it."""
    settings = data_kwargs(cfg)
    settings.update(data_dir=data_dir or cfg.get("data_dir") or "data", download=False, augment=False)
    data = CIFAR10DataModule(**settings)
    try:
        data.setup()
    except CIFAR10DataError as e:
        hint = "" if data_dir else " (or pass --data-dir DIR)"
        raise CIFAR10DataError(f"{e}{hint}") from None
    return data


def test_images(data, n=None):
    """The first n test images as uint8 (n, 3, 32, 32) and their labels (n,), in the test loader's order."""
    idx = data.splits["test"][:n]
    return data.x[idx], data.y[idx]
