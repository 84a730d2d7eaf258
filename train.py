"""Train one model on CIFAR-10 and write a run folder.

    python train.py --model mlp --data-dir data            # the course's MLP, course defaults
    python train.py --model mlp --preset seed-best         # a named set of flags from presets.py
    python train.py --resume runs/RUN                      # continue a run stopped by Ctrl-C, SIGTERM or SLURM

A config is layered: general defaults < the model's course defaults (models/__init__.py) < the preset
< the flags you type. The run folder gets config.yaml, metrics.csv, checkpoints/ and results.json.
"""
import argparse
import importlib.util
import json
import os
import signal
import sys
import time
import warnings

import yaml

from models import MODELS, init_params
from presets import PRESETS

# Defaults of everything that is not a model hyperparameter; a model's course defaults override them.
RUN_DEFAULTS = dict(
    model="mlp", preset=None, seed=42,
    data_dir="data", batch_size=128, eval_batch_size=1000, val_size=5000, augment=False, crop_padding=4,
    normalize="standard",
    max_steps=1000, eval_every=100, log_every=10,
    accelerator="auto", devices=1, num_nodes=1, precision="32-true", compile=False, checkpoint="auto",
    output_dir=None, run_name=None, logger="wandb" if importlib.util.find_spec("wandb") else "csv",
    wandb_project="cifar10-lab", wandb_entity=None, group=None, tags=[], log_model=False,
)
RUN_NAME_ENV = "CIFAR10_LAB_RUN_NAME"  # rank 0's default run name, for the other ranks of a local DDP run
DATA_KEYS = ("data_dir", "batch_size", "eval_batch_size", "val_size", "augment", "crop_padding", "normalize", "seed")


class UserError(Exception):
    """A bad setting found after parsing; main prints it as one line."""


class Parser(argparse.ArgumentParser):
    def error(self, message):  # one line, not the whole usage block
        self.exit(2, f"{self.prog}: error: {message} (see --help)\n")


def positive(kind, zero_ok=False):
    """An argparse type: a number > 0 (>= 0 with zero_ok)."""
    def parse(text):
        try:
            value = kind(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"expected a {kind.__name__}, got {text!r}") from None
        if value < 0 or value == 0 and not zero_ok:
            raise argparse.ArgumentTypeError(f"must be {'>=' if zero_ok else '>'} 0, got {text}")
        return value
    return parse


def sizes(text):
    """`64`, `64,128` or `[64, 128]` (a W&B sweep's ${args} form) -> a list of positive ints."""
    return [positive(int)(t) for t in text.strip("[]").replace(",", " ").split()]


class Sizes(argparse.Action):
    """--hidden 64 128, --hidden 64,128 and --hidden=[64, 128] all give [64, 128]; --hidden alone gives []."""

    def __call__(self, parser, namespace, values, option_string=None):
        setattr(namespace, self.dest, [n for v in values for n in v])


def build_parser():
    models = "\n".join(f"  {name:14s} {spec.help}" for name, spec in MODELS.items())
    presets = "\n".join(f"  {name:14s} {p['help']}" for name, p in PRESETS.items())
    p = Parser(prog="train.py", description="Train a CIFAR-10 classifier; writes a run folder.",
               epilog=f"models:\n{models}\n\npresets (explicit flags override them):\n{presets}",
               formatter_class=argparse.RawDescriptionHelpFormatter, argument_default=argparse.SUPPRESS)
    flag = lambda *a, **k: p.add_argument(*a, **k)  # noqa: E731
    bool_flag = lambda name, help: p.add_argument(name, action=argparse.BooleanOptionalAction, help=help)  # noqa
    flag("--model", choices=list(MODELS), help="which model (default: mlp)")
    flag("--preset", choices=list(PRESETS), help="a named set of flags from presets.py")
    # model
    flag("--hidden", type=sizes, nargs="*", action=Sizes, metavar="N",
         help="hidden layer sizes (64 128, 64,128 or [64,128]); none = softmax regression")
    flag("--activation", choices=["elu", "tanh", "relu"])
    bool_flag("--batchnorm", "batch norm after each hidden linear layer")
    flag("--dropout", type=float, help="dropout after each hidden activation")
    flag("--init", choices=["default", "kaiming", "course", "small-first"],
         help="weight init: course = N(0, 1e-4) everywhere, small-first = only in the first layer (mlp default)")
    flag("--arch", choices=["course", "fast"], help="resnet: the course's net (default) or the fast recipe's")
    bool_flag("--channels-last", "resnet: NHWC memory layout, faster convolutions on GPUs")
    flag("--tta", type=int, choices=[0, 1, 2], help="resnet: test-time augmentation, 1 = mirror, 2 = mirror + shifts")
    flag("--norm-impl", choices=["manual", "autograd", "torch"],
         help="layernorm_mlp: hand-written backward (default), autograd, or torch's nn.LayerNorm")
    # optimizer
    flag("--optimizer", choices=["sgd", "adam", "adamw"])
    flag("--lr", type=positive(float), help="learning rate")
    flag("--momentum", type=float)
    bool_flag("--nesterov", "Nesterov momentum (sgd)")
    flag("--weight-decay", type=float)
    flag("--schedule", choices=["constant", "cosine", "linear"], help="lr schedule after warm-up")
    flag("--warmup-steps", type=positive(int, zero_ok=True))
    flag("--label-smoothing", type=float)
    # data
    flag("--data-dir", help="folder holding cifar-10-batches-py/ or cifar-10-python.tar.gz (default: data)")
    flag("--batch-size", type=positive(int), help="training batch size per device")
    flag("--eval-batch-size", type=positive(int))
    flag("--val-size", type=positive(int, zero_ok=True), help="images held out of train for validation; 0 = none (default 5000)")
    bool_flag("--augment", "random crop (zero padding --crop-padding) and horizontal flip")
    flag("--crop-padding", type=positive(int, zero_ok=True), help="--augment's crop padding in pixels (default 4); 0 = flip only")
    flag("--normalize", choices=["standard", "center"], help="standard = per-channel z-score, center = mean only")
    # run
    flag("--max-steps", type=positive(int), help="optimizer steps")
    flag("--eval-every", type=positive(int), help="validate every N steps")
    flag("--log-every", type=positive(int), help="log train metrics every N steps (default 10)")
    flag("--seed", type=int)
    flag("--accelerator", help="auto, cpu, gpu (default auto)")
    flag("--devices", type=positive(int), help="devices per node (default 1)")
    flag("--num-nodes", type=positive(int))
    flag("--precision", help="32-true (default), bf16-mixed, 16-mixed")
    bool_flag("--compile", "torch.compile the model")
    flag("--checkpoint", choices=["auto", "end"],
         help="auto: best by val/acc (each epoch without validation) + last.ckpt; end: only last.ckpt, at the end")
    flag("--output-dir", help="run folder (default: runs/RUN_NAME)")
    flag("--run-name")
    flag("--resume", metavar="RUN_DIR", help="continue the run in RUN_DIR: its config.yaml, then the flags you type")
    flag("--logger", choices=["csv", "wandb", "none"],
         help="csv writes metrics.csv; wandb (default when installed) adds W&B, offline without credentials")
    flag("--wandb-project", help="W&B project (default cifar10-lab)")
    flag("--wandb-entity", help="W&B user or team (default: your default entity)")
    flag("--group", help="W&B group, e.g. a sweep's name")
    flag("--tags", nargs="*", help="W&B tags")
    bool_flag("--log-model", "upload checkpoints as W&B artifacts at the end of training")
    return p


def resolve_config(args, parser):
    """Layer the defaults, the preset and the explicit flags into one flat config dict."""
    given = vars(args)
    if "resume" in given:  # the saved, already resolved config is the base; flags typed now override it
        given = {**saved_config(given.pop("resume"), parser), **given}
    preset = PRESETS.get(given.get("preset"), {})
    model = given.get("model") or preset.get("model") or RUN_DEFAULTS["model"]
    if preset.get("model") not in (None, model):
        parser.error(f"preset {given['preset']} is for --model {preset['model']}, not {model}")
    cls = MODELS[model].load()
    hparams = init_params(cls)
    cfg = {**RUN_DEFAULTS, **hparams, **MODELS[model].defaults}
    cfg.update({k: v for k, v in preset.get("flags", {}).items() if k in cfg})  # drop what this model lacks
    for key in given:
        if key not in cfg:
            parser.error(f"--{key.replace('_', '-')} does not apply to --model {model}")
    cfg.update(given, model=model)
    cfg["run_name"] = cfg["run_name"] or default_run_name(cfg)
    cfg["output_dir"] = cfg["output_dir"] or os.path.join("runs", cfg["run_name"])
    return cfg, cls, {k: cfg[k] for k in hparams}


def saved_config(run_dir, parser):
    """The config.yaml of a run folder that holds a checkpoint to continue from."""
    from resume import latest_checkpoint

    path = os.path.join(run_dir, "config.yaml")
    if not os.path.exists(path):
        parser.error(f"--resume {run_dir}: no config.yaml there, so not a run folder")
    if latest_checkpoint(run_dir) is None:
        parser.error(f"--resume {run_dir}: no checkpoint to continue from (checkpoints/last.ckpt, hpc_ckpt_*.ckpt)")
    with open(path) as f:
        return {**yaml.safe_load(f), "output_dir": run_dir}


def default_run_name(cfg):
    job = os.environ.get("SLURM_JOB_ID")
    if job:  # stable across a requeue, so the job finds its own folder again
        task = os.environ.get("SLURM_ARRAY_TASK_ID")
        return f"{cfg['model']}-job{job}" + (f"_{task}" if task else "")
    if os.environ.get("LOCAL_RANK", "0") != "0" and RUN_NAME_ENV in os.environ:
        return os.environ[RUN_NAME_ENV]  # a rank Lightning started (--devices > 1): rank 0's folder, not a new time
    name = f"{cfg['model']}-{cfg['preset'] + '-' if cfg['preset'] else ''}s{cfg['seed']}-{time.strftime('%Y%m%d-%H%M%S')}"
    os.environ[RUN_NAME_ENV] = name  # the ranks Lightning starts inherit it
    return name


def build_trainer(cfg, run_dir, loggers):
    import pytorch_lightning as pl
    from pytorch_lightning.callbacks import LearningRateMonitor, ModelCheckpoint, Timer, TQDMProgressBar
    from pytorch_lightning.plugins.environments import SLURMEnvironment

    from callbacks import PlainLogLines
    from loggers import logger_callbacks
    from resume import Resumable

    has_val = cfg["val_size"] > 0
    interactive = sys.stdout.isatty()  # a terminal gets a progress bar, a log file gets plain lines
    end_only = cfg["checkpoint"] == "end"  # a short run: a save per epoch costs more than it could save
    callbacks = [ModelCheckpoint(dirpath=os.path.join(run_dir, "checkpoints"), filename="best-step{step}",
                                 monitor="val/acc" if has_val and not end_only else None, mode="max",
                                 save_top_k=0 if end_only else 1, every_n_epochs=0 if end_only else None,
                                 save_last=True, auto_insert_metric_name=False),
                 Timer()]  # fit and test seconds counted from after data loading, for results.json
    if loggers:
        callbacks.append(LearningRateMonitor("step"))
    callbacks += logger_callbacks(loggers)
    if interactive:  # redrawn every log_every steps: a redraw per step cost 5% of a CPU MLP run (bench/)
        callbacks.append(TQDMProgressBar(refresh_rate=cfg["log_every"]))
    else:
        callbacks.append(PlainLogLines())
    callbacks.append(Resumable(run_dir))
    # Under SLURM: SIGUSR1 (#SBATCH --signal=USR1@90) -> checkpoint and `scontrol requeue`; see resume.py.
    slurm = [SLURMEnvironment(auto_requeue=True, requeue_signal=signal.SIGUSR1)] if SLURMEnvironment.detect() else None
    return pl.Trainer(
        max_steps=cfg["max_steps"], max_epochs=-1,
        val_check_interval=cfg["eval_every"] if has_val else None, check_val_every_n_epoch=None if has_val else 1,
        limit_val_batches=None if has_val else 0, num_sanity_val_steps=0,
        accelerator=cfg["accelerator"], devices=cfg["devices"], num_nodes=cfg["num_nodes"],
        precision=cfg["precision"], logger=loggers or False, callbacks=callbacks,
        log_every_n_steps=cfg["log_every"], enable_progress_bar=interactive, enable_model_summary=interactive,
        default_root_dir=run_dir, deterministic=cfg["accelerator"] == "cpu" or None, plugins=slurm,
        benchmark=None if cfg["accelerator"] == "cpu" else True,  # cuDNN picks its fastest kernels per shape
    )


def run(cfg, cls, model_kwargs):
    import pytorch_lightning as pl
    import torch
    from lightning_fabric.utilities.exceptions import MisconfigurationException

    from pytorch_lightning.utilities import rank_zero_only

    from datamodules import CIFAR10DataModule
    from loggers import build_loggers, finish_loggers
    from resume import latest_checkpoint

    start = time.perf_counter()
    pl.seed_everything(cfg["seed"], workers=True, verbose=False)
    try:  # a setting these reject is the user's input: say so in one line
        data = CIFAR10DataModule(**{k: cfg[k] for k in DATA_KEYS})
    except ValueError as e:
        raise UserError(str(e)) from None
    if rank_zero_only.rank == 0:  # find or fetch the data before anything else starts; Lightning's own
        data.prepare_data()       # prepare_data call (local rank 0 of each node) then finds it there
    run_dir = cfg["output_dir"]
    os.makedirs(run_dir, exist_ok=True)
    if rank_zero_only.rank == 0:  # under DDP every rank runs this; one writes
        with open(os.path.join(run_dir, "config.yaml"), "w") as f:
            yaml.safe_dump(cfg, f, sort_keys=False)
    try:
        model = cls(**model_kwargs)
        trainer = build_trainer(cfg, run_dir, build_loggers(cfg, run_dir))
    except (ValueError, MisconfigurationException) as e:
        raise UserError(str(e).splitlines()[0]) from None
    params = model.num_params()
    for logger in trainer.loggers:
        logger.log_hyperparams({"params": params})
    if cfg["compile"]:
        model = torch.compile(model)
    ckpt = latest_checkpoint(run_dir)  # passed explicitly, so Lightning's own hpc_ckpt lookup cannot pick another
    if ckpt and rank_zero_only.rank == 0:
        print(f"resuming from {ckpt}", flush=True)
    trainer.fit(model, datamodule=data, ckpt_path=ckpt)
    train_seconds = time.perf_counter() - start
    # Test the checkpoint with the best val/acc (the final weights when there is no val split): choosing on
    # val is fair, and a late overfit then cannot hide what the run reached. results.json says which.
    tested = "best" if cfg["val_size"] > 0 and cfg["checkpoint"] != "end" else None
    test = trainer.test(model, datamodule=data, ckpt_path=tested, verbose=False)[0]
    best = trainer.checkpoint_callback.best_model_score
    timer = next(c for c in trainer.callbacks if isinstance(c, pl.callbacks.Timer))
    results = dict(model=cfg["model"], preset=cfg["preset"], seed=cfg["seed"],
                   test_acc=test["test/acc"], test_loss=test["test/loss"],
                   tested_checkpoint="best-val" if tested else "final",
                   best_val_acc=float(best) if best is not None else None, steps=trainer.global_step,
                   wall_seconds=round(time.perf_counter() - start, 2), train_seconds=round(train_seconds, 2),
                   # airbench's convention: data loading excluded, training and the final test included
                   fit_seconds=round(timer.time_elapsed("train"), 3), test_seconds=round(timer.time_elapsed("test"), 3),
                   params=params, run_dir=os.path.abspath(run_dir))
    if trainer.is_global_zero:
        with open(os.path.join(run_dir, "results.json"), "w") as f:
            json.dump(results, f, indent=2)
    finish_loggers(trainer.loggers, results)
    return results


def main(argv=None):
    parser = build_parser()
    cfg, cls, model_kwargs = resolve_config(parser.parse_args(argv), parser)
    from pytorch_lightning.utilities import rank_zero_only

    from datamodules import CIFAR10DataError

    warnings.filterwarnings("ignore", ".*does not have many workers.*")
    warnings.filterwarnings("ignore", ".*multiple `ModelCheckpoint` callbacks.*")  # resume.Resumable is the 2nd
    try:
        results = run(cfg, cls, model_kwargs)
    except (CIFAR10DataError, UserError) as e:  # bad data or bad settings: one line, no traceback
        sys.exit(f"error: {e}")
    if rank_zero_only.rank == 0:  # under DDP every rank gets here; one line per job
        print(f"test_acc {results['test_acc']:.4f}  test_loss {results['test_loss']:.4f}  run {results['run_dir']}")
    return results


if __name__ == "__main__":
    main()
