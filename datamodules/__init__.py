"""The CIFAR-10 data: CIFAR10DataModule (cifar10.py) and what it stands on. Importing the package
imports no torch: CIFAR10DataModule is loaded when first used, so datamodules.files (the files, the
class names) is at hand to a command that has not yet read its flags."""


def __getattr__(name):
    if name == "CIFAR10DataModule":
        from .cifar10 import CIFAR10DataModule
        return CIFAR10DataModule
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


__all__ = ["CIFAR10DataModule"]
