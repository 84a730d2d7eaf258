"""Run a W&B sweep file's grid with no W&B server: every config in turn, some, or one by index (SLURM arrays).

    python sweeps/run_local.py sweeps/table1.yaml --count                  # number of configs (N)
    python sweeps/run_local.py sweeps/table1.yaml --list                   # index and command of each
    python sweeps/run_local.py sweeps/table1.yaml -- --data-dir data       # all N, one after another
    python sweeps/run_local.py sweeps/table1.yaml --index $SLURM_ARRAY_TASK_ID -- --data-dir data
    python sweeps/run_local.py sweeps/table1.yaml --only "" --only "optimizer=adam hidden=[64,128]"

The commands are the ones `wandb agent` would run: the YAML's `command` with its ${args...} macro
filled in by wandb's own code. Configs are numbered 0..N-1 in itertools.product order over the
parameters as the file lists them (the last varies fastest). `--only "k=v ..."` picks the config
that differs from the base config (each parameter's first value) in exactly these, the way the
course's Table 1 describes its rows; it repeats, and the runs keep its order.

Each run gets `--output-dir OUT/NAME-III --run-name NAME-III --group NAME` (NAME: the sweep's name,
OUT: --out, default runs/NAME), then the flags after `--`, which therefore win. The folder is fixed
per index, so a requeued array task resumes its own run (checkpoints/last.ckpt, the same W&B id).
Exit status: 0 when every run it started succeeded, else 1; 2 on a bad sweep file or option.
"""
import argparse
import os
import shlex
import subprocess
import sys
import time

import yaml

if __package__ in (None, ""):  # run as `python sweeps/run_local.py`
    sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
from runfolder import BadInput  # noqa: E402
from sweeps.sweep_file import ROOT, expand, grid, params  # noqa: E402  (ROOT: for the tests)
from sweeps import sweep_file  # noqa: E402


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


def command(sweep, index, out=None, extra=()):
    """The argv `wandb agent` would run for config `index`, plus the runner's folder flags and `extra`."""
    name = f"{sweep['name']}-{index:03d}"
    folder = os.path.join(out or os.path.join("runs", sweep["name"]), name)
    return expand(sweep, grid(sweep)[index]) + ["--output-dir", folder, "--run-name", name,
                                                "--group", sweep["name"], *extra]


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0], epilog=__doc__.split("\n\n", 2)[2],
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("sweep", help="a W&B sweep YAML with method: grid")
    p.add_argument("--index", type=int, nargs="+", help="run only these configs (0-based), e.g. $SLURM_ARRAY_TASK_ID")
    p.add_argument("--only", action="append", metavar="'K=V ...'",
                   help="run the config that changes only these from the base config; repeatable")
    p.add_argument("--out", help="parent folder of the run folders (default runs/<sweep name>)")
    p.add_argument("--count", action="store_true", help="print the number of configs and exit")
    p.add_argument("--list", action="store_true", help="print the selected commands and exit")
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
    except (OSError, yaml.YAMLError, BadInput) as e:
        p.exit(2, f"run_local.py: error: {str(e).splitlines()[0]}\n")
    if args.count:
        print(n)
        return 0
    failed = []
    for k, i in enumerate(picked):
        cmd = command(sweep, i, args.out, extra)
        if args.list:
            print(f"{i:4d}  {shlex.join(cmd)}")
            continue
        print(f"[{k + 1}/{len(picked)}] config {i}: {shlex.join(cmd)}", flush=True)
        start = time.perf_counter()
        rc = subprocess.run(cmd).returncode
        print(f"[{k + 1}/{len(picked)}] config {i}: exit {rc} after {time.perf_counter() - start:.0f}s", flush=True)
        if rc:
            failed.append(i)
    if failed:
        print(f"failed configs: {failed}", file=sys.stderr)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
