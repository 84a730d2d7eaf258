"""Catching host-device syncs in training steps: a callback that watches steps [first, last) of a fit.

On a GPU it runs them under torch.cuda.set_sync_debug_mode("warn") and records every warning it gives: each
op that made the host wait for the GPU (a value read on the host, a blocking copy, a size that depends on
values), with the Python line that called it. On the CPU nothing waits, so it records the ops that would:
reading a tensor's value on the host (`.item()`, `int(t)`, `bool(t)`, `if t:`: aten::_local_scalar_dense)
and ops whose output size depends on values (nonzero, masked_select, unique), with the calling line.
The window spans whole steps: the batch fetch, every hook, forward, backward and optimizer step.
"""
import traceback
import warnings

import pytorch_lightning as pl
import torch
from torch.utils._python_dispatch import TorchDispatchMode

SYNC_OPS = ("_local_scalar_dense", "nonzero", "masked_select", "_unique2", "unique_consecutive", "unique_dim")


class RecordSyncs(TorchDispatchMode):
    """Records (op, the innermost caller outside torch) for every op in SYNC_OPS run under it."""

    def __init__(self):
        super().__init__()
        self.found = []

    def __torch_dispatch__(self, func, types, args=(), kwargs=None):
        if func.__name__.split(".")[0] in SYNC_OPS:
            frames = [f for f in traceback.extract_stack() if "/torch/" not in f.filename and f.filename != __file__]
            where = frames[-1] if frames else None
            self.found.append((func.__name__, f"{where.filename}:{where.lineno} ({where.name})" if where else "?"))
        return func(*args, **(kwargs or {}))


class SyncWatch(pl.Callback):
    """Watch the global steps first .. last - 1; `found` lists (what, where) of each sync seen."""

    def __init__(self, first, last):
        self.first, self.last = first, last
        self.mode, self.found, self.watched = None, [], 0
        self.caught = None  # CUDA: the warnings.catch_warnings in force and its list

    def on_train_batch_start(self, trainer, pl_module, batch, batch_idx):
        step = trainer.global_step
        if step == self.last:
            self._stop()
        elif step == self.first:
            self._start(batch[0].device)
        if self.first <= step < self.last:
            self.watched += 1

    def on_train_end(self, trainer, pl_module):
        self._stop()

    def on_exception(self, trainer, pl_module, exception):
        self._stop()  # the rest of the process must not run in sync debug mode

    def _start(self, device):
        if device.type == "cuda":
            torch.cuda.synchronize()
            catcher = warnings.catch_warnings(record=True)
            self.caught = (catcher, catcher.__enter__())
            warnings.simplefilter("always")  # every sync, not the first per line
            torch.cuda.set_sync_debug_mode("warn")
            self.mode = "cuda"
        else:
            self.mode = RecordSyncs()
            self.mode.__enter__()

    def _stop(self):
        if self.mode == "cuda":
            torch.cuda.set_sync_debug_mode(0)
            catcher, caught = self.caught
            catcher.__exit__(None, None, None)
            self.found += [(str(w.message).splitlines()[0], f"{w.filename}:{w.lineno}") for w in caught
                           if "synchroniz" in str(w.message)]
        elif self.mode is not None:
            self.mode.__exit__(None, None, None)
            self.found += self.mode.found
        self.mode = None
