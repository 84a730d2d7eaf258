"""train(cfg): data, model, Trainer and loggers -> a finished run folder.

Everything that can be refused is checked before the first write, so a refused run leaves nothing
behind. A run then ends in one of three states, written to results.json as `status`:
    completed      trained and tested                                   exit 0
    diverged       the training loss became NaN/inf; stopped at once     exit 3 (DIVERGED_EXIT)
    interrupted    a signal stopped it after a checkpoint                exit 128 + the signal
"""
import os
import shlex
import signal
import sys
import time

import pytorch_lightning as pl
import torch
from lightning_fabric.utilities.exceptions import MisconfigurationException
from pytorch_lightning.utilities import rank_zero_only

import models
from config.checks import how_to_run
from config.resolve import continue_keys, data_kwargs, defaults, model_kwargs
from config.settings import SAVED_WITHOUT
from datamodules import CIFAR10DataModule
from runfolder import BadInput, RunFolder, checkpoint
from runfolder.checkpoint import steps_in
from runfolder.folder import LR_FIND_DATA, LR_FIND_PLOT, WEIGHTS_EMA, WEIGHTS_RAW
from runfolder.lock import RunLock

from . import console, packing, provenance
from .callbacks import Diverged, SeveralSteps, StopOnDivergence
from .distributed import shutdown_distributed
from .early_stopping import EarlyStop
from .loggers import build_loggers, finish_loggers
from .resume import Interrupted, latest_checkpoint, requeue as requeue_job
from .trainer import auto_steps_per_call, build_trainer

DIVERGED_EXIT = 3




class RunEnded(Exception):
    """A run that ended without completing (diverged, interrupted); results.json says so. .code: the exit status."""

    def __init__(self, message, code):
        super().__init__(message)
        self.code = code


def train(cfg, callbacks=(), smoke=False):
    """Train and test the run cfg describes, in cfg["output_dir"]; return results.json's dict.

    `callbacks` join the Trainer's (an Optuna pruner, a test's signal). `smoke`: a few steps, one
    val and one test batch, nothing written. Raises BadInput
    (one line) before anything is written, and RunEnded for a diverged or interrupted run."""
    start = time.perf_counter()
    console.quiet()
    pl.seed_everything(cfg["seed"], workers=True, verbose=False)
    if torch.cuda.is_available() and cfg["accelerator"] != "cpu":  # CPU numerics stay exact fp32
        torch.set_float32_matmul_precision(cfg["matmul_precision"])
    folder = RunFolder(cfg["output_dir"])
    cls, kwargs = models.load(cfg["model"]), model_kwargs(cfg)
    saved = folder.read_config() if folder.has_config() else None  # a continued run's config.yaml
    cfg = dict(cfg, steps_per_call=auto_steps_per_call(cfg, cls, saved))
    data = build_data(cfg)
    try:
        model = cls(**kwargs)
        if cfg["compile"] and not isinstance(getattr(model, "net", None), torch.nn.Module):
            raise ValueError(f"--compile needs a torch model; {cfg['model']} has none")
        if cfg.get("ema") and not isinstance(getattr(model, "net", None), torch.nn.Module):
            raise ValueError(f"--ema needs a torch model; {cfg['model']} has none")
        if cfg.get("steps_per_call", 1) > 1:
            SeveralSteps.check(model)
        if cfg.get("early_stop") and not cfg["val_size"]:
            raise ValueError("--early-stop needs a validation split to watch: --val-size > 0")
        build_trainer(cfg, folder, [], smoke=smoke)  # settings Lightning rejects are refused here, writing nothing
    except (ValueError, MisconfigurationException) as e:
        raise BadInput(str(e).splitlines()[0]) from None
    lead = rank_zero_only.rank == 0  # under DDP every rank runs this; one checks and writes
    lock = None
    if lead and not smoke:
        check_folder(folder, cfg, saved)
        lock = RunLock(folder)  # created with the folder, held until this process ends
        for path in folder.partial_checkpoints():  # held: no other process of this run is writing them
            os.remove(path)
            print(f"note: removed {path}: a checkpoint write that a killed process left unfinished",
                  file=sys.stderr, flush=True)
    try:
        ckpt = None if smoke else latest_checkpoint(folder)
        done = steps_in(ckpt) if ckpt else 0
        finished = None if smoke else tested_already(folder, cfg, done)
        if finished:
            if lead:
                early = done < cfg["max_steps"]  # stopped by --early-stop
                print(f"{folder.path}: {f'stopped early at step {done}' if early else f'all {done} steps trained'} and "
                      f"tested already, nothing to do (a larger {'--early-stop' if early else '--max-steps'} "
                      "continues it)", flush=True)
            return dict(finished, run_dir=os.path.abspath(folder.path))
        if not smoke:
            tested_checkpoint(folder)  # a file the final test would read is refused now, not after training
        if lead and not smoke:
            folder.write_config(cfg)
        loggers = [] if smoke else build_loggers(cfg, folder, resume_step=done)
        guard = StopOnDivergence(cfg)
        trainer = build_trainer(cfg, folder, loggers, callbacks=[guard, *callbacks], smoke=smoke)
        packing.apply_memory_share(trainer.strategy.root_device)  # one of K runs on this GPU: its share only
        for logger in trainer.loggers:
            logger.log_hyperparams({"params": model.num_params()})
        if lead and not smoke:
            folder.write_provenance(*provenance.collect(cfg, trainer))
        if lead:
            console.first_line(cfg, model, data, trainer, folder, smoke)
            if ckpt:
                print(f"continuing from {ckpt} (step {done})" if done < cfg["max_steps"] else
                      f"{ckpt}: all {done} steps trained already; testing", flush=True)
        if cfg["compile"]:  # the net, not the LightningModule: training_step reads global_step, and
            model.net.compile()  # each new value would be a recompile; state-dict keys stay as they are
        try:
            trainer.fit(model, datamodule=data, ckpt_path=ckpt, **checkpoint.LIGHTNING)
        except Diverged as e:
            end(folder, cfg, trainer, model, start, status="diverged", reason=str(e), code=DIVERGED_EXIT)
        except Interrupted as e:
            then = f"; continue with: {how_to_run('train.py')} --resume {shlex.quote(folder.path)}"
            end(folder, cfg, trainer, model, start, status="interrupted", reason=str(e), code=e.code, then=then,
                requeue=e.requeue)
        fit_seconds = timer_seconds(trainer, "train")  # now: testing a checkpoint restores the Timer's old state
        # Test the checkpoint with the best val/acc (the final weights when there is none): choosing on val
        # is fair, and a late overfit then cannot hide what the run reached. results.json says which.
        best = None if smoke else tested_checkpoint(folder)
        stopped = early_stop(trainer)  # now: testing a checkpoint restores the callbacks' state from then
        if stopped["reason"] and lead:
            print(stopped["reason"], flush=True)
        test = trainer.test(model, datamodule=data, ckpt_path=best, verbose=False, **checkpoint.LIGHTNING)[0]
        results = summary(cfg, trainer, model, start, status="completed", fit_seconds=fit_seconds, **stopped,
                          test_acc=test["test/acc"], test_loss=test["test/loss"],
                          tested_checkpoint="best-val" if best else "final", tested_weights=tested_weights(cfg),
                          test_seconds=round(timer_seconds(trainer, "test"), 3))
        if trainer.is_global_zero and not smoke:
            folder.write_results(results)
        finish_loggers(trainer.loggers, results)
        return results
    finally:
        if lock:
            lock.release()
        shutdown_distributed()


def build_data(cfg):
    """The data module for cfg, its files found and read, and its sizes checked against the batch size."""
    try:  # a setting these reject is the user's input: say so in one line
        data = CIFAR10DataModule(**data_kwargs(cfg), steps_per_call=cfg["steps_per_call"])
    except ValueError as e:
        raise BadInput(str(e)) from None
    if rank_zero_only.rank == 0:  # find or fetch the data before anything else starts; Lightning's own
        data.prepare_data()       # prepare_data call (local rank 0 of each node) then finds it there
    data.setup()
    per_rank = len(data.splits["train"]) // (cfg["devices"] * cfg["num_nodes"])
    if cfg["batch_size"] > per_rank:
        raise BadInput(f"--batch-size {cfg['batch_size']} is larger than the training split "
                        f"({per_rank} images per device): lower it, or --val-size")
    return data


def tested_already(folder, cfg, done):
    """results.json of a run that has trained all of cfg's max_steps (`done`, its checkpoint's step), or
    was stopped there by --early-stop with no more patience now, and tested them, for a rerun that has
    nothing to do; None when there is something left. BadInput
    when the folder has trained more steps than max_steps."""
    if done > cfg["max_steps"]:
        raise BadInput(f"{folder.path} has trained {done} steps, more than --max-steps {cfg['max_steps']}: "
                             "a larger --max-steps continues it; for a shorter run choose another --output-dir")
    results = folder.read_results()
    if not (results and results.get("status") == "completed" and results.get("steps") == done):
        return None
    stop = results.get("stopped_early")  # stopped by --early-stop: it stands unless given more patience
    if done == cfg["max_steps"] or stop and cfg.get("early_stop") and cfg["early_stop"] <= stop["patience"] \
            and cfg.get("early_stop_on") == stop["metric"]:
        return results
    return None


def tested_checkpoint(folder):
    """The checkpoint the final test reads (the best-val one; None: the final weights), read once first
    (checkpoint.read, weights only), so that a tampered file is refused in one line, not by Lightning."""
    best = folder.best_checkpoint()
    if best:
        checkpoint.read(best, mmap=True)
    return best


def check_folder(folder, cfg, saved):
    """Refuse, touching nothing, a folder this run must not write into: not a folder, not creatable, not a
    run folder, or another config's run folder (`saved`: its config.yaml; only config.resolve.continue_keys()
    may differ when continuing one)."""
    path = folder.path
    if os.path.exists(path) and not os.path.isdir(path):
        raise BadInput(f"--output-dir {path} is a file, not a folder")
    if os.path.isdir(path) and set(os.listdir(path)) - {LR_FIND_PLOT, LR_FIND_DATA} and not folder.has_config():
        raise BadInput(f"--output-dir {path} is not empty and holds no run (no config.yaml): choose another")
    if saved is not None:
        # a setting newer than the folder ran at its default, which is what an older version did
        saved = {**defaults(cfg["model"]), **SAVED_WITHOUT, **saved}
        may_change = continue_keys()
        differ = sorted(k for k in set(saved) | set(cfg) if k not in may_change and saved.get(k) != cfg.get(k))
        if differ:
            shown = ", ".join(f"{k} {saved.get(k)!r} -> {cfg.get(k)!r}" for k in differ[:4])
            raise BadInput(f"{path} holds a run with other settings ({shown}"
                           f"{', ...' if len(differ) > 4 else ''}): choose another --output-dir")
    try:
        os.makedirs(path, exist_ok=True)
    except OSError as e:
        raise BadInput(f"cannot create --output-dir {path}: {e.strerror}") from None


def timer_seconds(trainer, stage):
    timer = next(c for c in trainer.callbacks if isinstance(c, pl.callbacks.Timer))
    return timer.time_elapsed(stage)


def summary(cfg, trainer, model, start, **fields):
    """results.json's dict: what ran, how it ended, its numbers, how long it took."""
    best = trainer.checkpoint_callback.best_model_score if trainer.checkpoint_callback else None
    out = dict(model=cfg["model"], preset=cfg["preset"], seed=cfg["seed"], status=None, reason=None,
               test_acc=None, test_loss=None, tested_checkpoint=None,
               tested_weights=None, stopped_early=None,
               best_val_acc=float(best) if best is not None else None, steps=trainer.global_step,
               wall_seconds=round(time.perf_counter() - start, 2), fit_seconds=None, test_seconds=None,
               params=model.num_params(), world_size=trainer.world_size, run_dir=os.path.abspath(cfg["output_dir"]))
    out.update(fields)  # airbench's timing convention: data loading excluded, training and the test included
    if out["fit_seconds"] is not None:
        out["fit_seconds"] = round(out["fit_seconds"], 3)
    return out


def tested_weights(cfg):
    """results.json's tested_weights: "ema" (the averaged weights, --ema) or "raw"."""
    return WEIGHTS_EMA if cfg.get("ema") else WEIGHTS_RAW


def early_stop(trainer):
    """results.json's reason and stopped_early for a run --early-stop ended (both None otherwise)."""
    stop = next((c for c in trainer.callbacks if isinstance(c, EarlyStop)), None)
    return dict(reason=stop.reason(), stopped_early=stop.record()) if stop else dict(reason=None, stopped_early=None)


def end(folder, cfg, trainer, model, start, status, reason, code, then="", requeue=False):
    """A run that stopped early: results.json says how and why, and the exit status says so too. The
    last line printed says so as well, and `then` what to do next (unless `requeue`: the SLURM job puts
    itself back in the queue, last of all, and the line says so)."""
    results = summary(cfg, trainer, model, start, status=status, reason=reason,
                      fit_seconds=timer_seconds(trainer, "train"))
    if trainer.is_global_zero:
        folder.write_results(results)
    finish_loggers(trainer.loggers, results)
    if requeue:  # SLURM sends the job SIGTERM once it is requeued: held off until this process has said so
        signal.pthread_sigmask(signal.SIG_BLOCK, {signal.SIGTERM})
        then = "; requeued the job" if requeue_job() else f"; scontrol requeue failed{then}"
    if trainer.is_global_zero:
        print(f"{status}: {reason}{then}", file=sys.stderr, flush=True)
    raise RunEnded(reason, code)
