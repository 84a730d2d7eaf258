"""Classifier: what every model shares. Loss, torchmetrics, logging and the optimizer live here.

A subclass builds `self.net` (x -> logits) and passes its optimizer kwargs up; the base's
`save_hyperparameters` records the init args of the whole class chain. Logged names:
train/loss, train/acc (on logged steps: the batch's), val/loss, val/acc (per evaluation), test/loss, test/acc.
Val and test losses are plain cross-entropy even when training uses label smoothing, so they
compare across runs. Validation and test loss and accuracy use torchmetrics, which sum over ranks under DDP.
Training labels are class indices (B,) or, under MixUp/CutMix, soft labels (B, C) whose rows sum to 1:
cross-entropy takes either, and train/acc is the mean of each image's `top_class_credit`.
"""
import math
from typing import Literal

import pytorch_lightning as pl
import torch
import torch.nn.functional as F
from torchmetrics import MeanMetric
from torchmetrics.classification import MulticlassAccuracy

from config.types import Count, Fraction, NonNegative, Positive

OPTIMIZERS = ("sgd", "adam", "adamw")
SCHEDULES = ("constant", "cosine", "linear")


class Classifier(pl.LightningModule):
    def __init__(self, optimizer: Literal[OPTIMIZERS] = "sgd", lr: Positive = 1e-3, momentum: NonNegative = 0.0,
                 nesterov: bool = False, weight_decay: NonNegative = 0.0, schedule: Literal[SCHEDULES] = "constant",
                 warmup_steps: Count = 0, label_smoothing: Fraction = 0.0, *, num_classes=10):
        """
        optimizer: the optimizer
        lr: learning rate
        momentum: SGD momentum
        nesterov: Nesterov momentum (sgd)
        weight_decay: weight decay (adamw: decoupled)
        schedule: lr schedule after warm-up
        warmup_steps: steps of linear lr warm-up
        label_smoothing: share of the training target spread over all classes
        """
        super().__init__()
        self.save_hyperparameters()  # collects the subclass's init args too
        if optimizer not in OPTIMIZERS:
            raise ValueError(f"optimizer must be one of {OPTIMIZERS}, got {optimizer!r}")
        if schedule not in SCHEDULES:
            raise ValueError(f"schedule must be one of {SCHEDULES}, got {schedule!r}")
        acc = lambda: MulticlassAccuracy(num_classes, average="micro")  # noqa: E731  (plain accuracy)
        self.val_acc, self.test_acc = acc(), acc()
        self.val_loss, self.test_loss = MeanMetric(), MeanMetric()
        self.steps_grad_clip = None  # --grad-clip under --steps-per-call (training.callbacks.SeveralSteps)
        self.after_each_step = []  # and what runs after each of its optimizer steps (the --ema update)

    def forward(self, x):
        return self.net(x)

    def num_params(self):
        return sum(p.numel() for p in self.parameters())

    def training_step(self, batch, batch_idx):
        if isinstance(batch, list):  # --steps-per-call K: K batches, K optimizer steps
            return self.several_steps(batch)
        return self.step_loss(*batch)

    def step_loss(self, x, y, log_every=None):
        """The training loss of one batch; on the steps the logger writes (every log_every steps, by default
        Lightning's log_every_n_steps), train/loss and train/acc are logged too."""
        logits = self(x)
        loss = F.cross_entropy(logits, y, label_smoothing=self.hparams.label_smoothing)
        if self.logs_this_step(log_every):
            # not prog_bar=True: Lightning would then read the loss on the host at every step until the
            # epoch ends (a GPU sync each); the bar reads it on its own refreshes (StepProgressBar)
            self.log("train/loss", loss)
            self.log("train/acc", top_class_credit(logits, y).mean())  # this batch's, as a metric's step value
        return loss

    def logs_this_step(self, every=None):
        """Lightning writes step metrics every log_every_n_steps; computing them in between is wasted work
        (a sixth of a CPU MLP step, bench/lightning_overhead). Call before the optimizer steps."""
        return (self.global_step + 1) % (every or self.trainer.log_every_n_steps) == 0

    def several_steps(self, batches):
        """One optimizer step per batch, made as Lightning's automatic optimization makes them (forward,
        zeroed gradients, backward, --grad-clip, step, the lr schedule's step, then after_each_step), all in
        one Lightning step, whose loop Lightning then runs once per K steps. Lightning counts each optimizer step
        (global_step), and logs and validates every log_every_n_steps and val_check_interval Lightning steps,
        which build_trainer divides by K. Returns the last loss, and each step's for the divergence guard."""
        opt, schedule = self.optimizers(), self.lr_schedulers()
        every = self.trainer.log_every_n_steps * len(batches)
        losses = []
        for x, y in batches:
            loss = self.step_loss(x, y, every)
            opt.zero_grad()
            loss.backward()
            if self.steps_grad_clip:
                self.clip_gradients(opt, gradient_clip_val=self.steps_grad_clip, gradient_clip_algorithm="norm")
            opt.step()
            if schedule is not None:
                schedule.step()
            for hook in self.after_each_step:
                hook()
            losses.append(loss.detach())
        return {"loss": losses[-1], "losses": torch.stack(losses)}

    def _eval_step(self, batch, stage):
        x, y = batch
        logits = self(x)
        loss = F.cross_entropy(logits, y)
        acc, mean_loss = getattr(self, f"{stage}_acc"), getattr(self, f"{stage}_loss")
        acc.update(logits, y)
        mean_loss.update(loss, weight=len(y))  # weighted: the last batch may be smaller
        self.log(f"{stage}/loss", mean_loss, prog_bar=stage == "val")
        self.log(f"{stage}/acc", acc, prog_bar=stage == "val")
        return {"loss": loss, "preds": logits.argmax(1)}  # callbacks (confusion matrix, ...) read these

    def validation_step(self, batch, batch_idx):
        return self._eval_step(batch, "val")

    def test_step(self, batch, batch_idx):
        return self._eval_step(batch, "test")

    def configure_optimizers(self):
        hp = self.hparams
        if hp.optimizer == "sgd":
            opt = torch.optim.SGD(self.parameters(), lr=hp.lr, momentum=hp.momentum,
                                  nesterov=hp.nesterov and hp.momentum > 0, weight_decay=hp.weight_decay)
        else:
            cls = torch.optim.Adam if hp.optimizer == "adam" else torch.optim.AdamW
            opt = cls(self.parameters(), lr=hp.lr, weight_decay=hp.weight_decay)
        if hp.schedule == "constant" and not hp.warmup_steps:
            return opt
        total = max(self.trainer.max_steps, 1)
        sched = torch.optim.lr_scheduler.LambdaLR(opt, lr_factor(hp.schedule, hp.warmup_steps, total))
        return {"optimizer": opt, "lr_scheduler": {"scheduler": sched, "interval": "step"}}


def top_class_credit(logits, target):
    """Each image's train accuracy: 1 if its top class is its label, else 0; for a soft label (B, C) the
    label's weight on the top class (a 70/30 MixUp image scores 0.7 when its 70% class wins). Its mean is
    the expected accuracy against labels drawn from the soft ones."""
    pred = logits.argmax(1)
    if target.ndim == 2:
        return target.gather(1, pred[:, None]).squeeze(1)
    return (pred == target).float()


def lr_factor(schedule, warmup, total):
    """Multiplier of the base lr at a step: linear warm-up, then constant, cosine or linear decay to 0."""
    def f(step):
        if step < warmup:
            return (step + 1) / warmup
        t = (step - warmup) / max(total - warmup, 1)
        if schedule == "cosine":
            return 0.5 * (1 + math.cos(math.pi * min(t, 1.0)))
        if schedule == "linear":
            return max(1.0 - t, 0.0)
        return 1.0
    return f
