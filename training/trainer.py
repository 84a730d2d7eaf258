"""The Trainer a run uses, with its callbacks: checkpoints, timer, progress, signals, loggers' extras."""
import signal
import sys

import pytorch_lightning as pl
from pytorch_lightning.callbacks import Timer
from pytorch_lightning.plugins.environments import SLURMEnvironment

from runfolder import folder as run_folder

from .averaging import EMA
from .callbacks import FolderCheckpoint, PlainLogLines, StepLearningRate, StepProgressBar
from .early_stopping import EarlyStop
from .loggers import logger_callbacks
from .resume import Resumable

SMOKE_STEPS = 3  # --smoke: enough steps to run every hook once, few enough to take seconds


def build_trainer(cfg, folder, loggers, callbacks=(), smoke=False):
    """A Trainer for cfg writing into `folder` (a RunFolder); `callbacks` are added last."""
    has_val = cfg["val_size"] > 0
    interactive = sys.stdout.isatty()  # a terminal gets a progress bar, a log file gets plain lines
    end_only = cfg["checkpoint"] == "end"  # a short run: a save per epoch costs more than it could save
    extra = [Timer()]  # fit and test seconds counted from after data loading, for results.json
    if cfg.get("ema"):
        extra.append(EMA(cfg["ema"]))
    if cfg.get("early_stop") and has_val:
        extra.append(EarlyStop(cfg["early_stop"], cfg["early_stop_on"]))
    if not smoke:
        extra.insert(0, FolderCheckpoint(
            dirpath=folder.checkpoint_dir, filename=run_folder.BEST.format(step="{step}"),
            monitor="val/acc" if has_val and not end_only else None, mode="max",
            save_top_k=0 if end_only else 1, every_n_epochs=0 if end_only else None,
            save_last=False, auto_insert_metric_name=False))  # last.ckpt is Resumable's: every eval and the end
    if loggers:
        extra.append(StepLearningRate())
    extra += logger_callbacks(loggers)
    if interactive:  # redrawn every log_every steps: a redraw per step cost 5% of a CPU MLP run (bench/)
        extra.append(StepProgressBar(refresh_rate=cfg["log_every"]))
    else:
        extra.append(PlainLogLines(cfg["log_every"], cfg["eval_every"] if has_val else None))
    if not smoke:
        extra.append(Resumable(folder.last_path, every=None if end_only else "validation" if has_val else "epoch"))
    # Under SLURM: SIGUSR1 (#SBATCH --signal=USR1@90) -> checkpoint and `scontrol requeue`; see resume.py.
    slurm = [SLURMEnvironment(auto_requeue=True, requeue_signal=signal.SIGUSR1)] if SLURMEnvironment.detect() else None
    steps = SMOKE_STEPS if smoke else cfg["max_steps"]
    return pl.Trainer(
        max_steps=steps, max_epochs=-1,
        # a run shorter than --eval-every validates at its end, so it has a best-val checkpoint to test
        val_check_interval=min(cfg["eval_every"], steps) * cfg["accumulate"] if has_val else None,
        check_val_every_n_epoch=None if has_val else 1, limit_val_batches=(1 if smoke else None) if has_val else 0,
        limit_test_batches=1 if smoke else None, num_sanity_val_steps=0,
        accelerator=cfg["accelerator"], devices=cfg["devices"], num_nodes=cfg["num_nodes"],
        precision=cfg["precision"], logger=loggers or False, profiler=profiler(cfg, folder, smoke), callbacks=[*extra, *callbacks],
        enable_checkpointing=not smoke, gradient_clip_val=cfg["grad_clip"], accumulate_grad_batches=cfg["accumulate"],
        log_every_n_steps=cfg["log_every"], enable_progress_bar=interactive, enable_model_summary=False,
        default_root_dir=folder.path, deterministic=cfg["accelerator"] == "cpu" or None, plugins=slurm,
        benchmark=None if cfg["accelerator"] == "cpu" else True,  # cuDNN picks its fastest kernels per shape
    )


def profiler(cfg, folder, smoke):
    """Lightning's profiler for --profile, writing its reports (and the pytorch one's traces) into the run
    folder's profile/; a smoke run prints them instead."""
    if not cfg.get("profile"):
        return None
    from pytorch_lightning import profilers

    cls = {"simple": profilers.SimpleProfiler, "advanced": profilers.AdvancedProfiler,
           "pytorch": profilers.PyTorchProfiler}[cfg["profile"]]
    where = {} if smoke else dict(dirpath=folder.file(run_folder.PROFILE), filename=run_folder.PROFILE_REPORT)
    return cls(**where)
