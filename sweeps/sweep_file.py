"""A W&B sweep file, read and checked: the one reader of the sweep syntax, for run_local.py and search.py.

    name: mlp_search                      # default: the file's name
    program: train.py
    method: bayes                         # grid | random | bayes (search.py: Optuna's TPE)
    metric: {name: val/acc, goal: maximize}
    parameters:
      optimizer: {value: adamw}                                        # fixed
      hidden: {values: [[512], [1024, 1024]]}                          # one of these
      lr: {distribution: log_uniform_values, min: 3.0e-4, max: 1.0e-2}
      dropout: {min: 0.0, max: 0.5}                                    # no distribution: uniform, as W&B infers
      batch-size: {distribution: q_log_uniform_values, min: 64, max: 512, q: 64}
    early_terminate: {type: hyperband, min_iter: 2, eta: 3}            # iter: one validation (--eval-every)
    command: ["${env}", "${interpreter}", "${program}", "${args_no_boolean_flags}"]

`wandb sweep` reads the same files. Everything here is checked before anything runs: a parameter
must be a train.py flag, every value it can take must pass that flag's own type and choices
(config/), ranges need min < max; BadInput carries the one line to print.
"""
import itertools
import math
import os
import sys
from dataclasses import dataclass

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
if ROOT not in sys.path:  # run as `python sweeps/x.py`: the repository's packages are importable
    sys.path.insert(0, ROOT)

from runfolder import BadInput, read_yaml  # noqa: E402  (stdlib and yaml only: no torch)
from config.checks import FILE, did_you_mean, one_line, require  # noqa: E402  (stdlib and runfolder only)

METHODS = ("grid", "random", "bayes")
# W&B distributions this reader maps onto a bounded range (search.py: onto Optuna's distributions).
# The unbounded ones (normal, log_normal, ...) have no Optuna range to sample from.
DISTRIBUTIONS = ("categorical", "constant", "uniform", "int_uniform", "q_uniform", "log_uniform",
                 "log_uniform_values", "q_log_uniform_values")
TOP_KEYS = {"name", "description", "program", "method", "metric", "parameters", "early_terminate", "command",
            "project", "entity", "run_cap", "controller", "job", "image_uri"}  # what a W&B sweep config may hold
PARAM_KEYS = {"value", "values", "distribution", "min", "max", "q"}
HYPERBAND_KEYS = {"type", "min_iter", "max_iter", "s", "eta"}
RUNNER_FLAGS = {"output_dir", "run_name", "group"}  # set per run by the runners; a sweep must not
DEFAULT_METRIC = {"name": "val/acc", "goal": "maximize"}
DEFAULT_COMMAND = ["${env}", "${interpreter}", "${program}", "${args}"]  # wandb's default


@dataclass(frozen=True)
class Param:
    """One searched or fixed parameter: its flag name (as the file spells it) and what it may take."""
    name: str
    values: tuple = None      # value / values: the choices, in file order
    distribution: str = None  # a range: one of DISTRIBUTIONS other than categorical/constant
    low: float = None         # the range's ends in the flag's units (log_uniform: already exp(min), exp(max))
    high: float = None
    q: float = None           # q_*: values are multiples of q

    @property
    def is_int(self):
        return self.distribution == "int_uniform" or (
            self.distribution in ("q_uniform", "q_log_uniform_values")
            and all(float(v).is_integer() for v in (self.low, self.high, self.q)))

    @property
    def log(self):
        return self.distribution in ("log_uniform", "log_uniform_values", "q_log_uniform_values")

    def value(self, x):
        """A sampled number -> the value the run gets: rounded to a multiple of q as W&B does, int when integral."""
        if self.q:
            x = round(x / self.q) * self.q
        return int(round(x)) if self.is_int else float(x)


def load(path, check=True):
    """The sweep file as a dict, with `name` and `metric` filled in; BadInput naming everything wrong
    with it at once, in one line. check: also check every parameter against train.py's flags
    (config/: no torch)."""
    require(("SWEEP", path, FILE))
    sweep = read_yaml(path, BadInput)
    if not isinstance(sweep, dict) or "parameters" not in sweep or "program" not in sweep:
        raise BadInput(f"{path}: not a sweep file (needs program and parameters)")
    problems = [f"unknown key {k!r}{did_you_mean(k, TOP_KEYS) or ' (a W&B sweep has ' + ', '.join(sorted(TOP_KEYS)) + ')'}"
                for k in sorted(set(sweep) - TOP_KEYS, key=str)]
    for key in ("name", "program", "description", "project", "entity"):
        if key in sweep and not isinstance(sweep[key], str):
            problems.append(f"{key} must be a string, got {sweep[key]!r}")
    if sweep.get("method") not in METHODS:
        problems.append(f"method is {sweep.get('method')!r}; use one of {', '.join(METHODS)}")
    metric = sweep.get("metric") or {}
    if not isinstance(metric, dict):
        problems.append(f"metric must be a mapping like {{name: val/acc, goal: maximize}}, got {metric!r}")
        metric = {}
    metric = {**DEFAULT_METRIC, **metric}
    if metric["goal"] not in ("maximize", "minimize"):
        problems.append(f"metric goal is {metric['goal']!r}; use maximize or minimize")
    if not isinstance(metric["name"], str):
        problems.append(f"metric name must be a string, got {metric['name']!r}")
    command = sweep.get("command")
    if command is not None and not (isinstance(command, list) and all(isinstance(w, str) for w in command)):
        problems.append(f"command must be a list of strings, got {command!r}")
    ps = []
    if not isinstance(sweep["parameters"], dict) or not sweep["parameters"]:
        problems.append("parameters must be a mapping of flag names to specs")
    else:
        for name, spec in sweep["parameters"].items():
            try:
                ps.append(parse_param(name, spec))
            except BadInput as e:
                problems.append(str(e))
    if sweep.get("method") == "grid":
        problems += [f"parameter {p.name!r} is a range; a grid needs its values listed" for p in ps if p.values is None]
    problems += hyperband(sweep.get("early_terminate"))
    if check:
        problems += check_flags(path, ps)
    if problems:
        raise BadInput(one_line(path, problems))
    sweep.setdefault("name", os.path.splitext(os.path.basename(path))[0])
    sweep["metric"] = metric
    return sweep


def params(sweep):
    """The sweep's parameters as Param, in file order (the file was checked by load)."""
    return [parse_param(name, spec) for name, spec in sweep["parameters"].items()]


def parse_param(name, spec):
    where = f"parameter {name!r}"
    if not isinstance(spec, dict):
        raise BadInput(f"{where}: expected a mapping like {{values: [...]}}, got {spec!r}")
    if "parameters" in spec:
        raise BadInput(f"{where}: nested parameters are not supported")
    unknown = sorted(set(spec) - PARAM_KEYS, key=str)
    if unknown:
        raise BadInput(f"{where}: unknown key {unknown[0]!r}"
                         f"{did_you_mean(unknown[0], PARAM_KEYS) or ' (supported: ' + ', '.join(sorted(PARAM_KEYS)) + ')'}")
    dist = spec.get("distribution")
    if dist is not None and dist not in DISTRIBUTIONS:
        raise BadInput(f"{where}: distribution {dist!r} is not supported (use one of {', '.join(DISTRIBUTIONS)})")
    if "value" in spec:
        return Param(name, values=(spec["value"],))
    if "values" in spec:
        if not isinstance(spec["values"], list) or not spec["values"]:
            raise BadInput(f"{where}: values must be a non-empty list")
        return Param(name, values=tuple(spec["values"]))
    if dist in ("categorical", "constant"):
        raise BadInput(f"{where}: distribution {dist} needs values")
    if "min" not in spec or "max" not in spec:
        raise BadInput(f"{where}: needs value, values, or min and max")
    low, high = spec["min"], spec["max"]
    for key, v in (("min", low), ("max", high), ("q", spec.get("q", 1))):
        if isinstance(v, bool) or not isinstance(v, (int, float)) or not math.isfinite(v):
            raise BadInput(f"{where}: {key} must be a finite number, got {v!r}")
    if low >= high:  # W&B's own check (wandb sweep) refuses min == max too
        raise BadInput(f"{where}: min {low} is not less than max {high}")
    if dist is None:  # W&B infers the distribution from the bounds' types
        dist = "int_uniform" if isinstance(low, int) and isinstance(high, int) else "uniform"
    if dist == "int_uniform" and not (isinstance(low, int) and isinstance(high, int)):
        raise BadInput(f"{where}: int_uniform needs integer min and max, got {low} and {high}")
    if dist == "log_uniform":  # W&B: min and max are natural-log exponents
        low, high = math.exp(low), math.exp(high)
    elif dist in ("log_uniform_values", "q_log_uniform_values") and low <= 0:
        raise BadInput(f"{where}: {dist} needs min > 0, got {low}")
    q = spec.get("q", 1) if dist.startswith("q_") else None
    if q is not None and q <= 0:
        raise BadInput(f"{where}: q must be > 0, got {q}")
    return Param(name, distribution=dist, low=low, high=high, q=q)


def hyperband(et):
    """What is wrong with early_terminate (W&B's hyperband, the only kind it has): a list of lines."""
    if et is None:
        return []
    if not isinstance(et, dict) or et.get("type") != "hyperband":
        return ["early_terminate must be {type: hyperband, ...}"]
    unknown = sorted(set(et) - HYPERBAND_KEYS, key=str)
    if unknown:
        return [f"early_terminate: unknown key {unknown[0]!r}"
                f"{did_you_mean(unknown[0], HYPERBAND_KEYS) or ' (supported: ' + ', '.join(sorted(HYPERBAND_KEYS)) + ')'}"]
    bad = [f"early_terminate: {key} must be a positive integer, got {et[key]!r}" for key in ("min_iter", "max_iter", "s", "eta")
           if key in et and (isinstance(et[key], bool) or not isinstance(et[key], int) or et[key] < 1)]
    if bad:
        return bad
    if "min_iter" not in et and not ("max_iter" in et and "s" in et):
        return ["early_terminate: give min_iter, or max_iter and s"]
    if et.get("eta", 3) < 2:
        return [f"early_terminate: eta must be >= 2, got {et['eta']}"]
    return []


def check_flags(path, ps):
    """What is wrong with the parameters as train.py flags, a list of lines: each must be a flag a sweep
    may set, and each value it can take must pass that flag's own parsing (a range's min and max, every
    listed value)."""
    from config.resolve import all_settings, check_mapping

    dests = set(all_settings())
    problems = []
    for p in ps:
        dest = p.name.replace("-", "_")
        if dest not in dests:
            problems.append(f"parameter {p.name!r} is not a train.py flag{did_you_mean(p.name, dests)} "
                            "(see python train.py --help)")
            continue
        if dest in RUNNER_FLAGS:
            problems.append(f"parameter {p.name!r} is set by the runner for each run; leave it out")
            continue
        for v in p.values if p.values is not None else (p.value(p.low), p.value(p.high)):
            try:
                check_mapping({p.name: v}, path)
            except BadInput as e:
                problems.append(f"parameter {p.name!r}: {str(e).split(': ', 1)[-1]}")
                break
    return problems


def resolve_quietly(argv):
    """config.resolve.resolve (train.py's settings, files and paths checked), with its one-line error
    turned into BadInput instead of an exit: what a runner checks before anything starts."""
    import contextlib
    import io

    from config.resolve import resolve

    err = io.StringIO()
    try:
        with contextlib.redirect_stderr(err):
            return resolve(argv)[0]
    except SystemExit:
        raise BadInput(err.getvalue().strip().splitlines()[-1].split("error: ", 1)[-1]) from None


def grid(sweep):
    """Every config of a grid: a list of {parameter: value}, in itertools.product order over the
    parameters as the file lists them (the last varies fastest)."""
    axes = {p.name: list(p.values) for p in params(sweep)}
    return [dict(zip(axes, combo)) for combo in itertools.product(*axes.values())]


def expand(sweep, values):
    """The argv `wandb agent` would run for these parameter values: the sweep's command with its ${...}
    macros filled in by wandb's own code (so booleans, lists and floats reach train.py as with the agent).
    ${env} is dropped: the agent runs through /usr/bin/env, a direct call needs no such thing."""
    from wandb.sdk.launch.sweeps.utils import create_sweep_command_args

    macros = create_sweep_command_args({"args": {k: {"value": v} for k, v in values.items()}})
    macros.update(interpreter=[sys.executable], program=[os.path.join(ROOT, sweep["program"])], env=[])
    return [word for chunk in sweep.get("command") or DEFAULT_COMMAND
            for word in (macros[chunk[2:-1]] if chunk.startswith("${") and chunk[2:-1] in macros else [chunk])]


def train_args(sweep, values):
    """The words of expand() after the program: train.py's flags for these values."""
    argv = expand(sweep, values)
    program = os.path.join(ROOT, sweep["program"])
    return argv[argv.index(program) + 1:] if program in argv else argv
