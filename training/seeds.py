"""A seed group: one config trained over several seeds, each its own run folder, under one name.

    python train.py --preset seed-best --seeds 3 --data-dir data      # seeds 42, 43, 44 (from --seed on)
    python train.py --config my.yaml --data-dir data                  # my.yaml holds `seeds: [1, 2, 3]`
    -> runs/<group>/s42/, s43/, s44/   (runfolder.folder.SEED_DIR), W&B group <group>, then one summary line

Each seed is an ordinary train.py run in its own process: the same command line without --seeds
and --per-device, plus --seed, --output-dir, --run-name and (unless given) --group. So a group's run
folders are continued, evaluated and reported like any other, and a stopped group continues by
running the same command again (finished seeds are skipped). --per-device K runs K seeds at once
(training/packing.py).
"""
import os
import sys

from . import packing
from config.resolve import GROUP_ENV
from reporting import stats
from runfolder import RunFolder
from runfolder.folder import SEED_DIR

OWN_FLAGS = {"--seeds": 1, "--per-device": 1}  # the group's own flags and how many values each takes
ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def seed_list(spec, base):
    """--seeds N -> N seeds from base on; a list (a config file's `seeds: [1, 2, 3]`) -> itself."""
    if isinstance(spec, int):
        return list(range(base, base + spec))
    return list(dict.fromkeys(int(s) for s in spec))


def strip_own_flags(argv):
    """argv without the group's own flags (both `--seeds 3` and `--seeds=3` forms)."""
    out, skip = [], 0
    for word in argv:
        if skip:
            skip -= 1
            continue
        name = word.split("=", 1)[0]
        if name in OWN_FLAGS:
            skip = 0 if "=" in word else OWN_FLAGS[name]
            continue
        out.append(word)
    return out


def members(cfg, seeds):
    """[(seed, run folder)] of the group cfg's output_dir names."""
    return [(s, os.path.join(cfg["output_dir"], SEED_DIR.format(seed=s))) for s in seeds]


def jobs(argv, cfg, seeds):
    """The packing.Job of each seed still to run (a completed run folder is skipped)."""
    name = os.path.basename(os.path.normpath(cfg["output_dir"]))
    base = [sys.executable, os.path.join(ROOT, "train.py"), *strip_own_flags(argv)]
    out = []
    for seed, folder in members(cfg, seeds):
        done = RunFolder(folder).read_results() if RunFolder(folder).has_config() else None
        if done and done.get("status") == "completed":
            continue
        run = SEED_DIR.format(seed=seed)
        extra = ["--seed", str(seed), "--output-dir", folder, "--run-name", f"{name}-{run}"]
        if not cfg.get("group"):
            extra += ["--group", name]  # W&B pools the group's runs
        out.append(packing.Job(base + extra, log=f"{folder}.log", name=f"{name}/{run}"))
    return out


def run_group(argv, cfg, seeds, per_device=1):
    """Train every seed of the group; print each seed's and the pooled test accuracy. Returns the exit
    status: 0 when every seed completed, else the first failing run's."""
    todo = jobs(argv, cfg, seeds)
    os.makedirs(cfg["output_dir"], exist_ok=True)
    print(f"seed group {cfg['output_dir']}: seeds {', '.join(map(str, seeds))}; {len(seeds) - len(todo)} done, "
          f"{len(todo)} to run{f', {per_device} at a time' if per_device > 1 else ''}", flush=True)
    env = dict(os.environ)
    os.environ[GROUP_ENV] = cfg["output_dir"]
    try:
        codes = packing.run(todo, per_device, say=lambda line: print(line, flush=True))
    finally:
        os.environ.clear()
        os.environ.update(env)
    accs = []
    for seed, folder in members(cfg, seeds):
        results = RunFolder(folder).read_results() or {}
        acc = results.get("test_acc") if results.get("status") == "completed" else None
        print(f"  s{seed}: " + (f"test_acc {acc:.4f}" if acc is not None else f"{results.get('status', 'no results.json')}"))
        if acc is not None:
            accs.append(acc)
    s = stats.summary(accs)
    if s["n"] >= 2:
        print(f"test_acc {s['mean']:.4f} ± {s['std']:.4f} (std), 95% interval [{s['ci_low']:.4f}, {s['ci_high']:.4f}], "
              f"n {s['n']} of {len(seeds)}  group {cfg['output_dir']}")
    return next((c for c in codes if c), 0 if len(accs) == len(seeds) else 1)
