"""A run's config: the defaults, the flags, config files and presets, layered and validated in one place.

    defaults (RUN_DEFAULTS) < the model's course defaults (models/__init__.py) < the preset
        < --config files, in order < the flags you type

A config file is a YAML mapping of flag names (dashes or underscores) to values; a run's own
config.yaml is one. A preset is a config file in configs/ whose first line is a `# help` comment;
unlike a --config file, its keys that a model lacks are dropped for that model. Every value, typed
or read from a file, goes through the same argparse types and choices.
"""
import argparse
import glob
import importlib.util
import math
import os
import time

from datamodules.augment import FLIPS, PADS
from datamodules.cifar10 import NORMALIZE
from datamodules.policies import POLICIES
from models import MODELS, init_params
from models.base import OPTIMIZERS, SCHEDULES
from models.conv import TTA_LEVELS
from models.fast_resnet import NET_DTYPES
from models.layernorm import NORMS
from models.mlp import ACTIVATIONS, INITS

from runfolder import BadInput, RunFolder, read_yaml

from .checks import FILE, FOLDER, OUT_FOLDER, Parser, did_you_mean, one_line, path_problems
from .early_stopping import MODES as EARLY_STOP_MODES

CONFIG_DIR = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "configs")

# Defaults of everything that is not a model hyperparameter; a model's course defaults override them.
RUN_DEFAULTS = dict(
    model="mlp", preset=None, seed=42,
    data_dir="data", batch_size=128, eval_batch_size=1000, val_size=5000, augment=False, crop_padding=4,
    crop_pad="zeros", flips="random",
    policy="none", erase=0.0, cutout=0, mixup=0.0, cutmix=0.0,  # off: datamodules/policies.py
    normalize="standard",
    max_steps=1000, eval_every=100, log_every=10,
    grad_clip=None, accumulate=1,  # off: the course trains without either
    ema=None,  # off: the course trains without weight averaging (training/averaging.py)
    early_stop=None, early_stop_on="val/acc",  # off: a run trains its --max-steps (training/early_stopping.py)
    profile=None,  # off: a profiler costs time (simple: ~1%, advanced and pytorch: much more)
    accelerator="auto", devices=1, num_nodes=1, precision="32-true", compile=False, checkpoint="auto",
    matmul_precision="high",  # float32 matmuls on GPU tensor cores as TF32: ~10 bits of mantissa, several x faster
    output_dir=None, run_name=None, logger="wandb" if importlib.util.find_spec("wandb") else "csv",
    wandb_project="cifar10-lab", wandb_entity=None, group=None, tags=[], log_model=False,
)
RUN_NAME_ENV = "CIFAR10_LAB_RUN_NAME"  # rank 0's default run name, for the other ranks of a local DDP run
GROUP_ENV = "CIFAR10_LAB_SEED_GROUP"  # set in a seed group's runs (training/seeds.py): a file's `seeds:` is the group's
PROFILERS = ("simple", "advanced", "pytorch")  # Lightning's profilers, by its names for them
PRECISIONS = ("32-true", "32", "16-mixed", "bf16-mixed", "bf16-true", "16-true", "64-true", "64")

# Argument groups. RUNTIME: where and how a run runs, never what it learns: report.py does not split rows
# by them, and a run folder may be continued with them changed. LENGTH: may change on a continue too.
RUNTIME = "where and how it runs (may change when continuing a run)"
LENGTH = "length and evaluation"
# Flags that steer this invocation and are not part of the config a run folder saves.
INVOCATION = ("config", "resume", "print_config", "smoke", "seeds", "per_device", "find_lr")


class _Raise(argparse.ArgumentParser):
    """The same flags, raising instead of exiting: for checking a config file's values one key at a time."""

    def error(self, message):
        raise BadInput(message)


def number(kind, low=None, low_ok=False, high=None):
    """An argparse type: a finite number of `kind`, > low (>= low with low_ok), <= high."""
    def parse(text):
        try:
            value = kind(text)
        except (TypeError, ValueError):
            raise argparse.ArgumentTypeError(f"expected a {kind.__name__}, got {text!r}") from None
        if not math.isfinite(value):
            raise argparse.ArgumentTypeError(f"must be a finite number, got {text}")
        if low is not None and (value < low or value == low and not low_ok):
            raise argparse.ArgumentTypeError(f"must be {'>=' if low_ok else '>'} {low}, got {text}")
        if high is not None and value > high:
            raise argparse.ArgumentTypeError(f"must be <= {high}, got {text}")
        return value
    return parse


def sizes(text):
    """`64`, `64,128` or `[64, 128]` (a W&B sweep's ${args} form) -> a list of positive ints."""
    return [number(int, 0)(t) for t in text.strip("[]").replace(",", " ").split()]


class Sizes(argparse.Action):
    """--hidden 64 128, --hidden 64,128 and --hidden=[64, 128] all give [64, 128]; --hidden alone gives []."""

    def __call__(self, parser, namespace, values, option_string=None):
        setattr(namespace, self.dest, [n for v in values for n in v])


def presets():
    """Preset name -> (path, help line), from configs/*.yaml."""
    out = {}
    for path in sorted(glob.glob(os.path.join(CONFIG_DIR, "*.yaml"))):
        with open(path) as f:
            first = f.readline()
        out[os.path.splitext(os.path.basename(path))[0]] = (path, first.lstrip("# ").strip())
    return out


def build_parser(cls=Parser):
    models = "\n".join(f"  {name:14s} {spec.help}" for name, spec in MODELS.items())
    named = "\n".join(f"  {name:14s} {text}" for name, (_, text) in presets().items())
    p = cls(prog="train.py", description="Train a CIFAR-10 classifier; writes a run folder.",
            epilog=f"models:\n{models}\n\npresets (configs/*.yaml; --config files and typed flags override them):\n"
                   f"{named}", formatter_class=argparse.RawDescriptionHelpFormatter,
            argument_default=argparse.SUPPRESS)
    g = p.add_argument_group("what to run")
    g.add_argument("--model", choices=list(MODELS), help="which model (default: mlp)")
    g.add_argument("--preset", choices=list(presets()), help="a config from configs/, under --config and flags")
    g.add_argument("--config", action="append", metavar="FILE",
                   help="a YAML file of flag: value (repeatable, later wins); a run's config.yaml is one")
    g.add_argument("--resume", metavar="RUN_DIR", help="continue the run in RUN_DIR: its config.yaml, then your flags")
    g.add_argument("--print-config", action="store_true", help="print the resolved config as YAML and exit")
    g.add_argument("--smoke", action="store_true",
                   help="a few steps, one val and one test batch, nothing written: checks a config in seconds")
    g.add_argument("--seeds", type=number(int, 0), metavar="N",
                   help="train N seeds from --seed on, each in OUTPUT_DIR/s<seed>, then pool them (training/seeds.py)")
    g.add_argument("--per-device", type=number(int, 0), metavar="K",
                   help="with --seeds: K runs at once on each device, splitting its memory or cores (default 1)")
    g.add_argument("--find-lr", action="store_true",
                   help="Lightning's learning-rate range test: writes lr_find.png into the run folder, "
                        "prints the suggested --lr, trains nothing")
    on_off = lambda g, name, help: g.add_argument(name, action=argparse.BooleanOptionalAction, help=help)  # noqa
    g = p.add_argument_group("model")
    g.add_argument("--hidden", type=sizes, nargs="*", action=Sizes, metavar="N",
                   help="hidden layer sizes (64 128, 64,128 or [64,128]); none = softmax regression")
    g.add_argument("--activation", choices=list(ACTIVATIONS))
    on_off(g, "--batchnorm", "batch norm after each hidden linear layer")
    g.add_argument("--dropout", type=number(float, 0, low_ok=True, high=1), help="dropout after each hidden activation")
    g.add_argument("--init", choices=list(INITS),
                   help="weight init: course = N(0, 1e-4) everywhere, small-first = only in the first layer (mlp default)")
    on_off(g, "--channels-last", "conv nets: NHWC memory layout, faster convolutions on GPUs")
    g.add_argument("--net-dtype", choices=NET_DTYPES,
                   help="fast_resnet: weights' dtype, BatchNorm in float32; auto = float16 on a GPU, float32 on a CPU")
    g.add_argument("--tta", type=int, choices=TTA_LEVELS, help="conv nets: test-time augmentation, 1 = mirror, 2 = mirror + shifts")
    g.add_argument("--norm-impl", choices=list(NORMS),
                   help="layernorm_mlp: hand-written backward (default), autograd, or torch's nn.LayerNorm")
    g = p.add_argument_group("optimizer")
    g.add_argument("--optimizer", choices=list(OPTIMIZERS))
    g.add_argument("--lr", type=number(float, 0), help="learning rate")
    g.add_argument("--momentum", type=number(float, 0, low_ok=True))
    on_off(g, "--nesterov", "Nesterov momentum (sgd)")
    g.add_argument("--weight-decay", type=number(float, 0, low_ok=True))
    g.add_argument("--schedule", choices=list(SCHEDULES), help="lr schedule after warm-up")
    g.add_argument("--warmup-steps", type=number(int, 0, low_ok=True))
    g.add_argument("--label-smoothing", type=number(float, 0, low_ok=True, high=1))
    g.add_argument("--grad-clip", type=number(float, 0), help="clip the gradient norm to this (default: off)")
    g.add_argument("--accumulate", type=number(int, 0), help="optimizer step every N batches (default 1)")
    g.add_argument("--ema", type=number(float, 0, high=1), metavar="DECAY",
                   help="keep an exponential moving average of the weights (e.g. 0.999); validation, test "
                        "and evaluate/predict/export use it (default: off)")
    g = p.add_argument_group("data")
    g.add_argument("--batch-size", type=number(int, 0), help="training batch size per device")
    g.add_argument("--val-size", type=number(int, 0, low_ok=True),
                   help="images held out of train for validation; 0 = none (default 5000)")
    on_off(g, "--augment", "random crop (zero padding --crop-padding) and horizontal flip")
    g.add_argument("--crop-padding", type=number(int, 0, low_ok=True),
                   help="--augment's crop padding in pixels (default 4); 0 = flip only")
    g.add_argument("--policy", choices=list(POLICIES),
                   help="per-image augmentation policy after crop/flip: AutoAugment's CIFAR-10 policy, RandAugment, TrivialAugmentWide")
    g.add_argument("--erase", type=number(float, 0, low_ok=True, high=1),
                   help="random erasing: erase a random box of each image with this probability (default 0)")
    g.add_argument("--cutout", type=number(int, 0, low_ok=True), metavar="PX",
                   help="Cutout: blank a PX x PX square of every image (16 is the paper's for CIFAR-10; default 0 = off)")
    g.add_argument("--mixup", type=number(float, 0, low_ok=True), metavar="ALPHA",
                   help="MixUp with lambda ~ Beta(ALPHA, ALPHA) (0.2 is common; default 0 = off); soft labels")
    g.add_argument("--cutmix", type=number(float, 0, low_ok=True), metavar="ALPHA",
                   help="CutMix with lambda ~ Beta(ALPHA, ALPHA) (1.0 is common; default 0 = off); with --mixup: one of the two per batch")
    g.add_argument("--crop-pad", choices=PADS, help="--augment's crop fills shifted-in pixels with zeros (default) or a reflection")
    g.add_argument("--flips", choices=FLIPS,
                   help="--augment's flips: random per image per epoch (default), or alternate (airbench94's: each image the other way each epoch)")
    g.add_argument("--normalize", choices=list(NORMALIZE),
                   help="standard = per-channel z-score, center = mean only")
    g.add_argument("--seed", type=int)
    g.add_argument("--precision", choices=PRECISIONS, help="32-true (default), bf16-mixed, 16-mixed, ...")
    g.add_argument("--checkpoint", choices=["auto", "end"],
                   help="auto: best by val/acc (each epoch without validation) + last.ckpt; end: only last.ckpt, at the end")
    g = p.add_argument_group(LENGTH)
    g.add_argument("--max-steps", type=number(int, 0), help="optimizer steps")
    g.add_argument("--early-stop", type=number(int, 0), metavar="N",
                   help="stop when --early-stop-on has not improved for N evaluations in a row (default: off)")
    g.add_argument("--early-stop-on", choices=list(EARLY_STOP_MODES), help="the validation metric (default val/acc)")
    g = p.add_argument_group(RUNTIME)
    g.add_argument("--data-dir", help="folder holding cifar-10-batches-py/ or cifar-10-python.tar.gz (default: data)")
    g.add_argument("--eval-every", type=number(int, 0), help="validate every N steps")
    g.add_argument("--log-every", type=number(int, 0), help="log train metrics every N steps (default 10)")
    g.add_argument("--eval-batch-size", type=number(int, 0))
    g.add_argument("--accelerator", help="auto, cpu, gpu (default auto)")
    g.add_argument("--devices", type=number(int, 0), help="devices per node (default 1)")
    g.add_argument("--num-nodes", type=number(int, 0))
    on_off(g, "--compile", "torch.compile the model")
    g.add_argument("--matmul-precision", choices=["highest", "high", "medium"],
                   help="float32 matmuls on a GPU: high (default) allows TF32, highest is exact fp32")
    g.add_argument("--profile", choices=PROFILERS,
                   help="Lightning's profiler; its report goes into the run folder (default: off)")
    g.add_argument("--output-dir", help="run folder (default: runs/RUN_NAME)")
    g.add_argument("--run-name")
    g.add_argument("--logger", choices=["csv", "wandb", "none"],
                   help="csv writes metrics.csv; wandb (default when installed) adds W&B, offline without credentials")
    g.add_argument("--wandb-project", help="W&B project (default cifar10-lab)")
    g.add_argument("--wandb-entity", help="W&B user or team (default: your default entity)")
    g.add_argument("--group", help="W&B group, e.g. a sweep's name")
    g.add_argument("--tags", nargs="*", help="W&B tags")
    on_off(g, "--log-model", "upload checkpoints as W&B artifacts at the end of training")
    return p


def _group_keys(title):
    parser = build_parser()
    group = next(g for g in parser._action_groups if g.title == title)
    return frozenset(a.dest for a in group._group_actions)


RUNTIME_KEYS = _group_keys(RUNTIME)        # where and how it ran: report.py never splits rows by these
CONTINUE_KEYS = RUNTIME_KEYS | _group_keys(LENGTH)  # what may differ when a run folder is continued


def read_file(path, parser=None):
    """A config file -> {key: value}, every value checked by the flag's own type and choices."""
    return check_mapping(read_yaml(path, BadInput), path, parser)


def check_mapping(raw, path, parser=None):
    """{key: value} from a file at path -> the same, every value checked as the flag would be.
    BadInput names every bad key at once, with the nearest flag for a misspelled one."""
    if raw is None:
        return {}
    if not isinstance(raw, dict):
        raise BadInput(f"{path}: expected a mapping of flag: value, found {type(raw).__name__}")
    parser = parser or build_parser(_Raise)
    options = {a.dest: a for a in parser._actions if a.dest not in INVOCATION and a.dest != "help"}
    out, problems = {}, []
    for key, value in raw.items():
        dest = str(key).replace("-", "_")
        if dest not in options:
            problems.append(f"unknown key {key!r}{did_you_mean(key, options)}")
            continue
        if value is None:  # unset: the layer below decides
            continue
        try:
            parsed = vars(parser.parse_args(as_flags(options[dest], value)))
        except BadInput as e:
            problems.append(f"{key}: {str(e).split(': ', 1)[-1]}")
            continue
        out[dest] = parsed[dest]
    if problems:
        raise BadInput(one_line(path, problems))
    return out


def as_flags(action, value):
    """A file's value -> the command-line words that give it, so the flag's own parsing checks it."""
    flag = action.option_strings[0]
    if isinstance(action, argparse.BooleanOptionalAction):
        if not isinstance(value, bool):
            raise BadInput(f"expected true or false, got {value!r}")
        return [flag if value else "--no-" + flag[2:]]
    if isinstance(value, list):
        return [flag, *map(str, value)] if action.nargs == "*" else [flag, str(value)]
    if isinstance(value, dict):
        raise BadInput("expected a single value, got a mapping")
    return [f"{flag}={value}"]


def resolve(argv=None, parser=None):
    """argv -> (cfg, invocation): the layered config, and the flags that steer this invocation only.

    Bad input exits with status 2 and one line."""
    parser = parser or build_parser()
    typed = vars(parser.parse_args(argv))
    try:
        return _resolve(typed)
    except BadInput as e:
        parser.exit(2, f"{parser.prog}: error: {e}\n")


def _resolve(typed):
    invocation = {k: typed.pop(k) for k in INVOCATION if k in typed}
    problems = path_problems(("--resume", invocation.get("resume"), FOLDER),
                             *(("--config", path, FILE) for path in invocation.get("config", [])),
                             *paths_to_write(typed, invocation))
    if problems:  # every file and folder the command line names, at once, before reading any
        raise BadInput(one_line(None, problems))
    layers = []  # (where it came from, {key: value}), lowest first, above the preset
    if "resume" in invocation:
        run = RunFolder(invocation["resume"])
        layers.append((run.config_path, check_mapping(run.read_config(), run.config_path)))
        if not run.resume_candidates():
            raise BadInput(f"--resume {run.path}: no checkpoint to continue from (checkpoints/last.ckpt, hpc_ckpt_*.ckpt)")
        typed.setdefault("output_dir", invocation["resume"])
    problems = []
    for path in invocation.get("config", []):  # every bad key of every file, at once
        try:
            raw = read_yaml(path, BadInput)
            if isinstance(raw, dict) and "seeds" in raw:  # `seeds: 5` or `seeds: [1, 2, 3]`: a seed group
                seeds = raw.pop("seeds")
                ok = isinstance(seeds, int) and seeds > 0 or isinstance(seeds, list) and seeds and all(
                    isinstance(x, int) and not isinstance(x, bool) for x in seeds)
                if not ok or isinstance(seeds, bool):
                    raise BadInput(f"{path}: seeds: expected a count (5) or a list of integers ([1, 2, 3]), got {seeds!r}")
                if "seeds" not in invocation and not os.environ.get(GROUP_ENV):  # --seeds wins; a group's run is one seed
                    invocation["seeds"] = seeds
            layers.append((path, check_mapping(raw, path)))
        except BadInput as e:
            problems.append(str(e))
    if problems:
        raise BadInput("; ".join(problems))
    layers.append(("the command line", typed))
    given = {k: v for _, layer in layers for k, v in layer.items()}
    preset_name = given.get("preset")
    preset = read_file(presets()[preset_name][0]) if preset_name else {}
    model = given.get("model") or preset.get("model") or RUN_DEFAULTS["model"]
    if preset.get("model") not in (None, model):
        raise BadInput(f"preset {preset_name} is for --model {preset['model']}, not {model}")
    hparams = model_params(model)
    cfg = {**RUN_DEFAULTS, **hparams, **MODELS[model].defaults}
    cfg.update({k: v for k, v in preset.items() if k in cfg})  # a preset's keys this model lacks are dropped
    for where, layer in layers:
        foreign = [f"--{key.replace('_', '-')}" for key in layer if key not in cfg]
        if foreign:
            what = f"{', '.join(foreign)} {'does' if len(foreign) == 1 else 'do'} not apply to --model {model}"
            raise BadInput(what if where == "the command line" else f"{where}: {what}")
        cfg.update(layer)
    cfg["model"] = model
    if "per_device" in invocation and "seeds" not in invocation:
        raise BadInput("--per-device applies to a seed group: add --seeds N")
    if "seeds" in invocation and "resume" in invocation:
        raise BadInput("--resume continues one run: to continue a seed group, rerun its --seeds command")
    cfg["run_name"] = cfg["run_name"] or default_run_name(cfg, group="seeds" in invocation)
    cfg["output_dir"] = cfg["output_dir"] or os.path.join("runs", cfg["run_name"])
    problems = path_problems(*paths_to_write(cfg, invocation))  # the folders the files named, and the default
    if problems:
        raise BadInput(one_line(None, problems))
    return cfg, invocation


def paths_to_write(settings, invocation):
    """path_problems specs of the folders a run writes: the data folder (a download lands there) and the
    run folder; none for --print-config, no run folder for --smoke."""
    if invocation.get("print_config"):
        return []
    return [("--data-dir", settings.get("data_dir"), OUT_FOLDER)] + (
        [] if invocation.get("smoke") else [("--output-dir", settings.get("output_dir"), OUT_FOLDER)])


def model_params(model):
    """The model's settable hyperparameters and their defaults: its init keywords that are flags."""
    flags = {a.dest for a in build_parser()._actions}
    return {k: v for k, v in init_params(MODELS[model].load()).items() if k in flags}


def model_kwargs(cfg):
    """The model class and its init kwargs for a resolved config."""
    cls = MODELS[cfg["model"]].load()
    return cls, {k: cfg[k] for k in init_params(cls) if k in cfg}


def data_kwargs(cfg):
    """CIFAR10DataModule's init kwargs for a resolved config: the keys its signature takes."""
    from datamodules import CIFAR10DataModule

    return {k: cfg[k] for k in init_params(CIFAR10DataModule) if k in cfg}


def default_run_name(cfg, group=False):
    job = os.environ.get("SLURM_JOB_ID")
    if job:  # stable across a requeue, so the job finds its own folder again
        task = os.environ.get("SLURM_ARRAY_TASK_ID")
        return f"{cfg['model']}-job{job}" + (f"_{task}" if task else "")
    if os.environ.get("LOCAL_RANK", "0") != "0" and RUN_NAME_ENV in os.environ:
        return os.environ[RUN_NAME_ENV]  # a rank Lightning started (--devices > 1): rank 0's folder, not a new time
    seed = f"seeds{cfg['seed']}" if group else f"s{cfg['seed']}"  # a group's folder holds s<seed>/ per seed
    name = f"{cfg['model']}-{cfg['preset'] + '-' if cfg['preset'] else ''}{seed}-{time.strftime('%Y%m%d-%H%M%S')}"
    os.environ[RUN_NAME_ENV] = name  # the ranks Lightning starts inherit it
    return name
