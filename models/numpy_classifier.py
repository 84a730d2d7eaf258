"""NumpyMLPClassifier: trains the pure-NumPy MLP (models/numpy_mlp.py) through the same Trainer as every model.

Lightning runs the loop, the data, the loggers, checkpoints and seeds; the math is NumPy's. Manual
optimisation: training_step runs the hand-written forward, loss and backward, then steps `NumpySGD`,
a torch optimizer only in name, so that Lightning counts the step (global_step, max_steps) and LR
schedules and the LR monitor work as for the other models. Only plain SGD applies.

Batches arrive as float32 tensors (B, 3, 32, 32), possibly on a GPU; they are copied to NumPy and
flattened to (B, 3072). Logits go back as tensors, so the shared metrics and eval steps apply as is.
"""
from typing import Literal

import numpy as np
import torch

from config.types import Sizes

from .base import Classifier, lr_factor, top_class_credit
from .numpy_mlp import INITS, MLP, CrossEntropyModule


def to_numpy(x):
    """(B, ...) tensor on any device -> (B, prod(...)) float32 array."""
    return x.detach().to("cpu", torch.float32).numpy().reshape(len(x), -1)


class NumpySGD(torch.optim.Optimizer):
    """W <- W - lr dL/dW for every NumPy param of `mlp`, with the grads its backward left behind.

    torch's Optimizer needs one tensor to hold a param group; an empty one carries the lr, which LR
    schedulers set and Lightning's LearningRateMonitor reads.
    """

    def __init__(self, mlp, lr):
        super().__init__([torch.empty(0)], dict(lr=lr))
        self.mlp = mlp

    def step(self, closure=None):
        loss = closure() if closure is not None else None  # Lightning's hooks run in the closure
        lr = self.param_groups[0]["lr"]
        for m in self.mlp.modules:
            for k, p in m.params.items():
                p -= lr * m.grads[k]  # in place
        return loss


class NumpyMLPClassifier(Classifier):
    """NumPy MLP with hand-written backward passes (course: 0.48)"""
    name = "numpy_mlp"

    def __init__(self, hidden: Sizes = (100,), activation: Literal["elu"] = "elu", init: Literal[INITS] = "course",
                 *, n_inputs=3072, **optim):
        """
        hidden: hidden layer sizes (64 128, 64,128 or [64,128]); none = softmax regression
        activation: ELU, as the course's NumPy MLP
        init: weight init: course = N(0, 1e-4), kaiming = He normal
        """
        super().__init__(**optim)
        hp = self.hparams
        if activation != "elu":
            raise ValueError(f"numpy_mlp has ELU activations only, got {activation!r}")
        if hp.optimizer != "sgd" or hp.momentum or hp.weight_decay:
            raise ValueError("numpy_mlp trains with plain SGD only: --optimizer sgd, no --momentum, no --weight-decay")
        if hp.label_smoothing:
            raise ValueError("numpy_mlp's cross-entropy has no label smoothing")
        if any(h <= 0 for h in hidden):
            raise ValueError(f"hidden sizes must be positive, got {list(hidden)}")
        self.automatic_optimization = False
        # Weights come from torch's RNG, which train.py seeds, so --seed drives them as for the other models.
        rng = np.random.default_rng(int(torch.randint(2**62, ())))
        self.mlp = MLP(n_inputs, list(hidden), hp.num_classes, init=init, rng=rng, dtype=np.float32)
        self.ce = CrossEntropyModule()

    def forward(self, x):
        """x (B, 3, 32, 32) -> logits (B, C), a tensor on x's device."""
        return torch.from_numpy(self.mlp.logits(to_numpy(x))).to(x.device)

    def training_step(self, batch, batch_idx):
        x, y = batch
        logs = self.logs_this_step()
        labels = y.cpu().numpy()  # (B,) class indices, or soft labels (B, C) under MixUp/CutMix
        probs = self.mlp.forward(to_numpy(x))  # (B, C)
        loss = self.ce.forward(probs, labels)
        self.mlp.backward(self.ce.backward(probs, labels))
        self.optimizers().step()
        if (sched := self.lr_schedulers()) is not None:
            sched.step()
        if logs:
            self.log("train/loss", float(loss))  # the bar shows it (StepProgressBar)
            self.log("train/acc", top_class_credit(torch.from_numpy(probs).to(y.device), y).mean())
        return torch.tensor(float(loss))  # read by the divergence check; manual optimisation uses it for nothing else

    def num_params(self):  # the NumPy arrays are no torch parameters
        return sum(m.params[k].size for m in self.mlp.modules for k in m.params)

    def configure_optimizers(self):
        hp = self.hparams
        opt = NumpySGD(self.mlp, hp.lr)
        if hp.schedule == "constant" and not hp.warmup_steps:
            return opt
        total = max(self.trainer.max_steps, 1)
        sched = torch.optim.lr_scheduler.LambdaLR(opt, lr_factor(hp.schedule, hp.warmup_steps, total))
        return {"optimizer": opt, "lr_scheduler": {"scheduler": sched, "interval": "step"}}

    def setup(self, stage):
        if self.trainer.world_size > 1:  # each process would train its own copy of the NumPy params
            raise ValueError("numpy_mlp trains in one process: use --devices 1 --num-nodes 1")

    # The NumPy params are no torch state, so checkpoints carry them explicitly (as CPU tensors, which
    # torch.load's weights_only mode accepts).
    def on_save_checkpoint(self, checkpoint):
        checkpoint["numpy_mlp"] = {k: torch.from_numpy(v) for k, v in self.mlp.state_dict().items()}

    def on_load_checkpoint(self, checkpoint):
        self.mlp.load_state_dict({k: v.cpu().numpy() for k, v in checkpoint["numpy_mlp"].items()})
