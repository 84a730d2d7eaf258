"""--early-stop N: stop when the validation metric has not improved for N evaluations in a row.

Lightning's EarlyStopping, which also records what results.json says of the stop (`stopped_early`:
the step, the metric's best value and step, the patience) and a one-line reason. Its state is in each
checkpoint, so a run stopped early and run again stays stopped (it tests, trains no further), while
one continued with a larger --early-stop trains on from where it stopped.
"""
import torch
from pytorch_lightning.callbacks import EarlyStopping
from pytorch_lightning.callbacks.early_stopping import EarlyStoppingReason

from config.settings import EARLY_STOP_ON  # --early-stop-on's metrics -> which way is better


class EarlyStop(EarlyStopping):
    def __init__(self, patience, monitor="val/acc"):
        super().__init__(monitor=monitor, mode=EARLY_STOP_ON[monitor], patience=patience)
        self.best_step = None     # the step of best_score
        self.stopped_step = None  # the step training stopped at; None while it has not

    def _run_early_stopping_check(self, trainer):
        best = self.best_score.clone()
        super()._run_early_stopping_check(trainer)
        if not torch.equal(self.best_score.cpu(), best.cpu()):
            self.best_step = trainer.global_step
        if self.stopping_reason != EarlyStoppingReason.NOT_STOPPED and self.stopped_step is None:
            self.stopped_step = trainer.global_step

    def on_train_start(self, trainer, pl_module):
        if self.stopped_step is None:
            return
        if self.stopping_reason == EarlyStoppingReason.PATIENCE_EXHAUSTED and self.wait_count < self.patience:
            self.stopped_step, self.stopping_reason = None, EarlyStoppingReason.NOT_STOPPED  # more patience now
        else:
            trainer.should_stop = True  # continued from the checkpoint it stopped at: it stays stopped

    def record(self):
        """results.json's `stopped_early`: None unless this callback stopped the run."""
        if self.stopped_step is None:
            return None
        return dict(step=self.stopped_step, metric=self.monitor, best=float(self.best_score),
                    best_step=self.best_step, patience=self.patience)

    def reason(self):
        """One line saying why the run stopped early; None when it did not."""
        r = self.record()
        if r is None:
            return None
        if self.stopping_reason != EarlyStoppingReason.PATIENCE_EXHAUSTED:  # a non-finite val metric
            return f"stopped early at step {r['step']}: {self.stopping_reason_message}"
        return (f"stopped early at step {r['step']}: {r['metric']} did not improve in {r['patience']} "
                f"evaluations after its best, {r['best']:.4f} at step {r['best_step']}")

    def state_dict(self):
        return {**super().state_dict(), "best_step": self.best_step, "stopped_step": self.stopped_step}

    def load_state_dict(self, state):
        patience = self.patience  # the run's own setting, not the checkpoint's: it may change on a continue
        super().load_state_dict(state)
        self.patience = patience
        self.best_step, self.stopped_step = state.get("best_step"), state.get("stopped_step")
