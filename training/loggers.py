"""Loggers for a run: Lightning's CSVLogger (metrics.csv, always) and Weights & Biases (--logger wandb).

metrics.csv is appended to when the folder has one (a resumed run), where Lightning would delete it.

W&B is offline-first and may never be the reason a run dies:
- online only with credentials (WANDB_API_KEY or a `wandb login` netrc entry) and no WANDB_MODE saying
  otherwise; else offline into the run folder's wandb/, and the run ends with one line giving the `wandb sync`
  command. An online start that fails falls back to offline.
- if W&B cannot start, or later fails to write, a warning says so and the CSV logger carries on.
- one W&B run per job: only global rank zero starts one (Lightning gives other ranks a dummy).
- the run id lives in the run folder (run_folder.WANDB_ID), so a resumed (requeued) job continues the same W&B run.
"""
import csv
import functools
import netrc
import os
import re
import uuid
import warnings
from urllib.parse import urlparse

import pytorch_lightning as pl
import torch
from pytorch_lightning.loggers import CSVLogger
from pytorch_lightning.loggers.csv_logs import ExperimentWriter
from pytorch_lightning.utilities import rank_zero_only
from torchmetrics.classification import MulticlassConfusionMatrix

from runfolder import BadInput
from runfolder import folder as run_folder

N_EXAMPLES = 32  # test images, with label and prediction, in the W&B examples table


def build_loggers(cfg, folder, resume_step=0):
    """The loggers for cfg["logger"], writing into `folder` (a RunFolder); a run continued from a
    checkpoint saved after `resume_step` steps keeps metrics.csv's rows from before it."""
    if cfg["logger"] == "none":
        return []
    csv_logger = CSVLogger(folder.path, name="", version="")
    if rank_zero_only.rank == 0:  # other ranks log nothing
        csv_logger._experiment = AppendingWriter(csv_logger.log_dir, resume_step)  # -> folder.metrics_path
    loggers = [csv_logger]
    if cfg["logger"] == "wandb":
        try:
            loggers.append(start_wandb(cfg, folder))
        except Exception as e:  # W&B must never be the reason a run dies
            warnings.warn(f"W&B logging is off ({type(e).__name__}: {e}); metrics.csv still gets everything")
    return loggers


class AppendingWriter(ExperimentWriter):
    """Lightning's CSV writer, except that a continued run keeps its curves from before the restart.

    Each step appears once: rows logged after the checkpoint it continues from (a killed run's last
    steps) are dropped, and a value the continued run logs again for an earlier step (the validation
    a checkpoint was saved in) replaces the old one.
    """
    NAME_METRICS_FILE = run_folder.METRICS_CSV

    def __init__(self, log_dir, resume_step=0):
        self.resume_step = resume_step
        self.previous = []  # rows from before the restart
        super().__init__(log_dir)

    def _check_log_dir_exists(self):
        if not os.path.isfile(self.metrics_file_path):
            return
        with open(self.metrics_file_path, newline="") as f:
            reader = csv.DictReader(f)
            self.metrics_keys = list(reader.fieldnames or [])
            self.previous = [row for row in reader if int(row["step"]) < self.resume_step]
        self._rewrite(self.previous)

    def save(self):
        # only a step from before the restart can be logged twice; later flushes skip the old rows at once
        again = {(int(m["step"]), k) for m in self.metrics if int(m["step"]) < self.resume_step
                 for k in m if k != "step"}
        if not again:
            return super().save()
        kept = [r for r in self.previous if not any((int(r["step"]), k) in again for k, v in r.items() if v != "")]
        if len(kept) < len(self.previous):
            self.previous = kept
            self._rewrite(kept)
        super().save()

    def _rewrite(self, rows):
        with open(self.metrics_file_path, "w", newline="") as f:
            writer = csv.DictWriter(f, fieldnames=self.metrics_keys)
            writer.writeheader()
            writer.writerows(rows)


def logger_callbacks(loggers):
    """Callbacks that only make sense with a given logger: the W&B test report."""
    return [WandbTestReport()] if any(isinstance(lg, SafeWandbLogger) for lg in loggers) else []


def finish_loggers(loggers, results):
    """End the W&B run after test (its files are then complete) and say how to upload an offline run."""
    for lg in loggers:
        if isinstance(lg, SafeWandbLogger):
            lg.finish(results)


def wandb_mode():
    """WANDB_MODE when set (online, offline, disabled, ...); else online with credentials, offline without."""
    return os.environ.get("WANDB_MODE") or ("online" if has_credentials() else "offline")


def has_credentials():
    if os.environ.get("WANDB_API_KEY"):
        return True
    host = urlparse(os.environ.get("WANDB_BASE_URL", "https://api.wandb.ai")).hostname
    try:
        return netrc.netrc(os.environ.get("NETRC")).authenticators(host) is not None
    except (OSError, netrc.NetrcParseError):
        return False


def start_wandb(cfg, folder):
    import wandb

    mode = wandb_mode()
    logger = SafeWandbLogger(
        project=cfg.get("wandb_project") or "cifar10-lab", entity=cfg.get("wandb_entity"), name=cfg["run_name"],
        group=cfg.get("group"), tags=list(cfg.get("tags") or []) or None, log_model=cfg.get("log_model", False),
        save_dir=folder.path, id=run_id(folder), config=cfg, mode=mode,
        settings=wandb.Settings(silent=True),  # no banner, no sparklines at exit; finish() prints the one line
    )
    logger._wandb_init.pop("anonymous", None)  # Lightning passes None, which wandb 0.31 warns is ignored
    if rank_zero_only.rank == 0:  # start now, so a failure shows here and not mid-training
        try:
            _ = logger.experiment
        except Exception as e:
            if mode != "online":
                raise
            warnings.warn(f"W&B could not go online ({type(e).__name__}: {e}); logging offline instead")
            logger._wandb_init["mode"] = "offline"
            _ = logger.experiment
    return logger


def run_id(folder):
    """The W&B run id of this run folder: read it back on resume, else make one (rank zero writes it)."""
    path = folder.file(run_folder.WANDB_ID)
    if os.path.exists(path):
        with open(path, "rb") as f:
            rid = f.read().strip()
        if not re.fullmatch(rb"[A-Za-z0-9_-]{1,128}", rid):  # a copied folder's file may be anything
            raise BadInput(f"{path}: not a W&B run id (letters and digits, as train.py writes it)")
        return rid.decode()
    rid = uuid.uuid4().hex[:8]  # W&B's own ids look the same: 8 lowercase letters and digits
    if rank_zero_only.rank == 0:
        with open(path, "w") as f:
            f.write(rid + "\n")
    return rid


def guarded(method):
    """Run a logger method; on its first exception warn once and turn the logger into a no-op."""
    @functools.wraps(method)
    def call(self, *args, **kwargs):
        if self.broken:
            return None
        try:
            return method(self, *args, **kwargs)
        except Exception as e:
            self.broken = True
            warnings.warn(f"W&B stopped writing ({type(e).__name__}: {e}); training goes on, "
                          "metrics.csv still gets everything")
    return call


class SafeWandbLogger(pl.loggers.WandbLogger):
    """Lightning's WandbLogger whose writes cannot raise into training (see guarded)."""
    broken = False
    log_hyperparams = guarded(pl.loggers.WandbLogger.log_hyperparams)
    log_metrics = guarded(pl.loggers.WandbLogger.log_metrics)
    after_save_checkpoint = guarded(pl.loggers.WandbLogger.after_save_checkpoint)
    finalize = guarded(pl.loggers.WandbLogger.finalize)

    @guarded
    def log_test_report(self, confusion, class_names, examples):
        """confusion (C, C) counts, rows = true class; examples: rows of (image HWC uint8, label, prediction)."""
        import wandb

        cells = [[class_names[i], class_names[j], int(confusion[i, j])]
                 for i in range(len(class_names)) for j in range(len(class_names))]
        table = wandb.Table(columns=["Actual", "Predicted", "nPredictions"], data=cells)
        matrix = wandb.plot_table("wandb/confusion_matrix/v1", table,
                                  {"Actual": "Actual", "Predicted": "Predicted", "nPredictions": "nPredictions"},
                                  {"title": "test confusion matrix"})
        rows = [[wandb.Image(img), class_names[y], class_names[p], y == p] for img, y, p in examples]
        preds = wandb.Table(columns=["image", "label", "prediction", "correct"], data=rows)
        self.experiment.log({"test/confusion_matrix": matrix, "test/examples": preds})

    @rank_zero_only
    @guarded
    def finish(self, results):
        if self._experiment is None:
            return
        run = self.experiment
        run.summary.update({k: v for k, v in results.items() if isinstance(v, (int, float, str))})
        offline, folder = run.offline, run.settings.sync_dir
        run.finish()
        if offline:
            print(f"W&B run written offline to {folder}; upload it with: wandb sync {folder}", flush=True)


class WandbTestReport(pl.Callback):
    """At test time: a confusion matrix (summed over ranks by torchmetrics) and a table of example predictions."""

    def on_test_epoch_start(self, trainer, pl_module):
        self.confusion = MulticlassConfusionMatrix(pl_module.hparams.num_classes).to(pl_module.device)
        self.examples = []

    def on_test_batch_end(self, trainer, pl_module, outputs, batch, batch_idx, dataloader_idx=0):
        x, y = batch
        self.confusion.update(outputs["preds"], y)
        take = N_EXAMPLES - len(self.examples)
        if take > 0:  # min-max per image: the inputs are normalised, the picture only needs to be visible
            imgs = x[:take].float()
            lo, hi = imgs.amin((1, 2, 3), keepdim=True), imgs.amax((1, 2, 3), keepdim=True)
            imgs = ((imgs - lo) / (hi - lo).clamp_min(1e-8) * 255).to(torch.uint8).permute(0, 2, 3, 1).cpu()
            self.examples += zip(imgs.numpy(), y[:take].tolist(), outputs["preds"][:take].tolist())

    def on_test_epoch_end(self, trainer, pl_module):
        from datamodules.cifar10 import CLASSES

        confusion = self.confusion.compute().cpu()  # every rank takes part in the sum
        for lg in trainer.loggers:
            if isinstance(lg, SafeWandbLogger) and trainer.is_global_zero:
                lg.log_test_report(confusion, CLASSES, self.examples)
