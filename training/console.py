"""What a run prints: one line saying what runs where, then progress, then the result.

Third-party chatter that is not the user's business is silenced where it comes from; real
warnings still show.
"""
import logging
import warnings

# Lightning's start-up notes (GPU/TPU/HPU available, the litmodels tip, the srun hint when not under
# SLURM) and a few third-party deprecations that users cannot act on.
QUIET_LOGGERS = ("pytorch_lightning.utilities.rank_zero", "lightning.pytorch.utilities.rank_zero",
                 "lightning_fabric.utilities.rank_zero", "pytorch_lightning.accelerators.cuda")
QUIET_WARNINGS = (
    ".*does not have many workers.*",           # our batches need no DataLoader workers
    ".*multiple `ModelCheckpoint` callbacks.*",  # resume.Resumable is the second, on purpose
    ".*The `srun` command is available.*",
    ".*exists and is not empty.*",               # a continued run folder: loggers.AppendingWriter keeps its file
    ".*litmodels.*",
    ".*LeafSpec.*is deprecated.*",                # Lightning's pytree helper on torch >= 2.10 (a FutureWarning)
)


def quiet():
    for name in QUIET_LOGGERS:
        logging.getLogger(name).setLevel(logging.WARNING)
    for pattern in QUIET_WARNINGS:
        warnings.filterwarnings("ignore", pattern)
    warnings.filterwarnings("ignore", category=DeprecationWarning)


def first_line(cfg, model, data, trainer, folder, smoke=False):
    sizes = " / ".join(f"{len(data.splits[s]):,} {s}" for s in ("train", "val", "test"))
    device = trainer.strategy.root_device.type + (f" x{trainer.world_size}" if trainer.world_size > 1 else "")
    where = "smoke test, nothing written" if smoke else f"run {folder.path}"
    k = cfg.get("steps_per_call", 1)
    per_call = f", {k} steps per Lightning step" if k > 1 else ""
    print(f"{cfg['model']}{' (' + cfg['preset'] + ')' if cfg['preset'] else ''} | {model.num_params():,} params | "
          f"data {sizes} | {device}, {cfg['precision']}{per_call} | {where}", flush=True)


def is_lead():
    """Rank zero: under DDP every rank runs train.py; one prints the result."""
    from pytorch_lightning.utilities import rank_zero_only

    return rank_zero_only.rank == 0
