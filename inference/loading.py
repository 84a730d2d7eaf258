"""load_run: a trained run folder -> its model, ready to classify, and its config.

    from inference import load_run
    model, cfg = load_run("runs/X", checkpoint="best")   # "best", "last" or a .ckpt path
    model, cfg = load_run("runs/X", raw_weights=True)    # a --ema run's raw weights, not the average
    logits = model(model.preprocess(images))              # images: uint8 (N, 3, 32, 32), RGB

The class comes from the config's model name (models.load), its settings from the config (the keys
its __init__ declares, config.resolve.model_kwargs), its weights from the checkpoint:
the state_dict, and whatever the class's on_load_checkpoint reads (the NumPy MLP keeps its arrays
there). Lightning's load_from_checkpoint would rebuild from the checkpoint's saved hyperparameters
instead, which include keys a class fixes itself (LayerNormMLP: batchnorm) and so fail. "best" is
the checkpoint results.json's test_acc was measured on. A run trained with --ema loads its averaged
weights (what it was validated and tested with; training/averaging.py), or with raw_weights=True the
raw ones; `model.weights` says which ("ema" or "raw"). Paths are taken inside the folder, so a moved
or copied folder loads its own weights. The checkpoint is read by runfolder.checkpoint.read: tensors and
plain values only, so a tampered file runs no code.

`model.preprocess` maps uint8 pixels to what the model was trained on: (x - mean) / std with the
run's normalisation (datamodules.cifar10.NORMALIZE). Its buffers are not persistent, so the model's
state_dict stays the checkpoint's.
"""
import torch
import torch.nn as nn

from datamodules.cifar10 import NORMALIZE
import models
from config.resolve import model_kwargs
from config.signatures import models as known_models
from runfolder import BadInput, RunFolder
from runfolder.checkpoint import read as read_checkpoint
from runfolder.folder import RAW_STATE, WEIGHTS_EMA, WEIGHTS_RAW


class Preprocess(nn.Module):
    """uint8 (N, 3, 32, 32) pixels -> float32 model inputs, (x - mean) / std per channel, in pixel units."""

    def __init__(self, mean, std):
        super().__init__()
        self.register_buffer("mean", torch.tensor(mean, dtype=torch.float32).view(1, 3, 1, 1), persistent=False)
        self.register_buffer("std", torch.tensor(std, dtype=torch.float32).view(1, 3, 1, 1), persistent=False)

    def forward(self, x):
        return (x.float() - self.mean) / self.std


def load_run(run_dir, checkpoint="best", map_location="cpu", raw_weights=False):
    """(model in eval mode with `.preprocess`, config dict). BadInput (a one-line message) when
    the folder is no run folder, names an unknown model, or has no such checkpoint or a broken one."""
    folder = RunFolder(run_dir)
    cfg = folder.read_config()
    name = cfg.get("model")
    if name not in known_models():
        raise BadInput(f"{folder.config_path}: model {name!r} is none of {', '.join(known_models())}")
    if cfg.get("normalize") not in NORMALIZE:
        raise BadInput(f"{folder.config_path}: normalize {cfg.get('normalize')!r} is none of {', '.join(NORMALIZE)}")
    path = folder.checkpoint(checkpoint)
    cls = models.load(name)
    try:
        with torch.random.fork_rng(devices=[]):  # the random init is overwritten; leave the caller's RNG alone
            model = cls(**model_kwargs(cfg))
    except (TypeError, ValueError) as e:  # a config the class rejects: edited by hand, or from another version
        raise BadInput(f"{folder.config_path}: not valid {name} settings ({e})") from None
    state = read_checkpoint(path)  # weights only: a file that would run code is refused, in one line
    averaged = RAW_STATE in state  # a --ema run's: the averaged weights, the raw ones beside them
    try:
        model.on_load_checkpoint(state)  # the class's own extra state (the NumPy MLP's arrays)
        model.load_state_dict(state[RAW_STATE] if raw_weights and averaged else state["state_dict"])
    except Exception as e:  # weights of another model or shape: the path and the first line
        first = str(e).strip().splitlines()[0] if str(e).strip() else ""
        raise BadInput(f"{path}: cannot load as a {name} checkpoint ({type(e).__name__}: {first})") from None
    model.to(map_location)
    model.preprocess = Preprocess(*NORMALIZE[cfg["normalize"]]).to(map_location)
    model.checkpoint_path = path
    model.weights = WEIGHTS_EMA if averaged and not raw_weights else WEIGHTS_RAW
    return model.eval(), cfg

