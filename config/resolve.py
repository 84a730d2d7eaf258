"""A run's config: the settings layered and checked; the parser for them, made from the settings.

    the declared defaults (config.settings.Run, the data module's and the model's __init__)
        < the model's course defaults (configs/models.yaml) < the preset
        < --config files, in order (--resume: the run's config.yaml first) < the flags you type

A config file is a YAML mapping of setting names (dashes or underscores) to values; a run's own
config.yaml is one. A preset is a config file in configs/ whose first line is a `# help` comment;
unlike a --config file, its keys that a model lacks are dropped for that model. Every value, typed
or read from a file, goes through the same parsing and checks (config/parser.py).
"""
import argparse
import dataclasses
import glob
import os
import time
import typing

from runfolder import BadInput, RunFolder, read_yaml

from . import signatures
from .checks import (FILE, FOLDER, OUT_FOLDER, Parser, command_name, did_you_mean, invocation, one_line,
                     path_problems)
from .parser import Raising, flag_name, flag_of, number, unwrap
from .settings import Run
from .signatures import Setting
from .types import Length, Loop, Runtime

CONFIG_DIR = os.path.join(signatures.ROOT, "configs")
COURSE = os.path.join(CONFIG_DIR, "models.yaml")  # each model's course defaults; not a preset
RUN_NAME_ENV = "CIFAR10_LAB_RUN_NAME"  # rank 0's default run name, for the other ranks of a local DDP run
GROUP_ENV = "CIFAR10_LAB_SEED_GROUP"  # set in a seed group's runs (training/seeds.py): a file's `seeds:` is the group's
# Flags that steer this invocation and are not part of the config a run folder saves.
INVOCATION = ("config", "resume", "print_config", "smoke", "seeds", "per_device", "find_lr")


def run_settings():
    """name -> Setting of config.settings.Run, its help from the class docstring."""
    hints = typing.get_type_hints(Run, include_extras=True)
    helps = signatures.help_lines(Run.__doc__)
    out = {}
    for f in dataclasses.fields(Run):
        text, metavar = helps.get(f.name, ("", None))
        out[f.name] = Setting(f.name, hints[f.name], f.default_factory() if f.default is dataclasses.MISSING else f.default,
                              text, "Run", metavar)
    return out


def settings_of(model):
    """name -> Setting of everything a run of `model` may set: Run's, the data module's, the model's."""
    models = signatures.models()
    if model not in models:
        raise BadInput(f"--model {model!r} is none of {', '.join(models)}{did_you_mean(model, models)}")
    out = dict(run_settings())
    for name, s in {**signatures.data_settings(), **models[model].settings}.items():
        if name in out and out[name].owner != s.owner:
            raise BadInput(f"{s.owner}: setting {name!r} is already {out[name].owner}'s")
        out[name] = s
    return out


def all_settings():
    """name -> Setting over every model (the first model's, where several declare a name)."""
    out = {}
    for model in signatures.models():
        for name, s in settings_of(model).items():
            out.setdefault(name, s)
    return out


def runtime_keys():
    """Where and how a run runs (Runtime[...], Loop[...]): report.py never splits rows by these."""
    return frozenset(n for n, s in all_settings().items() if unwrap(s.type)[2] in (Runtime, Loop))


def continue_keys():
    """What may differ when a run folder is continued: Runtime[...] and Length[...] settings."""
    return frozenset(n for n, s in all_settings().items() if unwrap(s.type)[2] in (Runtime, Length))


def course_defaults():
    """model -> its course defaults, from configs/models.yaml (unchecked)."""
    raw = read_yaml(COURSE) or {}
    if not isinstance(raw, dict):
        raise BadInput(f"{COURSE}: expected a mapping of model: settings")
    return raw


def defaults(model):
    """Every setting of `model` at its default: the declared ones under the course's (configs/models.yaml)."""
    out = {name: s.default for name, s in settings_of(model).items()}
    out.update(check_mapping(course_defaults().get(model) or {}, f"{COURSE}: {model}", model))
    out["model"] = model
    return out


def presets():
    """Preset name -> (path, help line), from configs/*.yaml."""
    out = {}
    for path in sorted(glob.glob(os.path.join(CONFIG_DIR, "*.yaml"))):
        if path == COURSE:
            continue
        with open(path) as f:
            first = f.readline()
        out[os.path.splitext(os.path.basename(path))[0]] = (path, first.lstrip("# ").strip())
    return out


def front_parser(prog="train.py"):
    """The flags that say which model and which files, read before the model's own flags are known."""
    p = Parser(prog=prog, add_help=False, argument_default=None)
    p.add_argument("--model", choices=list(signatures.models()))
    p.add_argument("--preset", choices=list(presets()))
    p.add_argument("--config", action="append", metavar="FILE")
    p.add_argument("--resume", metavar="RUN_DIR")
    return p


def build_parser(model="mlp", cls=Parser, prog="train.py"):
    """train.py's parser for `model`: its flags, types, checks and help all made from the settings."""
    models = signatures.models()
    listed = "\n".join(f"  {name:14s} {m.help}" for name, m in models.items())
    named = "\n".join(f"  {name:14s} {text}" for name, (_, text) in presets().items())
    p = cls(prog=prog, description=f"Train a CIFAR-10 classifier; writes a run folder. Flags for --model {model}.",
            epilog=f"models ({invocation(prog, 'train.py')} --model NAME --help for its flags):\n{listed}\n\n"
                   f"presets (configs/*.yaml; --config files and typed flags override them):\n{named}",
            formatter_class=argparse.RawDescriptionHelpFormatter, argument_default=argparse.SUPPRESS)
    g = p.add_argument_group("what to run")
    g.add_argument("--model", choices=list(models), help=f"which model (default: {Run.model})")
    g.add_argument("--preset", choices=list(presets()), help="a config from configs/, under --config and flags")
    g.add_argument("--config", action="append", metavar="FILE",
                   help="a YAML file of setting: value (repeatable, later wins); a run's config.yaml is one")
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
    shown = _defaults_for_help(model)
    groups = {}
    for name, s in settings_of(model).items():
        if name in ("model", "preset"):
            continue
        title = _group_title(s, models[model])
        if title not in groups:
            groups[title] = p.add_argument_group(title)
        default = shown.get(name)
        groups[title].add_argument(flag_name(name), **flag_of(s, None if default is None else _show(default)))
    return p


def _defaults_for_help(model):
    try:
        return defaults(model)
    except BadInput:
        return {n: s.default for n, s in settings_of(model).items()}


def _show(value):
    if isinstance(value, bool):
        return "on" if value else "off"
    if isinstance(value, list):
        return " ".join(map(str, value)) or "none"
    return value


def _group_title(setting, model):
    if setting.owner == "Run":
        marker = unwrap(setting.type)[2]
        return {Runtime: "where and how it runs (may change when continuing a run)",
                Length: "length (may change when continuing a run)"}.get(marker, "the run")
    if setting.owner == signatures.DATA[1]:
        return f"data ({signatures.DATA[1]})"
    return f"model: {setting.owner} ({model.target.split(':')[0].replace('.', '/')}.py and the classes it extends)" \
        if setting.owner == model.target.split(":")[1] else f"model: {setting.owner}"


def check_mapping(raw, path, model=None):
    """{key: value} from a file at path -> the same, each value parsed and checked as its flag would be.
    BadInput names every bad key at once: unknown ones (with the nearest name), ones `model` lacks, bad
    values. With model None, a key passes when some model takes it and its value."""
    if raw is None:
        return {}
    if not isinstance(raw, dict):
        raise BadInput(f"{path}: expected a mapping of flag: value, found {type(raw).__name__}")
    every = all_settings()
    mine = settings_of(model) if model else every
    out, problems, foreign = {}, [], []
    for key, value in raw.items():
        name = str(key).replace("-", "_")
        if name not in every or name in INVOCATION:
            problems.append(f"unknown key {key!r}{did_you_mean(key, [*every, *mine])}")
            continue
        if name not in mine:
            foreign.append(flag_name(name))
            continue
        if value is None:  # unset: the layer below decides
            continue
        candidates = [mine[name]] if model else [settings_of(m)[name] for m in signatures.models()
                                                   if name in settings_of(m)]
        errors = []
        for s in candidates:
            try:
                out[name] = parse_value(s, value)
                break
            except BadInput as e:
                errors.append(str(e))
        else:
            problems.append(f"{key}: {errors[0]}")
    if foreign:
        problems.append(f"{', '.join(foreign)} {'does' if len(foreign) == 1 else 'do'} not apply to --model {model}")
    if problems:
        raise BadInput(one_line(path, problems))
    return out


def parse_value(setting, value):
    """A file's value for a setting, parsed and checked as the typed flag would be; BadInput if it fails."""
    p = Raising(prog="train.py", add_help=False)
    action = p.add_argument(flag_name(setting.name), **flag_of(setting))
    if isinstance(action, argparse.BooleanOptionalAction):
        if not isinstance(value, bool):
            raise BadInput(f"expected true or false, got {value!r}")
        words = [action.option_strings[0] if value else "--no-" + action.option_strings[0][2:]]
    elif isinstance(value, dict):
        raise BadInput("expected a single value, got a mapping")
    elif isinstance(value, list):
        words = [action.option_strings[0], *map(str, value)] if action.nargs == "*" else [action.option_strings[0], str(value)]
    else:
        words = [f"{action.option_strings[0]}={value}"]
    try:
        return getattr(p.parse_args(words), action.dest)
    except BadInput as e:
        raise BadInput(str(e).split(": ", 1)[-1]) from None


def read_file(path, model=None):
    """A config file -> {key: value}, every value checked."""
    return check_mapping(read_yaml(path), path, model)


def resolve(argv=None):
    """argv -> (cfg, invocation): the layered config, and the flags that steer this invocation only.

    Bad input exits with status 2 and one line; --help prints the chosen model's flags and exits."""
    front = front_parser(command_name("train.py", argv))
    known, _ = front.parse_known_args(argv)
    try:
        layers, model, preset_name, file_seeds = _files(known)
        parser = build_parser(model, prog=front.prog)
        typed, extra = parser.parse_known_args(argv)
        typed = vars(typed)
        if extra:
            _unknown(extra, model, parser)
        return _resolve(typed, layers, model, preset_name, file_seeds)
    except BadInput as e:
        front.exit(2, f"{front.prog}: error: {e}\n")


def _unknown(extra, model, parser):
    """Flags the model's parser did not take: another model's (one line naming them all), or unknown."""
    every = all_settings()
    names = [w[2:].split("=")[0].replace("-", "_") for w in extra if w.startswith("--")]
    foreign = [n for n in names if n in every or n.startswith("no_") and n[3:] in every]
    if foreign and len(foreign) == len(names):
        shown = [flag_name(n) for n in foreign]
        raise BadInput(f"{', '.join(shown)} {'does' if len(shown) == 1 else 'do'} not apply to --model {model}")
    words = " ".join(extra)
    first = next((w for w in extra if w.startswith("--")), "")
    options = [o for a in parser._actions for o in a.option_strings]
    parser.error(f"unrecognized arguments: {words}{did_you_mean(first.split('=')[0], options) if first else ''}")


def _files(known):
    """The layers from files (the resumed run's config.yaml, --config files), unchecked; the model; the preset;
    a seed group's seeds from a file (`seeds: 5` or `seeds: [1, 2, 3]`), or None."""
    problems = path_problems(("--resume", known.resume, FOLDER), *(("--config", path, FILE) for path in known.config or []))
    if problems:  # every file and folder the command line names, at once, before reading any
        raise BadInput(one_line(None, problems))
    layers, file_seeds = [], None  # (where, raw mapping)
    if known.resume:
        run = RunFolder(known.resume)
        layers.append((run.config_path, run.read_config()))
        if not run.resume_candidates():
            raise BadInput(f"--resume {run.path}: no checkpoint to continue from (checkpoints/last.ckpt, hpc_ckpt_*.ckpt)")
    problems = []
    for path in known.config or []:  # every bad file at once
        try:
            raw = read_yaml(path)
            if raw is not None and not isinstance(raw, dict):
                raise BadInput(f"{path}: expected a mapping of flag: value, found {type(raw).__name__}")
            raw = dict(raw or {})
            if "seeds" in raw:  # a seed group
                seeds = raw.pop("seeds")
                ok = isinstance(seeds, int) and seeds > 0 or isinstance(seeds, list) and seeds and all(
                    isinstance(x, int) and not isinstance(x, bool) for x in seeds)
                if not ok or isinstance(seeds, bool):
                    raise BadInput(f"{path}: seeds: expected a count (5) or a list of integers ([1, 2, 3]), got {seeds!r}")
                file_seeds = seeds
            layers.append((path, raw))
        except BadInput as e:
            problems.append(str(e))
    if problems:
        raise BadInput("; ".join(problems))
    given = {str(k).replace("-", "_"): v for _, layer in layers for k, v in layer.items()}
    preset_name = known.preset or given.get("preset")
    if preset_name is not None and preset_name not in presets():
        raise BadInput(f"preset {preset_name!r} is none of {', '.join(presets())}")
    preset_model = (read_yaml(presets()[preset_name][0]) or {}).get("model") if preset_name else None
    model = known.model or given.get("model") or preset_model or Run.model
    if model not in signatures.models():
        raise BadInput(f"model {model!r} is none of {', '.join(signatures.models())}{did_you_mean(model, signatures.models())}")
    if preset_model not in (None, model):
        raise BadInput(f"preset {preset_name} is for --model {preset_model}, not {model}")
    return layers, model, preset_name, file_seeds


def _resolve(typed, layers, model, preset_name, file_seeds=None):
    invocation = {k: typed.pop(k) for k in INVOCATION if k in typed}
    problems = path_problems(*paths_to_write(typed, invocation))
    if problems:
        raise BadInput(one_line(None, problems))
    if file_seeds is not None and "seeds" not in invocation and not os.environ.get(GROUP_ENV):
        invocation["seeds"] = file_seeds  # --seeds wins; a group's own run is one seed
    problems, checked = [], []
    for where, raw in layers:  # every bad key of every file, at once
        try:
            checked.append((where, check_mapping(raw, where, model)))
        except BadInput as e:
            problems.append(str(e))
    if problems:
        raise BadInput("; ".join(problems))
    if "resume" in invocation:
        typed.setdefault("output_dir", invocation["resume"])
    cfg = defaults(model)
    if preset_name:
        preset = read_file(presets()[preset_name][0])  # checked against every model: its keys a model lacks are dropped
        cfg.update({k: v for k, v in preset.items() if k in cfg})
    for _, layer in checked:
        cfg.update(layer)
    cfg.update(typed)
    cfg["model"], cfg["preset"] = model, preset_name
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


def data_kwargs(cfg):
    """The data module's init kwargs for a resolved config: the keys its signature takes."""
    return {k: cfg[k] for k in signatures.data_settings() if k in cfg}


def model_kwargs(cfg):
    """The model's init kwargs for a resolved config: the keys its settings take."""
    return {k: cfg[k] for k in signatures.models()[cfg["model"]].settings if k in cfg}


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
