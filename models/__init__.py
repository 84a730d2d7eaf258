"""The registry: model name -> class, a one-line description, and the course's defaults for it.

The defaults are the course's settings for each model; train.py layers them under a preset and the
explicit flags. Classes are imported lazily: `import models.numpy_mlp` loads no torch.
"""
import importlib
import inspect
from dataclasses import dataclass, field

# The course's MLP settings. normalize=center (mean-subtracted pixel units, the course's preprocessing)
# and a small first layer are what let plain SGD at lr 1e-3 reach the course's accuracy in 1400 steps;
# see models/mlp.py INITS.
MLP_DEFAULTS = dict(hidden=[100], activation="elu", optimizer="sgd", lr=1e-3, batch_size=200, max_steps=1400,
                    eval_every=100, augment=False, normalize="center", init="small-first")


@dataclass(frozen=True)
class ModelSpec:
    target: str  # "module:Class"
    help: str
    defaults: dict = field(default_factory=dict)

    def load(self):
        module, name = self.target.split(":")
        return getattr(importlib.import_module(module), name)


MODELS = {
    "numpy_mlp": ModelSpec("models.numpy_classifier:NumpyMLPClassifier",
                           "NumPy MLP with hand-written backward passes (course: 0.48)",
                           dict(MLP_DEFAULTS, init="course")),
    "mlp": ModelSpec("models.mlp:MLP", "PyTorch MLP: hidden sizes, batch norm, ELU/Tanh/ReLU (course: 0.48)",
                     dict(MLP_DEFAULTS, batchnorm=False)),
    "layernorm_mlp": ModelSpec("models.layernorm:LayerNormMLP", "MLP with the custom LayerNorm after each hidden layer",
                               dict(MLP_DEFAULTS, norm_impl="manual")),
    "resnet": ModelSpec("models.resnet:ResNet", "the course's pre-activation ConvNet (course: 0.79)",
                        dict(optimizer="adam", lr=1e-4, batch_size=32, max_steps=5000, eval_every=500,
                             augment=False, normalize="standard")),
    "fast_resnet": ModelSpec("models.fast_resnet:FastResNet",
                             "airbench94-style net with its own optimizer, schedule and lookahead: --preset fast"),
}


def init_params(cls):
    """Name -> default of every keyword the class's __init__ chain accepts (what a config may set).

    A class lists in `fixed_params` the parent keywords it sets itself (LayerNormMLP: batchnorm); they
    are left out, so a preset's value is dropped for it and an explicit flag is an error.
    """
    from .base import Classifier

    params = {}
    for klass in reversed(cls.__mro__):
        if klass is not cls and not (issubclass(klass, Classifier) and "__init__" in vars(klass)):
            continue  # Classifier subclasses pass their extra kwargs up the chain; nothing else does
        for p in inspect.signature(klass.__init__).parameters.values():
            if p.name != "self" and p.kind not in (p.VAR_POSITIONAL, p.VAR_KEYWORD):
                params[p.name] = p.default
    return {k: v for k, v in params.items() if k not in getattr(cls, "fixed_params", ())}


def load_run(*args, **kwargs): from .loading import load_run; return load_run(*args, **kwargs)  # models/loading.py
