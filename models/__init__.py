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


# airbench94's recipe (models/fast_resnet.py has the net, its constants and the why). lr and weight decay
# per step of a mean loss, converted from airbench94's per-1024-examples ones (fast_resnet.py docstring).
FAST_RECIPE = dict(
    lr=1.5, momentum=0.85, nesterov=True, weight_decay=0.0153 / 11.5,  # 1.33e-3
    label_smoothing=0.2,            # soft targets: better calibrated, and +acc on short runs
    batch_size=1024, max_steps=476,  # 9.9 epochs of 48 full batches of the 50k images
    augment=True, crop_padding=2,    # shifts of up to 2 px in each direction, uniform over the 5 x 5 offsets
    crop_pad="reflect", flips="alternate",  # as airbench94: mirrored borders; each image flipped every other epoch
    val_size=0,                      # train on all 50k; validation mid-run costs time, tells nothing
    tta=2, eval_batch_size=2000,     # mirror + shift test-time augmentation
    channels_last=True, precision="32-true",  # tensor-core layout; no autocast: the net's own dtype (net_dtype)
    log_every=50, checkpoint="end",  # Lightning overhead that costs without value in a 5 s run
)


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
                             "airbench94-style speed recipe (9.9 epochs); aims at 94% on one GPU: --preset fast",
                             FAST_RECIPE),
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

