"""Packing: runs per second with K train.py runs at once on one device, against the same K one at a time.

Ours is training/packing.py with --per-device K (each run 1/K of the cores on a CPU, 1/K of the
memory on a GPU); the baselines run the same K runs one after another: each with torch's default
threads (the whole device), and each with the threads a packed run gets, which separates what
running at once gives from what fewer threads per run give (on a busy CPU, two OpenMP threads on two
shared cores spin on each other).
Both are K real train.py processes (different seeds, the course MLP, short), timed in wall seconds
from the first start to the last exit, so process start-up (imports, reading the data) counts as a
user pays it. Ours and the baseline alternate, so a busy moment of a shared machine hits both.

    python -m bench.packing --data-dir data [--quick] [--k 3]
"""
import os
import subprocess
import sys
import tempfile
import time

from training import packing

from . import common

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
FULL = dict(k=3, repeats=1, flags=["--model", "mlp", "--max-steps", "300", "--eval-every", "100"])
QUICK = dict(k=2, repeats=1, flags=["--model", "mlp", "--max-steps", "4", "--eval-every", "2", "--val-size", "50",
                                    "--batch-size", "8", "--eval-batch-size", "25"])


def timed_runs(k, per_device, flags, data_dir, tmp, env=None):
    """Seconds for K runs (seeds 1..K) with per_device at once; raises if one does not complete."""
    stamp = f"{per_device}-{time.monotonic_ns()}"
    jobs = [packing.Job([sys.executable, os.path.join(ROOT, "train.py"), *flags, "--seed", str(seed),
                         "--data-dir", data_dir, "--logger", "csv", "--output-dir", os.path.join(tmp, f"{stamp}-s{seed}")],
                        log=os.path.join(tmp, f"{stamp}-s{seed}.log"), name=f"s{seed}") for seed in range(1, k + 1)]
    if per_device == 1:  # one at a time, their output into the logs too, not onto the table
        start = time.perf_counter()
        codes = []
        for job in jobs:
            with open(job.log, "ab") as log:
                codes.append(subprocess.run(job.argv, stdout=log, stderr=log, env=env).returncode)
    else:
        start = time.perf_counter()
        codes = packing.run(jobs, per_device, say=lambda line: None)
    seconds = time.perf_counter() - start
    if any(codes):
        raise RuntimeError(f"a run failed (exit {codes}); see {tmp}")
    return seconds


def rows(quick=False, data_dir="data"):
    cfg = QUICK if quick else FULL
    k = cfg["k"]
    ours, base, thin = [], [], []
    thin_env = packing.child_env(k)  # the threads a packed run gets, for runs one at a time
    with tempfile.TemporaryDirectory() as tmp:
        for _ in range(cfg["repeats"]):  # alternating, as common.measure_pair does
            ours.append(timed_runs(k, k, cfg["flags"], data_dir, tmp))
            base.append(timed_runs(k, 1, cfg["flags"], data_dir, tmp))
            thin.append(timed_runs(k, 1, cfg["flags"], data_dir, tmp, env=thin_env))
    ours = common.per_second(common.summary(ours), k)
    what = f"{k} MLP runs ({cfg['flags'][cfg['flags'].index('--max-steps') + 1]} steps each): {k} at once vs one at a time"
    threads = thin_env.get(packing.THREADS_ENV[0])
    return [common.row(what + ", default threads", "runs/s", ours, common.per_second(common.summary(base), k),
                       higher_is_better=True),
            common.row(what + f", {threads} thread(s) each", "runs/s", ours, common.per_second(common.summary(thin), k),
                       higher_is_better=True)]


def main(argv=None):
    p = common.parser(__doc__)
    p.add_argument("--k", type=int, help=f"runs at once (default {FULL['k']})")
    args = p.parse_args(argv)
    if args.k:
        (QUICK if args.quick else FULL)["k"] = args.k
    print(f"load before: {os.getloadavg()[0]:.2f} {os.getloadavg()[1]:.2f} {os.getloadavg()[2]:.2f} (1, 5, 15 min)")
    common.print_table(rows(args.quick, args.data_dir), "Packing K runs on one device")
    print(f"load after: {os.getloadavg()[0]:.2f} {os.getloadavg()[1]:.2f} {os.getloadavg()[2]:.2f} (1, 5, 15 min)")


if __name__ == "__main__":
    main()
