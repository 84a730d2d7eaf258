"""Catching host-device syncs in training steps: a callback that watches steps [first, last) of a fit.

On a GPU it runs them under torch.cuda.set_sync_debug_mode("error"), so the first op that makes the host
wait for the GPU raises. On the CPU nothing waits, so it records the ops that would: reading a tensor's
value on the host (`.item()`, `int(t)`, `bool(t)`, `if t:`: aten::_local_scalar_dense) and ops whose
output size depends on values (nonzero, masked_select, unique), with the Python line that called each.
The window spans whole steps: the batch fetch, every hook, forward, backward and optimizer step.
"""
import traceback

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
    """Watch the global steps first .. last - 1; `found` lists the syncs seen (CPU) or raises (CUDA)."""

    def __init__(self, first, last):
        self.first, self.last = first, last
        self.mode, self.found, self.watched = None, [], 0

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
        self._stop()  # a sync raised: the rest of the process must not run in error mode

    def _start(self, device):
        if device.type == "cuda":
            torch.cuda.synchronize()
            torch.cuda.set_sync_debug_mode("error")
            self.mode = "cuda"
        else:
            self.mode = RecordSyncs()
            self.mode.__enter__()

    def _stop(self):
        if self.mode == "cuda":
            torch.cuda.set_sync_debug_mode(0)
        elif self.mode is not None:
            self.mode.__exit__(None, None, None)
            self.found += self.mode.found
        self.mode = None
