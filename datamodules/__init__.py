from .cifar10 import CIFAR10DataModule
from .files import CIFAR10DataError

__all__ = ["CIFAR10DataModule", "CIFAR10DataError"]
