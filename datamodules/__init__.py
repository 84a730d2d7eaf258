from .cifar10 import CIFAR10DataModule

__all__ = ["CIFAR10DataModule"]
