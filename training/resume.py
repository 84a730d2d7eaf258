"""checkpoints/last.ckpt: the state of the last step a run trained, saved on a signal and at every
evaluation and the end; and finding the checkpoint a run continues from.

    completed      last.ckpt is the final step (not the best-val one: that is best-stepN.ckpt)
    interrupted    the step the signal stopped it at (see below)
    diverged       the last evaluation before the loss or the weights stopped being finite
                   (callbacks.StopOnDivergence checks before every save)

    SIGUSR1 under SLURM (`#SBATCH --signal=USR1@90`: 90 s before the time limit) -> checkpoint,
            `scontrol requeue`, exit; the job starts again later and finds its run folder by job id.
    SIGTERM (scancel, preemption, kill) or SIGINT (Ctrl-C) -> checkpoint, exit.

Each leaves checkpoints/last.ckpt in the run folder; rerunning with the same run folder continues from
the newest readable one of that and Lightning's own hpc_ckpt_N.ckpt (read by runfolder.checkpoint.read: weights only).

Lightning's SLURMEnvironment(auto_requeue=True) handles SIGUSR1 by saving from inside the signal
handler, wherever the main thread is: between optimizer.step() and the step counter, say. Outside
the training loop (setup, test) that is harmless and stays. Inside it, Resumable only notes the
signal and acts at a step boundary, the same step on every rank:
    after the step's optimizer update   save (a valid resume point when no validation follows),
    after that step's validation        save again (now including it), stop;
    else at the next step's start       stop; the batch fetched for it was not trained on.
With the global RNG (dropout) in the checkpoint too, weights, optimizer, schedule, counters and data
position all come back, and the resumed run repeats the uninterrupted one exactly.
"""
import contextlib
import os
import signal
import subprocess
import sys
import zipfile

import pytorch_lightning as pl
import torch

from runfolder import checkpoint

from .callbacks import StopOnDivergence


def latest_checkpoint(folder):
    """The newest readable checkpoint a run folder can continue from, or None.

    One that cannot be read (a full disk, a partial copy) is renamed to NAME.unreadable, never deleted,
    with a one-line warning, so that the next save cannot overwrite it; the next newest is taken."""
    for path in folder.resume_candidates():
        if readable(path):
            return path
        kept = path + ".unreadable"
        with contextlib.suppress(FileNotFoundError):  # another rank of this run set it aside first
            os.replace(path, kept)
        print(f"warning: {path} is unreadable (truncated or corrupt): kept as {kept}; "
              "continuing from the next newest checkpoint", file=sys.stderr, flush=True)
    return None


class Interrupted(Exception):
    """A signal stopped the run after a checkpoint; .code is the exit status (128 + the signal),
    .requeue whether the SLURM job is to put itself back in the queue (SIGUSR1, on rank zero): done last,
    after results.json and the log line, since SLURM stops the job as soon as it is requeued."""

    def __init__(self, message, code, requeue=False):
        super().__init__(message)
        self.code, self.requeue = code, requeue


def readable(path):
    """Whether a checkpoint file is whole: torch.save writes a zip archive, whose CRCs this checks."""
    try:
        with zipfile.ZipFile(path) as z:
            return z.testzip() is None
    except (OSError, zipfile.BadZipFile):
        return False


def requeue():
    """Put this SLURM job (or array task) back in the queue, as Lightning's handler does."""
    array = os.environ.get("SLURM_ARRAY_JOB_ID")
    job = f"{array}_{os.environ['SLURM_ARRAY_TASK_ID']}" if array else os.environ["SLURM_JOB_ID"]
    return subprocess.run(["scontrol", "requeue", job]).returncode == 0


class Resumable(pl.callbacks.Checkpoint):
    """last.ckpt, and what a run needs to stop on a signal and continue exactly (see the module docstring).

    Saves last.ckpt after every evaluation (`every`: "validation", or "epoch" for a run without a
    validation split, or None for --checkpoint end), after the final step (and its validation), and
    on a signal.
    Lightning's ModelCheckpoint(save_last=True) would save it only when the best checkpoint changes,
    so a run's final steps after its best validation would be lost. A Checkpoint subclass so that
    Lightning runs its hooks after ModelCheckpoint's: the save after validation then holds that
    validation's best-checkpoint bookkeeping.
    """

    def __init__(self, last_path, every="validation"):
        self.last_path = last_path
        self.every = every
        self.received = 0  # signal number noted since the last step; 0 = none
        self.stopping = 0  # the signal being acted on
        self.best_seen = ""  # the best checkpoint as of this callback's last save (see save)

    def state_dict(self):  # dropout draws from the global RNG; Lightning's checkpoint leaves it out
        cuda = torch.cuda.get_rng_state_all() if torch.cuda.is_available() else []
        return {"torch_rng": torch.get_rng_state(), "cuda_rng": cuda}

    def load_state_dict(self, state):
        torch.set_rng_state(state["torch_rng"])
        if state["cuda_rng"] and torch.cuda.is_available():
            torch.cuda.set_rng_state_all(state["cuda_rng"])

    def save(self, trainer):
        """Save last.ckpt, unless the loss or the weights are no longer finite (that raises Diverged).

        When ModelCheckpoint has just saved a new best checkpoint (since this callback's last save, which
        follows every one of its saves: same hook, called next), that file holds this very state, so
        last.ckpt becomes a second name for it (a hard link) instead of a second write of the same bytes."""
        for callback in trainer.callbacks:
            if isinstance(callback, StopOnDivergence):
                callback.check(trainer, weights=True)
        best = trainer.checkpoint_callback.best_model_path if trainer.checkpoint_callback else ""
        fresh, self.best_seen = bool(best) and best != self.best_seen, best
        if fresh:
            if trainer.is_global_zero:  # the one rank that writes files (no barrier: the others return too)
                checkpoint.second_name(best, self.last_path)
            return
        # A write, not a read: weights_only=False asks Lightning to save the full state (optimizer, loops) that a
        # continue needs; said, so Lightning logs nothing. Every read goes through runfolder.checkpoint (weights_only=True).
        trainer.save_checkpoint(self.last_path, weights_only=False)

    def on_train_start(self, trainer, pl_module):  # after a continue's restore
        if trainer.checkpoint_callback:  # listed there for W&B's --log-model upload, and in every saved state
            trainer.checkpoint_callback.last_model_path = self.last_path
            self.best_seen = trainer.checkpoint_callback.best_model_path
        # Lightning registered its handlers just before this hook and puts the old ones back at teardown.
        noted = [signal.SIGINT, signal.SIGTERM]
        if callable(signal.getsignal(signal.SIGUSR1)):  # Lightning's requeue handler: under SLURM
            noted.append(signal.SIGUSR1)
        for signum in noted:
            signal.signal(signum, self._note)

    def _note(self, signum, frame):
        self.received = self.received or signum

    def on_train_batch_end(self, trainer, pl_module, outputs, batch, batch_idx):
        received = self.received
        if trainer.world_size > 1:  # all ranks stop at the same step, or the others wait forever
            flag = torch.tensor(received, device=trainer.strategy.root_device)
            received = int(trainer.strategy.reduce(flag, reduce_op="max"))
        if received and trainer.global_step < trainer.max_steps:  # on the last step, just finish
            self.stopping = received
            self.save(trainer)
        elif trainer.global_step >= trainer.max_steps:  # the final step: what a longer --max-steps continues from
            self.save(trainer)  # (here, where Lightning's restart expects a save: not at on_train_end)

    def on_validation_end(self, trainer, pl_module):
        if trainer.sanity_checking or trainer.state.fn != "fit":
            return
        final = trainer.global_step >= trainer.max_steps  # again, now including the final validation
        if self.stopping or self.every == "validation" or final:
            self.save(trainer)
        if self.stopping:
            self._stop(trainer)

    def on_train_epoch_end(self, trainer, pl_module):
        if self.every == "epoch":
            self.save(trainer)

    def on_train_batch_start(self, trainer, pl_module, batch, batch_idx):
        if self.stopping:
            self._stop(trainer)

    def _stop(self, trainer):
        name = signal.Signals(self.stopping).name
        # Lightning tears down (loggers, handlers) and re-raises; run.py writes results.json, then requeues
        raise Interrupted(f"{name} at step {trainer.global_step}: saved {self.last_path}", 128 + self.stopping,
                          requeue=self.stopping == signal.SIGUSR1 and trainer.is_global_zero)
