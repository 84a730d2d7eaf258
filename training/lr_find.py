"""--find-lr: Lightning's learning-rate range test (Tuner.lr_find) on the run's config; trains nothing.

From the run's own model, data, batch size and optimizer, Lightning trains STEPS batches with the
learning rate rising exponentially from MIN_LR to MAX_LR (stopping early once the smoothed loss
passes 4x its best) and puts the weights back. The suggestion is the lr where the smoothed loss
falls fastest per decade of lr. It writes into the run folder (--output-dir, as training would):

    lr_find.png     smoothed training loss against the learning rate, the suggestion marked
    lr_find.json    {"suggestion", "min_lr", "max_lr", "steps", "lr": [...], "loss": [...]} (strict JSON)

and prints one line with the suggestion. It does not train with it: the steepest-descent point is a
heuristic worth checking on the plot, a scheduled run's best peak lr is often several times higher
(the curve's minimum is an upper bound), and a run trained with a typed `--lr` stays reproducible
from its config.yaml. The folder may then take that run (`--output-dir` the same, `--lr` chosen).

Two corrections to Lightning 2.6's numbers (both open upstream): the smoothed losses are debiased one
step too far, which halves the first point and puts a false rise at the start (unbias); and its
suggestion takes the slope per unit of lr, not per decade, which on an exponential sweep picks the
smallest lr where anything moves (suggest).
"""
import functools
import inspect
import logging
import math
import os
import sys
import tempfile

import pytorch_lightning as pl

import models
from config.resolve import model_kwargs
from runfolder import BadInput, RunFolder, strict_json
from runfolder.folder import LR_FIND_DATA, LR_FIND_PLOT

from . import console

STEPS = 100                 # batches, one learning rate each (Lightning's default)
MIN_LR, MAX_LR = 1e-6, 1.0  # below 1e-6 nothing moves in 100 steps; above 1 every model here diverges
SMOKE_STEPS = 15            # --smoke: a few steps, to check the command runs
SKIP_BEGIN, SKIP_END = 10, 1  # points the suggestion ignores at each end (Lightning's choice): the
                              # running mean is still settling at the start, the last point diverged


def find_lr(cfg, smoke=False):
    """Run the range test for cfg, write its plot and data into the run folder (not when smoking), print
    one line; return the suggested lr (None when the curve gives none)."""
    from .run import build_data

    console.quiet()
    folder = RunFolder(cfg["output_dir"])
    if folder.has_config():
        raise BadInput(f"--output-dir {folder.path} holds a run already: --find-lr writes into a new folder")
    pl.seed_everything(cfg["seed"], workers=True, verbose=False)
    data = build_data(dict(cfg, steps_per_call=1))  # a learning rate per batch: Lightning's steps are the test's
    cls, kwargs = models.load(cfg["model"]), model_kwargs(cfg)
    try:
        model = cls(**kwargs)
    except ValueError as e:
        raise BadInput(str(e).splitlines()[0]) from None
    with tempfile.TemporaryDirectory() as scratch:  # where Lightning keeps the weights it puts back
        lrs, losses = range_test(cfg, model, data, SMOKE_STEPS if smoke else STEPS, scratch)
    lr = suggest(lrs, losses)
    if smoke:
        where = "smoke test, nothing written"
    else:
        os.makedirs(folder.path, exist_ok=True)
        write(folder, lrs, losses, lr)
        where = f"plot {folder.file(LR_FIND_PLOT)}"
    said = f"suggested --lr {lr:.3g}" if lr is not None else "no suggestion (too few steps before the loss diverged)"
    how = f"steepest loss descent over {len(lrs)} steps, lr {MIN_LR:g} to {lrs[-1]:.3g}"
    print(f"lr_find: {said} ({how}); {where}", flush=True)
    return lr


def range_test(cfg, model, data, steps, scratch):
    """Lightning's range test: (the lrs tried, the smoothed training loss after each), unbiased."""
    from pytorch_lightning.tuner import Tuner, lr_finder

    # Our line says what Lightning's log lines would (no suggestion; the weights it put back)
    for name in ("pytorch_lightning.tuner.lr_finder", "pytorch_lightning.trainer.connectors.checkpoint_connector"):
        logging.getLogger(name).setLevel(logging.CRITICAL)
    trainer = pl.Trainer(
        accelerator=cfg["accelerator"], devices=1, precision=cfg["precision"], max_steps=steps, max_epochs=-1,
        gradient_clip_val=cfg["grad_clip"], accumulate_grad_batches=cfg["accumulate"], logger=False,
        enable_checkpointing=False, enable_progress_bar=False, enable_model_summary=False, num_sanity_val_steps=0,
        limit_val_batches=0, default_root_dir=scratch, deterministic=cfg["accelerator"] == "cpu" or None)
    bar = lr_finder.tqdm
    if not sys.stdout.isatty():  # the finder draws a progress bar of its own; a log file gets none
        lr_finder.tqdm = functools.partial(bar, disable=True)
    try:
        finder = Tuner(trainer).lr_find(model, datamodule=data, min_lr=MIN_LR, max_lr=MAX_LR, num_training=steps,
                                        update_attr=False)
    finally:
        lr_finder.tqdm = bar
    return [float(x) for x in finder.results["lr"]], unbias(finder.results["loss"])


def unbias(losses):
    """Lightning's smoothed losses, debiased as they should be (its issue #14167 and the like).

    Its running mean m_i (started at 0, beta = 0.98) is divided by 1 - beta^(i + 2) where 1 - beta^(i + 1)
    is due, the step being counted already: the first point is about half the loss and the curve
    rises over its first ~50 steps whatever the lr. Each point times (1 - beta^(i + 2)) / (1 - beta^(i + 1))
    is m_i / (1 - beta^(i + 1))."""
    from pytorch_lightning.tuner import lr_finder

    beta = inspect.signature(lr_finder._LRCallback).parameters["beta"].default  # the one lr_find uses
    return [float(loss) * (1 - beta ** (i + 2)) / (1 - beta ** (i + 1)) for i, loss in enumerate(losses)]


def suggest(lrs, losses):
    """The lr where the loss falls fastest per decade of lr (central differences in log10 lr), leaving out
    SKIP_BEGIN and SKIP_END points and any non-finite loss; None with fewer than 3 points left."""
    points = [(lr, math.log10(lr), loss) for lr, loss in list(zip(lrs, losses))[SKIP_BEGIN:len(lrs) - SKIP_END]
              if math.isfinite(loss)]
    if len(points) < 3:
        return None
    slopes = {points[i][0]: (points[i + 1][2] - points[i - 1][2]) / (points[i + 1][1] - points[i - 1][1])
              for i in range(1, len(points) - 1)}
    return min(slopes, key=slopes.get)


def write(folder, lrs, losses, lr):
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(6, 4))
    ax.plot(lrs, losses)
    ax.set_xscale("log")
    ax.set_xlabel("learning rate")
    ax.set_ylabel("training loss (smoothed)")
    if lr is not None:
        ax.plot([lr], [losses[lrs.index(lr)]], "o", color="red", markersize=8)
    ax.set_title(f"learning-rate range test: suggested lr {lr:.3g}" if lr is not None else "learning-rate range test")
    fig.savefig(folder.file(LR_FIND_PLOT), dpi=120, bbox_inches="tight")
    plt.close(fig)
    record = dict(suggestion=lr, min_lr=MIN_LR, max_lr=MAX_LR, steps=len(lrs), lr=lrs, loss=losses)
    with open(folder.file(LR_FIND_DATA), "w") as f:
        f.write(strict_json(record) + "\n")
