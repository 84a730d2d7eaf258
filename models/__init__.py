"""The models. Each is a class in a file here whose body names it (`name = "mlp"`): config/signatures.py
finds it in the source, and its __init__ signature is its settings. Adding a model is adding a file
(docs/adding-a-model.md). Importing this package loads no torch.
"""
import importlib

from config import signatures


def load(name):
    """The class of the model called `name` (imports its module)."""
    module, cls = signatures.models()[name].target.split(":")
    return getattr(importlib.import_module(module), cls)
