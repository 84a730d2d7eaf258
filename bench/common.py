"""What every benchmark shares: repeated timing, one row format, machine facts, the table.

A row compares our figure with a baseline measured in the same process and run:
    {"what", "unit", "ours": {median, min, max}, "baseline": {median, min, max},
     "ratio": how many times better ours is (>1 = ours wins), "goal": text, "met": bool or None}
"""
import contextlib
import os
import platform
import statistics
import time

from config.checks import FOLDER, Parser, path_type


def measure(fn, repeats=5, warmup=1, clock=time.perf_counter):
    """Call fn() warmup + repeats times; seconds per call as {median, min, max}.

    clock=time.process_time counts this process's CPU seconds instead of wall seconds: on a machine
    shared with other jobs that measures the work done rather than the neighbours' load.
    """
    for _ in range(warmup):
        fn()
    times = []
    for _ in range(repeats):
        t = clock()
        fn()
        times.append(clock() - t)
    return summary(times)


@contextlib.contextmanager
def torch_threads(n):
    """Run the block with n torch intra-op threads, then restore the old count.

    The benchmarks use 1: on a machine shared with other jobs, two OpenMP threads on two busy cores wait
    on each other at every op (we measured 30x slower batch augmentation), which buries what is measured.
    """
    import torch

    old = torch.get_num_threads()
    torch.set_num_threads(n)
    try:
        yield
    finally:
        torch.set_num_threads(old)


def measure_pair(ours, baseline, repeats=5, warmup=1, clock=time.perf_counter):
    """Like measure, for two functions called in turn (ours, baseline, ours, ...).

    Alternating spreads a busy moment of a shared machine over both sides instead of one.
    """
    for _ in range(warmup):
        ours(), baseline()
    times = ([], [])
    for _ in range(repeats):
        for fn, out in zip((ours, baseline), times):
            t = clock()
            fn()
            out.append(clock() - t)
    return summary(times[0]), summary(times[1])


def summary(values):
    return {"median": statistics.median(values), "min": min(values), "max": max(values)}


def per_second(seconds, count):
    """Seconds per call -> count per second (images/s, steps/s); the slowest call gives the min."""
    return {"median": count / seconds["median"], "min": count / seconds["max"], "max": count / seconds["min"]}


def row(what, unit, ours, baseline, higher_is_better, goal=None):
    """goal: the ratio we aim for, e.g. 0.95 or 10; `met` says whether the median ratio reaches it."""
    ratio = (ours["median"] / baseline["median"] if higher_is_better
             else baseline["median"] / ours["median"])
    return {"what": what, "unit": unit, "ours": ours, "baseline": baseline, "ratio": ratio,
            "goal": None if goal is None else f">= {goal:g}x", "met": None if goal is None else ratio >= goal}


def machine():
    """CPU model and cores, GPU if any, and the package versions: the context every figure needs."""
    import numpy
    import pytorch_lightning
    import torch
    import torchvision

    cpu = platform.processor() or platform.machine()
    try:
        with open("/proc/cpuinfo") as f:
            cpu = next(line.split(":", 1)[1].strip() for line in f if line.startswith("model name"))
    except (OSError, StopIteration):
        pass
    gpu = torch.cuda.get_device_name(0) if torch.cuda.is_available() else "none"
    return (f"CPU {cpu} ({os.cpu_count()} cores), GPU {gpu}; python {platform.python_version()}, "
            f"torch {torch.__version__}, torchvision {torchvision.__version__}, lightning {pytorch_lightning.__version__}, "
            f"numpy {numpy.__version__}")


def num(v):
    return f"{v:,.0f}" if abs(v) >= 1000 else f"{v:.4g}"  # 14,450 reads better than 1.445e+04


def fmt(stats):
    return f"{num(stats['median'])} [{num(stats['min'])}, {num(stats['max'])}]"


def parser(doc):
    """The command line every data-reading benchmark takes (its docstring's first line as description)."""
    p = Parser(description=doc.splitlines()[0])
    p.add_argument("--data-dir", default="data", type=path_type(FOLDER), help="folder holding cifar-10-batches-py/ (default: data)")
    p.add_argument("--quick", action="store_true", help="tiny sizes: checks that it runs, measures nothing")
    return p


def print_table(rows, title=None):
    """A markdown table: ready to paste into docs/benchmarks.md."""
    if title:
        print(f"## {title}\n")
    print("| what | unit | ours: median [min, max] | baseline: median [min, max] | ratio | goal | met |")
    print("|---|---|---|---|---|---|---|")
    for r in rows:
        met = "" if r["met"] is None else ("yes" if r["met"] else "**NO**")
        print(f"| {r['what']} | {r['unit']} | {fmt(r['ours'])} | {fmt(r['baseline'])} | {r['ratio']:.2f}x "
              f"| {r['goal'] or ''} | {met} |")
    print(f"\nmachine: {machine()}")
