"""Run a W&B sweep file's grid with no W&B server: every config in turn, some, or one by index (SLURM arrays).

    python sweeps/run_local.py sweeps/table1.yaml --count                  # number of configs (N)
    python sweeps/run_local.py sweeps/table1.yaml --list                   # index and command of each
    python sweeps/run_local.py sweeps/table1.yaml -- --data-dir data       # all N, one after another
    python sweeps/run_local.py sweeps/table1.yaml --index $SLURM_ARRAY_TASK_ID -- --data-dir data
    python sweeps/run_local.py sweeps/table1.yaml --only "" --only "optimizer=adam hidden=[64,128]"
    python sweeps/run_local.py sweeps/table1.yaml --only "" --seeds 5 --per-device 3 -- --data-dir data

The commands are the ones `wandb agent` would run: the YAML's `command` with its ${args...} macro
filled in by wandb's own code. Configs are numbered 0..N-1 in itertools.product order over the
parameters as the file lists them (the last varies fastest). `--only "k=v ..."` picks the config
that differs from the base config (each parameter's first value) in exactly these, the way the
course's Table 1 describes its rows; it repeats, and the runs keep its order.

Each run gets `--output-dir OUT/NAME-III --run-name NAME-III --group NAME` (NAME: the sweep's name,
OUT: --out, default runs/NAME), then the flags after `--`, which therefore win. The folder is fixed
per index, so a requeued array task resumes its own run (checkpoints/last.ckpt, the same W&B id).
--seeds N runs each config with seeds 42.. (or from --seed after --) as a seed group: folders
OUT/NAME-III/s<seed>, W&B group NAME-III. --per-device K runs K of the runs at once on each device
(training/packing.py: each its share of the GPU's memory, or of the cores; output to FOLDER.log).
Exit status: 0 when every run it started succeeded, else 1; 2 on a bad sweep file or option.
"""
import argparse
import os
import shlex
import sys

import yaml

if __package__ in (None, ""):  # run as `python sweeps/run_local.py`
    sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
from runfolder import BadInput  # noqa: E402
from sweeps.sweep_file import ROOT, expand, grid, params, resolve_quietly  # noqa: E402  (ROOT: for the tests)
from config.checks import OUT_FOLDER, Parser, require  # noqa: E402
from sweeps import sweep_file  # noqa: E402
from training import packing  # noqa: E402
from runfolder.folder import SEED_DIR  # noqa: E402


def load(path):
    """The sweep file (sweeps/sweep_file.py reads and checks it); this runner expands grids only."""
    sweep = sweep_file.load(path)
    if sweep["method"] != "grid":
        raise BadInput(f"{path}: method is {sweep['method']!r}; the local runner expands grid sweeps only "
                         "(sweeps/search.py runs random and bayes)")
    return sweep


def axes(sweep):
    """Parameter name -> list of its values (a fixed `value` is a one-value axis)."""
    return {p.name: list(p.values) for p in params(sweep)}


def select(sweep, only):
    """Indexes of the configs that differ from the base config in exactly the pairs of each spec."""
    ax, configs = axes(sweep), grid(sweep)
    picked = []
    for spec in only:
        want = {k: v[0] for k, v in ax.items()}
        for pair in shlex.split(spec):
            key, sep, text = pair.partition("=")
            if not sep or key not in ax:
                raise BadInput(f"--only {spec!r}: {pair!r} is not PARAMETER=VALUE with one of {list(ax)}")
            want[key] = yaml.safe_load(text)
            if want[key] not in ax[key]:
                raise BadInput(f"--only {spec!r}: {key} takes {ax[key]}, not {want[key]!r}")
        picked.append(configs.index(want))
    return picked


def command(sweep, index, out=None, extra=(), seed=None):
    """The argv `wandb agent` would run for config `index`, plus the runner's folder flags and `extra`;
    with a seed, the run is that seed of the config's seed group (OUT/NAME-III/s<seed>)."""
    name = f"{sweep['name']}-{index:03d}"
    folder = os.path.join(out or os.path.join("runs", sweep["name"]), name)
    if seed is None:
        return expand(sweep, grid(sweep)[index]) + ["--output-dir", folder, "--run-name", name,
                                                    "--group", sweep["name"], *extra]
    run = SEED_DIR.format(seed=seed)
    return expand(sweep, grid(sweep)[index]) + ["--output-dir", os.path.join(folder, run), "--run-name",
                                                f"{name}-{run}", "--group", name, *extra, "--seed", str(seed)]


def first_seed(extra):
    """--seed after -- (the last one), else train.py's default."""
    from config.signatures import data_settings

    seed = data_settings()["seed"].default
    for i, word in enumerate(extra):
        if word == "--seed" and i + 1 < len(extra):
            seed = int(extra[i + 1])
        elif word.startswith("--seed="):
            seed = int(word.split("=", 1)[1])
    return seed


def main(argv=None):
    p = Parser(prog="run_local.py", description=__doc__.split("\n")[0], epilog=__doc__.split("\n\n", 2)[2],
               formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("sweep", help="a W&B sweep YAML with method: grid")
    p.add_argument("--index", type=int, nargs="+", help="run only these configs (0-based), e.g. $SLURM_ARRAY_TASK_ID")
    p.add_argument("--only", action="append", metavar="'K=V ...'",
                   help="run the config that changes only these from the base config; repeatable")
    p.add_argument("--out", help="parent folder of the run folders (default runs/<sweep name>)")
    p.add_argument("--count", action="store_true", help="print the number of configs and exit")
    p.add_argument("--list", action="store_true", help="print the selected commands and exit")
    p.add_argument("--seeds", type=int, metavar="N", help="run each config with N seeds, as a seed group")
    p.add_argument("--per-device", type=int, default=1, metavar="K", help="K runs at once on each device (default 1)")
    argv = sys.argv[1:] if argv is None else list(argv)
    cut = argv.index("--") if "--" in argv else len(argv)
    args, extra = p.parse_args(argv[:cut]), argv[cut + 1:]  # after --: flags for every train.py run
    try:
        sweep = load(args.sweep)
        n = len(grid(sweep))
        picked = select(sweep, args.only) if args.only else list(range(n))
        if args.index is not None:
            bad = [i for i in args.index if not 0 <= i < n]
            if bad:
                raise BadInput(f"--index {bad[0]} is outside 0..{n - 1}")
            picked = [i for i in args.index if i in picked]
        if args.per_device < 1 or args.seeds is not None and args.seeds < 1:
            raise BadInput("--seeds and --per-device must be at least 1")
        if args.seeds and "seed" in axes(sweep):
            raise BadInput(f"{args.sweep} has seed as a parameter already; leave out --seeds")
        seeds = list(range(first_seed(extra), first_seed(extra) + args.seeds)) if args.seeds else [None]
        require(("--out", args.out, OUT_FOLDER))
        if not (args.count or args.list):  # what train.py would refuse, refused before the first run starts
            for i in picked:
                resolve_quietly(command(sweep, i, args.out, extra, seeds[0])[2:])
    except ValueError:
        p.exit(2, "run_local.py: error: --seed after -- must be an integer\n")
    except (OSError, yaml.YAMLError, BadInput) as e:
        p.exit(2, f"run_local.py: error: {str(e).splitlines()[0]}\n")
    if args.count:
        print(n)
        return 0
    runs = [(i, seed, command(sweep, i, args.out, extra, seed)) for i in picked for seed in seeds]
    if args.list:
        for i, _, cmd in runs:
            print(f"{i:4d}  {shlex.join(cmd)}")
        return 0
    jobs = []
    for i, seed, cmd in runs:
        folder = cmd[cmd.index("--output-dir") + 1]
        os.makedirs(os.path.dirname(folder) or ".", exist_ok=True)
        print(f"config {i}{'' if seed is None else f' seed {seed}'}: {shlex.join(cmd)}", flush=True)
        jobs.append(packing.Job(cmd, log=folder + ".log", name=f"config {i}" + ("" if seed is None else f" seed {seed}")))
    codes = packing.run(jobs, args.per_device, say=lambda line: print(line, flush=True))
    failed = sorted({i for (i, _, _), code in zip(runs, codes) if code})
    if failed:
        print(f"failed configs: {failed}", file=sys.stderr)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
