"""Catching host reads during a fit: a callback that records each one with the step it happened in, and
the fits tests/training/test_host_reads.py (CPU) and tests/gpu/test_syncs.py (GPU) run under it.

A host read is what makes the host wait for the GPU to finish its queue: a tensor's value read in Python
or a copy to the CPU. On a GPU the callback runs the fit under torch.cuda.set_sync_debug_mode("warn") and
records each sync warning PyTorch gives, with the Python line that caused it. On the CPU nothing waits,
so it records what would wait on a GPU: calls of the Tensor methods in READS (`.item()`, `.tolist()`,
`.cpu()`, `.numpy()`, `bool(t)`, `float(t)`, `int(t)`, ...), patched on torch.Tensor for the fit, and the
ops in SYNC_OPS (a value read inside C++, or an output whose size depends on values).

Each read is filed under the phase it came in: ("setup", None) before the first step, ("step", s) from
the start of the batch of optimizer step s (0-based) until the next one starts (the hooks, forward,
backward, the optimizer, the epoch's end), ("eval", s) from a validation's start after step s until
the next step starts, ("end", None) after training.
"""
import contextlib
import io
import traceback
import warnings

import pytorch_lightning as pl
import torch
from torch.utils._python_dispatch import TorchDispatchMode

import train
from config.resolve import resolve
from training.callbacks import SeveralSteps

READS = ("item", "tolist", "cpu", "numpy", "__bool__", "__float__", "__int__", "__index__", "__array__",
         "__format__")
SYNC_OPS = ("_local_scalar_dense", "nonzero", "masked_select", "_unique2", "unique_consecutive", "unique_dim",
            "equal", "is_nonzero")
# Reads of tensors that stay on the CPU when training runs on a GPU: (file, function) of the innermost frame.
ON_THE_CPU = (("torch/optim/optimizer.py", "_get_value"),)  # the optimizers' step count (unless capturable)
CUDA_SYNC = "called a synchronizing CUDA operation"  # PyTorch's sync warning; not its "prototype feature" note


def caller(stack):
    """file:line (function) of the innermost frame outside torch and this file."""
    frames = [f for f in stack if "/torch/" not in f.filename and f.filename != __file__]
    return f"{frames[-1].filename}:{frames[-1].lineno} ({frames[-1].name})" if frames else "?"


def on_the_cpu(stack):
    inner = [f for f in stack if f.filename != __file__][-1]
    return any(inner.filename.endswith(path) and inner.name == name for path, name in ON_THE_CPU)


class _Ops(TorchDispatchMode):
    def __init__(self, record):
        super().__init__()
        self.record = record

    def __torch_dispatch__(self, func, types, args=(), kwargs=None):
        if func.__name__.split(".")[0] in SYNC_OPS:
            self.record(func.__name__)
        return func(*args, **(kwargs or {}))


class HostReads(pl.Callback):
    """Records every host read of a fit as (phase, what, where) in `reads`; `steps` counts the (Lightning) steps
    seen, `k` the optimizer steps in each (--steps-per-call)."""

    def __init__(self):
        self.reads, self.steps, self.phase, self.k = [], 0, ("setup", None), 1
        self._undo, self._inside, self._cuda = [], 0, None

    def setup(self, trainer, pl_module, stage):
        self.k = next((c.k for c in trainer.callbacks if isinstance(c, SeveralSteps)), 1)
        trainer.callbacks.remove(self)  # first among the callbacks, so a hook's phase is set before the others run
        trainer.callbacks.insert(0, self)

    def on_fit_start(self, trainer, pl_module):
        if trainer.strategy.root_device.type == "cuda":
            torch.cuda.synchronize()
            catcher = warnings.catch_warnings(record=True)
            self._cuda = (catcher, catcher.__enter__(), [0])
            warnings.simplefilter("always")  # every sync, not the first per line
            torch.cuda.set_sync_debug_mode("warn")
        else:
            for name in READS:
                self._patch(name)
            ops = _Ops(self._record)
            ops.__enter__()
            self._undo.append(lambda: ops.__exit__(None, None, None))

    def on_train_batch_start(self, trainer, pl_module, batch, batch_idx):
        self._enter(("step", trainer.global_step))
        self.steps += 1

    def on_validation_start(self, trainer, pl_module):
        if trainer.state.fn == "fit":
            self._enter(("eval", trainer.global_step))

    def on_train_end(self, trainer, pl_module):
        self._enter(("end", None))

    def teardown(self, trainer, pl_module, stage):
        self.stop()

    def on_exception(self, trainer, pl_module, exception):
        self.stop()  # the rest of the process must run unpatched, and out of sync debug mode

    def stop(self):
        self._enter(("end", None))
        if self._cuda:
            torch.cuda.set_sync_debug_mode(0)
            self._cuda[0].__exit__(None, None, None)
            self._cuda = None
        while self._undo:
            self._undo.pop()()

    def _enter(self, phase):
        if self._cuda:  # file the warnings since the last phase change under that phase
            caught, seen = self._cuda[1], self._cuda[2]
            self.reads += [(self.phase, str(w.message).splitlines()[0], f"{w.filename}:{w.lineno}")
                           for w in caught[seen[0]:] if CUDA_SYNC in str(w.message)]
            seen[0] = len(caught)
        self.phase = phase

    def _record(self, what):
        if self._inside:  # a read inside another (item -> _local_scalar_dense) counts once
            return
        stack = traceback.extract_stack()
        if not on_the_cpu(stack):
            self.reads.append((self.phase, what, caller(stack)))

    def _patch(self, name):
        original = getattr(torch.Tensor, name)

        def read(tensor, *args, **kwargs):
            self._record(name)
            self._inside += 1
            try:
                return original(tensor, *args, **kwargs)
            finally:
                self._inside -= 1
        own = name in vars(torch.Tensor)  # else inherited from torch._C.TensorBase: delete the patch to undo it
        setattr(torch.Tensor, name, read)
        self._undo.append(lambda: setattr(torch.Tensor, name, original) if own else delattr(torch.Tensor, name))

    def unexpected(self, log_every, max_steps, first=0):
        """The reads outside the phases where one is expected: setup, eval, end, log steps (those after which
        Lightning writes the logs and the bar redraws: step s with (s + 1) % log_every == 0), the last step,
        and steps before `first`. With --steps-per-call k a phase is a Lightning step: steps s to s + k - 1."""
        k = self.k

        def expected(phase):
            kind, s = phase
            return kind != "step" or s < first or (s + k) % log_every == 0 or s + k == max_steps
        return [r for r in self.reads if not expected(r[0])]


STEPS = 120  # at batch 16, 8 epochs of 15 batches; log steps every 10 (50 for fast), validations after steps 40, 80, 120
# (flags naming the model and its preset, small sizes where the model has them): the real classes each
MODELS = {
    "mlp": ["--model", "mlp", "--hidden", "8"],
    "layernorm_mlp": ["--preset", "norm-layer", "--hidden", "8"],
    "resnet": ["--model", "resnet", "--batch-size", "2"],  # the course net has no size flags: a small batch
    "fast_resnet": ["--preset", "fast"],
}


class Terminal(io.StringIO):
    """Stands in for stdout and says it is a terminal: train.py then draws the progress bar."""

    def isatty(self):
        return True


def fit(flags, cifar_dir, tmp_path, accelerator="cpu", terminal=True):
    """(HostReads of a STEPS-step fit with `flags` on the fixture data, the --log-every it ran at, stdout)."""
    reads = HostReads()
    argv = flags + ["--data-dir", cifar_dir, "--output-dir", str(tmp_path / "run"), "--accelerator", accelerator,
                    "--max-steps", str(STEPS), "--val-size", "50", "--eval-every", "40", "--eval-batch-size", "50"]
    argv += [] if "--batch-size" in flags else ["--batch-size", "16"]
    with contextlib.redirect_stdout(Terminal() if terminal else io.StringIO()) as out, \
            contextlib.redirect_stderr(io.StringIO()):
        train.main(argv, callbacks=[reads])
    assert reads.steps == STEPS // reads.k  # Lightning steps
    return reads, resolve(argv)[0]["log_every"], out.getvalue()


def show(reads):
    return "\n".join(f"{phase}: {what} at {where}" for phase, what, where in reads)
