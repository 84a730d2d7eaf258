"""Lightning callbacks of our own: plain log lines for log files (SLURM), where a progress bar floods."""
import time

import pytorch_lightning as pl
from pytorch_lightning.utilities import rank_zero_only


class PlainLogLines(pl.Callback):
    """One line per evaluation: `step 100/1400 | train/loss 1.812 | val/loss 1.745 | val/acc 0.391 | 12.3s`."""

    def on_train_start(self, trainer, pl_module):
        self.start = time.perf_counter()

    @rank_zero_only
    def on_validation_end(self, trainer, pl_module):
        if trainer.sanity_checking:
            return
        self._line(trainer, "step", ("train/loss", "val/loss", "val/acc"))

    @rank_zero_only
    def on_train_end(self, trainer, pl_module):
        self._line(trainer, "done", ("train/loss",))

    def _line(self, trainer, what, keys):
        metrics = trainer.callback_metrics
        parts = [f"{what} {trainer.global_step}/{trainer.max_steps}"]
        parts += [f"{k} {metrics[k].item():.4f}" for k in keys if k in metrics]
        parts.append(f"{time.perf_counter() - self.start:.1f}s")
        print(" | ".join(parts), flush=True)
