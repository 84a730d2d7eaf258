"""Timing train.py's own path: its config and data module, its fit (`fit_like_train_py`), and a clock over
steps [first, end of fit) that both a Lightning fit (StepClock) and a plain loop (Clock) can run.

bench.lightning_overhead and bench.fast_step time train.py against plain loops with these.
"""
import contextlib
import io
import logging
import time
import warnings

import pytorch_lightning as pl
import torch

from runfolder.folder import RunFolder
from training.callbacks import StopOnDivergence
import models
from config.resolve import model_kwargs, resolve
from training.loggers import build_loggers, finish_loggers
from training.run import build_data
from training.trainer import auto_steps_per_call, build_trainer


class Terminal(io.StringIO):
    """Stands in for stdout: says it is a terminal, so build_trainer turns the progress bar on."""

    def isatty(self):
        return True


@contextlib.contextmanager
def quiet(terminal=False):
    """Swallow what a run prints (log lines, Lightning's info, W&B) so the table stays readable.

    Stdout is never a terminal here, so what is timed is the log-file set-up (plain log lines, no
    progress bar), whatever the caller's stdout is; terminal=True times the terminal set-up instead.
    """
    level = logging.getLogger("pytorch_lightning").level
    logging.getLogger("pytorch_lightning").setLevel(logging.ERROR)
    try:
        with warnings.catch_warnings(), contextlib.redirect_stdout(Terminal() if terminal else io.StringIO()), \
                contextlib.redirect_stderr(io.StringIO()):  # W&B's own lines
            warnings.simplefilter("ignore")
            yield
    finally:
        logging.getLogger("pytorch_lightning").setLevel(level)


def config(flags, data_dir, run_dir="unused"):
    """(cfg, model class, its init kwargs) for train.py's flags."""
    cfg = resolve(flags + ["--data-dir", data_dir, "--output-dir", run_dir])[0]
    cls = models.load(cfg["model"])
    return dict(cfg, steps_per_call=auto_steps_per_call(cfg, cls)), cls, model_kwargs(cfg)


def data_module(cfg):
    """Set up once and shared, so neither side's time includes reading the files."""
    dm = build_data(cfg)
    if torch.cuda.is_available() and cfg["accelerator"] in ("auto", "gpu", "cuda"):
        dm.x, dm.y = dm.x.cuda(), dm.y.cuda()  # where the trainer would put them
    return dm


def fit_like_train_py(cfg, cls, kwargs, dm, run_dir, callbacks=()):
    """What training.run.train does up to the end of fit (seed, model, loggers, Trainer with the divergence
    guard and `callbacks`, torch.compile if asked, fit), on a data module already set up; no test."""
    import torch

    pl.seed_everything(cfg["seed"], workers=True, verbose=False)
    model = cls(**kwargs)
    folder = RunFolder(run_dir)
    trainer = build_trainer(cfg, folder, build_loggers(cfg, folder), callbacks=[StopOnDivergence(cfg), *callbacks])
    trainer.fit(torch.compile(model) if cfg["compile"] else model, datamodule=dm)
    finish_loggers(trainer.loggers, {})
    return trainer


class Clock:
    """Seconds from the start of step `first` to the end of the last step; CUDA work is waited for at both ends."""

    def __init__(self, first, device):
        self.first, self.cuda = first, device.type == "cuda"
        self.clock = time.perf_counter if self.cuda else time.process_time
        self.start = self.seconds = None

    def now(self):
        if self.cuda:
            torch.cuda.synchronize()
        return self.clock()

    def begin(self, step):
        if step == self.first:
            self.start = self.now()

    def end(self):
        self.seconds = self.now() - self.start


class StepClock(pl.Callback):
    def __init__(self, clock):
        self.c = clock

    def on_train_batch_start(self, trainer, pl_module, batch, batch_idx):
        self.c.begin(trainer.global_step)

    def on_train_end(self, trainer, pl_module):
        self.c.end()
