"""The Lightning callback that lets an Optuna pruner stop a trial's run early.

Not optuna-integration's PyTorchLightningPruningCallback: that one imports the unified `lightning`
package (lightning.pytorch), not `pytorch_lightning`, which this project uses; without `lightning` it
raises ImportError, and with it its Callback is another class than the one our Trainer accepts. It
also reports at step = epoch, while runs here validate every --eval-every steps inside an epoch.
"""
import math

import pytorch_lightning as pl


class ReportToTrial(pl.Callback):
    """After each validation: report the watched metric to the trial, at step = the validation's number
    (W&B's hyperband counts iterations so: one per validation); when the pruner says so, stop training
    after this step (not at the run's last step: stopping would save nothing, and it did complete). The run then tests its best checkpoint and writes results.json as usual; `pruned_at`
    holds the step it was stopped at, for the search to record the trial as PRUNED."""

    def __init__(self, trial, monitor, eval_every):
        self.trial, self.monitor, self.eval_every = trial, monitor, eval_every
        self.pruned_at = self.value = self.iteration = None

    def on_validation_end(self, trainer, pl_module):
        if trainer.sanity_checking or self.monitor not in trainer.callback_metrics:
            return
        self.value = float(trainer.callback_metrics[self.monitor])
        self.iteration = math.ceil(trainer.global_step / self.eval_every)  # a run's last, short interval counts too
        self.trial.report(self.value, self.iteration)
        if trainer.global_step < trainer.max_steps and self.trial.should_prune():  # at its end, nothing to save
            self.pruned_at = trainer.global_step
            trainer.should_stop = True
