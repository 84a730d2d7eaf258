"""The Trainer a run uses, with its callbacks: checkpoints, timer, progress, signals, loggers' extras."""
import signal
import sys

import pytorch_lightning as pl
from pytorch_lightning.callbacks import Timer
from pytorch_lightning.plugins import TorchCheckpointIO
from pytorch_lightning.plugins.environments import SLURMEnvironment

from config.settings import SAVED_WITHOUT
from config.types import AUTO
from runfolder import checkpoint, folder as run_folder

from .averaging import EMA
from .callbacks import FolderCheckpoint, PlainLogLines, SeveralSteps, StepLearningRate, StepProgressBar
from .early_stopping import EarlyStop
from .loggers import logger_callbacks
from .resume import Resumable

SMOKE_STEPS = 3  # --smoke: enough steps to run every hook once, few enough to take seconds
AUTO_MOST = 10  # --steps-per-call auto's largest K: Lightning's cost per optimizer step is then a tenth of
                # K = 1's, and a larger K buys little more (docs/benchmarks.md)


def build_trainer(cfg, folder, loggers, callbacks=(), smoke=False):
    """A Trainer for cfg writing into `folder` (a RunFolder); `callbacks` are added last."""
    has_val = cfg["val_size"] > 0
    k = steps_per_call(cfg, smoke)  # optimizer steps per Lightning step; Lightning counts the latter
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
    if k > 1:
        extra.append(SeveralSteps(cfg["grad_clip"], k))
    if loggers:
        extra.append(StepLearningRate(cfg["log_every"]))
    extra += logger_callbacks(loggers)
    if interactive:  # redrawn every log_every steps: a redraw per step cost 5% of a CPU MLP run (bench/)
        extra.append(StepProgressBar(refresh_rate=cfg["log_every"]))
    else:
        extra.append(PlainLogLines(cfg["log_every"], cfg["eval_every"] if has_val else None))
    if not smoke:
        extra.append(Resumable(folder.last_path, every=None if end_only else "validation" if has_val else "epoch"))
    # Under SLURM: SIGUSR1 (#SBATCH --signal=USR1@90) -> checkpoint and `scontrol requeue`; see resume.py.
    slurm = [SLURMEnvironment(auto_requeue=True, requeue_signal=signal.SIGUSR1)] if SLURMEnvironment.detect() else []
    steps = (SMOKE_STEPS if k == 1 else k) if smoke else cfg["max_steps"]
    return pl.Trainer(
        max_steps=steps, max_epochs=-1,
        # a run shorter than --eval-every validates at its end, so it has a best-val checkpoint to test
        val_check_interval=max(min(cfg["eval_every"], steps) * cfg["accumulate"] // k, 1) if has_val else None,
        check_val_every_n_epoch=None if has_val else 1, limit_val_batches=(1 if smoke else None) if has_val else 0,
        limit_test_batches=1 if smoke else None, num_sanity_val_steps=0,
        accelerator=cfg["accelerator"], devices=cfg["devices"], num_nodes=cfg["num_nodes"],
        precision=cfg["precision"], logger=loggers or False, profiler=profiler(cfg, folder, smoke), callbacks=[*extra, *callbacks],
        enable_checkpointing=not smoke, gradient_clip_val=cfg["grad_clip"] if k == 1 else None,
        accumulate_grad_batches=cfg["accumulate"], log_every_n_steps=max(cfg["log_every"] // k, 1),
        enable_progress_bar=interactive, enable_model_summary=False,
        default_root_dir=folder.path, deterministic=cfg["accelerator"] == "cpu" or None,
        plugins=[WholeCheckpoints(), *slurm],
        benchmark=None if cfg["accelerator"] == "cpu" else True,  # cuDNN picks its fastest kernels per shape
    )


class WholeCheckpoints(TorchCheckpointIO):
    """Every checkpoint the Trainer saves (best, last, SLURM's hpc_ckpt) written by runfolder.checkpoint.write;
    every one it restores read with weights_only=True, whatever the caller asked (no file runs code)."""

    def save_checkpoint(self, checkpoint_dict, path, storage_options=None):
        if storage_options is not None:
            raise TypeError("storage_options: not taken by a local run folder")
        checkpoint.write(checkpoint_dict, str(path))

    def load_checkpoint(self, path, map_location=lambda storage, loc: storage, weights_only=None):
        return super().load_checkpoint(path, map_location=map_location, weights_only=True)


def auto_steps_per_call(cfg, cls, saved=None):
    """cfg's --steps-per-call as a number for a run of model class `cls`. auto: a continued run's own (`saved`,
    its config.yaml), else the largest K <= AUTO_MOST that steps_per_call accepts, 1 for a model with a
    training step of its own."""
    k = cfg["steps_per_call"]
    if k == AUTO and saved is not None:
        k = saved.get("steps_per_call", SAVED_WITHOUT["steps_per_call"])
    if k != AUTO:
        return k
    if not SeveralSteps.can_train(cls):
        return 1
    for k in range(AUTO_MOST, 1, -1):
        try:
            return steps_per_call(dict(cfg, steps_per_call=k))
        except ValueError:
            pass
    return 1


def steps_per_call(cfg, smoke=False):
    """--steps-per-call, checked against the settings it must divide or cannot work with (ValueError)."""
    k = cfg.get("steps_per_call", 1)
    if k == 1:
        return k
    counts = {} if smoke else {"--max-steps": cfg["max_steps"], "--log-every": cfg["log_every"]}  # smoke: K steps
    if cfg["val_size"] and not smoke and cfg["eval_every"] < cfg["max_steps"]:  # else it validates at the end only
        counts["--eval-every"] = cfg["eval_every"]
    uneven = [f"{name} {n}" for name, n in counts.items() if n % k]
    if uneven:
        raise ValueError(f"--steps-per-call {k} must divide {', '.join(uneven)}: Lightning logs, validates and "
                         "stops only between its steps, and a run keeps its --steps-per-call (config.yaml)")
    refused = [flag for flag, on in (("--accumulate", cfg["accumulate"] > 1),
                                     ("--precision 16-mixed", cfg["precision"] == "16-mixed"),
                                     ("more than one device", cfg["devices"] * cfg["num_nodes"] > 1)) if on]
    if refused:
        raise ValueError(f"--steps-per-call {k} does not work with {', '.join(refused)}: use --steps-per-call 1")
    return k


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
