"""Lightning callbacks of our own: divergence, checkpoints that follow their folder, plain log lines."""
import functools
import os
import sys
import time

import pytorch_lightning as pl
import torch
from pytorch_lightning.callbacks import LearningRateMonitor, ModelCheckpoint, TQDMProgressBar, WeightAveraging
from pytorch_lightning.callbacks.progress.tqdm_progress import Tqdm, _update_n
from pytorch_lightning.utilities import rank_zero_only

from models.base import Classifier


class Diverged(Exception):
    """The training loss became NaN or infinite; the message says at which step and what to try."""


class StopOnDivergence(pl.Callback):
    """Stop the run at the first non-finite training loss, before a checkpoint can save the bad weights.

    Reading the loss on the host forces a GPU sync, so each step only copies its loss into a window on
    the device; the window is read every log_every steps (when the logger reads the loss anyway) and
    before each validation, after which a checkpoint may be saved. The step it names is exact.
    """

    def __init__(self, cfg):
        self.every = cfg["log_every"]
        self.lr = cfg.get("lr")
        self.window = None  # (every,) float32 on the loss's device: the losses since the last read
        self.steps = []     # the step of each filled slot of the window

    def on_train_batch_end(self, trainer, pl_module, outputs, batch, batch_idx):
        loss = outputs.get("loss") if isinstance(outputs, dict) else outputs
        if loss is None:
            return
        # one loss, or (--steps-per-call) one per optimizer step of this Lightning step
        loss = outputs.get("losses", loss) if isinstance(outputs, dict) else loss
        loss = loss.detach() if torch.is_tensor(loss) else torch.tensor(float(loss))
        if self.window is None:
            self.window = torch.empty(self.every, device=loss.device)
        losses = loss.reshape(-1)
        step = trainer.global_step  # after this batch's optimizer steps
        if len(self.steps) + len(losses) > len(self.window):  # more steps than a log interval: read what is there
            self.check(trainer)
        self.window[len(self.steps):len(self.steps) + len(losses)] = losses  # one copy on the device: no read
        self.steps += range(step - len(losses) + 1, step + 1)
        if step % self.every == 0 or len(self.steps) == len(self.window):  # full: under gradient accumulation
            self.check(trainer)

    def on_validation_start(self, trainer, pl_module):
        if trainer.training or trainer.state.fn == "fit":
            self.check(trainer, weights=True)

    def check(self, trainer, weights=False):
        """Raise Diverged if a loss so far was not finite, or (weights=True, before a checkpoint is saved)
        if a weight is not: an update computed from a finite loss can still overflow them."""
        if self.window is None:
            return
        losses, steps, self.steps = self.window[:len(self.steps)], self.steps, []
        finite = torch.isfinite(losses)
        first = steps[int((~finite).int().argmax())] if steps and not bool(finite.all()) else -1  # the read
        if trainer.world_size > 1:  # every rank stops at the same step: the latest of the ranks' first bad ones
            first = int(trainer.strategy.reduce(torch.tensor(float(first), device=losses.device), reduce_op="max"))
        hint = f"the learning rate ({self.lr:g}) is likely too high: try a smaller --lr, or --grad-clip"
        if first >= 0:
            raise Diverged(f"training loss is not finite at step {first}; {hint}")
        params = [p.detach() for p in trainer.lightning_module.parameters()] if weights else []
        if params and not bool(torch.stack([torch.isfinite(p).all() for p in params]).all()):
            raise Diverged(f"weights are not finite after step {trainer.global_step}; {hint}")


class SeveralSteps(pl.Callback):
    """--steps-per-call K > 1: each Lightning step is a list of K batches (datamodules/batches.py), which the
    model trains as K optimizer steps (models/base.py several_steps), under Lightning's manual optimization;
    --grad-clip is then the model's to apply, and --ema's update (a weight average's, at each batch's end in
    Lightning) runs after each of the K steps.

    Lightning gives its loggers its own step and epoch counts, of lists of K batches: each logger is handed
    the optimizer step K = 1 would have logged at, and that step's epoch of the data, so metrics.csv and
    W&B read the same either way."""

    def __init__(self, grad_clip, k):
        self.grad_clip, self.k = grad_clip, k
        self.epoch_length = None  # batches in a data epoch (Lightning's epochs are that // K lists)

    @staticmethod
    def can_train(cls):
        """Whether a model class trains with the shared training step (Classifier's), which can take K batches."""
        return cls.training_step is Classifier.training_step

    @classmethod
    def check(cls, model):
        """ValueError unless the model can be trained K steps at a time (can_train)."""
        if not cls.can_train(type(model)):
            raise ValueError(f"--steps-per-call > 1 needs a model trained by the shared training step; "
                             f"{type(model).__name__} has its own: use --steps-per-call 1")

    def setup(self, trainer, pl_module, stage):
        self.check(pl_module)
        pl_module.automatic_optimization = False
        pl_module.steps_grad_clip = self.grad_clip
        pl_module.after_each_step = [functools.partial(c.on_train_batch_end, trainer, pl_module, None, None, None)
                                     for c in trainer.callbacks if isinstance(c, WeightAveraging)]
        for logger in trainer.loggers:
            if not getattr(logger, "counts_optimizer_steps", False):  # setup runs again for the test
                logger.log_metrics = self._in_optimizer_steps(trainer, logger.log_metrics)
                logger.counts_optimizer_steps = True

    def _in_optimizer_steps(self, trainer, log_metrics):
        def log(metrics, step=None):
            # Lightning's step: its steps completed, during the fit before the current one's; K = 1's step
            # is then the current one's last optimizer step, and after the fit the steps completed. K = 1's
            # epoch: during the fit that step's data epoch, after it the epochs begun (Lightning's count then)
            if step is not None:
                fit = trainer.state.fn == "fit"
                step = step * self.k + (self.k - 1 if fit else 0)
                if "epoch" in metrics and self.epoch_length:
                    epoch = step // self.epoch_length if fit else -(-step // self.epoch_length)
                    metrics = {**metrics, "epoch": epoch}
            return log_metrics(metrics, step=step)
        return log

    def on_train_start(self, trainer, pl_module):
        self.epoch_length = trainer.train_dataloader.batches_per_epoch()


class FolderCheckpoint(ModelCheckpoint):
    """ModelCheckpoint whose saved paths follow its folder: a moved or copied run folder keeps track of
    its own best checkpoint, and never deletes or tests a file of the folder it was copied from."""

    def load_state_dict(self, state_dict):
        old = state_dict.get("dirpath") or self.dirpath

        def rebase(path):
            return os.path.join(self.dirpath, os.path.relpath(path, old)) if path else path
        state = dict(state_dict, dirpath=self.dirpath)
        for key in ("best_model_path", "kth_best_model_path", "last_model_path"):
            if key in state:
                state[key] = rebase(state[key])
        if "best_k_models" in state:
            state["best_k_models"] = {rebase(k): v for k, v in state["best_k_models"].items()}
        super().load_state_dict(state)

    def on_train_batch_end(self, trainer, pl_module, outputs, batch, batch_idx):
        if self._every_n_train_steps >= 1 or self._train_time_interval is not None:  # else it never saves here
            super().on_train_batch_end(trainer, pl_module, outputs, batch, batch_idx)


class StepLearningRate(LearningRateMonitor):
    """Lightning's LearningRateMonitor (step interval, its names: lr-SGD, lr-SGD/pg1, ...), its values logged
    with the step's own metrics: one call of each logger per logged step instead of two (a W&B call takes
    about a millisecond of the training process's CPU). Read just before each optimizer step that is a
    log step (every `every` steps), so the lr is that step's under --steps-per-call too."""

    def __init__(self, every):
        super().__init__("step")
        self.every = every

    def on_train_batch_start(self, trainer, pl_module, *_):
        pass  # LearningRateMonitor's logger call: its values go out with the step's metrics instead

    def on_before_optimizer_step(self, trainer, pl_module, optimizer):
        if (trainer.global_step + 1) % self.every == 0:
            for name, lr in self._extract_stats(trainer, "any").items():  # float64: the lr as set, not rounded
                pl_module.log(name, torch.tensor(lr, dtype=torch.float64), on_step=True, on_epoch=False)


class StepProgressBar(TQDMProgressBar):
    """One bar for the whole run in optimizer steps out of --max-steps; Lightning's counts the batches of
    each epoch, which says little about a run whose length is set in steps. A continued run's bar starts
    at its checkpoint's step, and is never drawn with Lightning's unknown total (`200/?`)."""

    def init_train_tqdm(self):  # Lightning's bar, with the total and the starting step from the first draw on
        return Tqdm(desc=f"epoch {self.trainer.current_epoch}", total=self.trainer.max_steps,
                    initial=self.trainer.global_step, position=2 * self.process_position, disable=self.is_disabled,
                    leave=True, dynamic_ncols=True, file=sys.stdout, smoothing=0, bar_format=self.BAR_FORMAT)

    def on_train_epoch_start(self, trainer, *_):
        self.train_progress_bar.set_description(f"epoch {trainer.current_epoch}")

    def on_exception(self, trainer, pl_module, exception):  # a stop (signal, divergence): end the bar's line
        for bar in (self._val_progress_bar, self._train_progress_bar):  # now, so the run's last message follows it
            if bar is not None:
                bar.close()

    def on_train_batch_end(self, trainer, pl_module, outputs, batch, batch_idx):
        if self._should_update(trainer.global_step, trainer.max_steps):  # every log_every steps, and the last
            _update_n(self.train_progress_bar, trainer.global_step)
            self.train_progress_bar.set_postfix(self.get_metrics(trainer, pl_module))

    def on_train_epoch_end(self, *_):
        """Nothing: the bar spans the run, and reading its metrics here would read the GPU once an epoch."""

    def get_metrics(self, trainer, pl_module):
        """Lightning's bar metrics and the last logged train/loss, read on the host here, when the bar is
        redrawn: logged with prog_bar=True, Lightning would read it at every step (models/base.py)."""
        metrics = super().get_metrics(trainer, pl_module)
        if (loss := trainer.callback_metrics.get("train/loss")) is not None:
            metrics["train/loss"] = loss.item()
        return metrics


class PlainLogLines(pl.Callback):
    """The progress bar's cadence as plain lines, for a log file (SLURM, a pipe): after the first step and
    every `every` steps after it, `step 20/1400 | train/loss 2.0312 | 8.31 steps/s | 4.1s`; after each
    validation, `step 100/1400 | train/loss 1.8120 | val/loss 1.7450 | val/acc 0.3910 | 12.3s`; at the end,
    `done 1400/1400 | ...`. A step that a validation or the end follows gets only that line. Metrics with
    4 decimals; seconds since this process started training."""

    def __init__(self, every, eval_every=None):
        self.every = every            # steps between lines: --log-every, as the bar's refresh
        self.eval_every = eval_every  # steps between validations (None: no validation): their line says it all

    def on_train_start(self, trainer, pl_module):
        self.start = self.last_time = time.perf_counter()
        self.first = self.last_step = trainer.global_step  # a continued run starts at its checkpoint's step

    @rank_zero_only
    def on_train_batch_end(self, trainer, pl_module, outputs, batch, batch_idx):
        step = trainer.global_step
        if step == self.last_step or step >= trainer.max_steps:  # mid-accumulation; or the end's line follows
            return
        if step % self.every and self.last_step != self.first:  # a line after the first step, then every `every`
            return
        if self.eval_every and step % self.eval_every == 0:  # the validation's line follows
            return
        now = time.perf_counter()
        rate = f"{(step - self.last_step) / (now - self.last_time):.3g} steps/s"
        self.last_step, self.last_time = step, now
        self._line(trainer, "step", ("train/loss",), rate)

    @rank_zero_only
    def on_validation_end(self, trainer, pl_module):
        if trainer.sanity_checking:
            return
        self._line(trainer, "step", ("train/loss", "val/loss", "val/acc"))
        self.last_step, self.last_time = trainer.global_step, time.perf_counter()  # steps/s counts training only

    @rank_zero_only
    def on_train_end(self, trainer, pl_module):
        self._line(trainer, "done", ("train/loss",))

    def _line(self, trainer, what, keys, rate=None):
        metrics = trainer.callback_metrics
        parts = [f"{what} {trainer.global_step}/{trainer.max_steps}"]
        parts += [f"{k} {metrics[k].item():.4f}" for k in keys if k in metrics]
        parts += [rate] if rate else []
        parts.append(f"{time.perf_counter() - self.start:.1f}s")
        print(" | ".join(parts), flush=True)
