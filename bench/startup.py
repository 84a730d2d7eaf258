"""Startup: how soon each command answers --help (and train.py --print-config), against importing torch
and Lightning, which every command once paid before reading its flags. The goal is under 2 s (wall) on a
fresh checkout; tests/test_startup.py checks that none of them imports torch to do it.

Each call is a fresh `python` process; warm-up runs first, so these are warm-cache figures.

    python -m bench.startup [--quick]
"""
import os
import subprocess
import sys

from . import common

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
GOAL_SECONDS = 2.0
FULL, QUICK = dict(repeats=5, warmup=1), dict(repeats=1, warmup=0)
CALLS = [("train.py", "--help"), ("train.py", "--print-config"), ("evaluate.py", "--help"), ("predict.py", "--help"),
         ("export.py", "--help"), ("report.py", "--help")]


def python(*argv):
    def call():
        subprocess.run([sys.executable, *argv], cwd=ROOT, check=True, stdout=subprocess.DEVNULL)
    return call


def rows(quick=False):
    """One row per call. Full: each call alternates with the baseline (a busy moment hits both sides);
    quick: the baseline once, each call once (it checks that every row runs)."""
    sizes = QUICK if quick else FULL
    heavy = python("-c", "import torch, pytorch_lightning")
    base = common.measure(heavy, **sizes) if quick else None
    out = []
    for command, flag in CALLS:
        if quick:
            ours = common.measure(python(command, flag), **sizes)
        else:
            ours, base = common.measure_pair(python(command, flag), heavy, **sizes)
        out.append(common.row(f"{command} {flag} (ours) vs `import torch, pytorch_lightning`", "s",
                              ours, base, higher_is_better=False))
        out[-1]["goal"], out[-1]["met"] = f"< {GOAL_SECONDS:g} s", ours["median"] < GOAL_SECONDS
    return out


def main(argv=None):
    p = common.parser(__doc__)
    args = p.parse_args(argv)
    common.print_table(rows(args.quick))


if __name__ == "__main__":
    main()
