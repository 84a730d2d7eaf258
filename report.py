"""Compare run folders without W&B: a markdown table like the course's Table 1, and PNG curves.

    python report.py runs/table1                      # -> runs/table1/report/{report.md,loss.png,accuracy.png}
    python report.py runs/activation --out figs       # seeds of one config -> mean +- std

It reads run folders only (any folder below the given one holding results.json): config.yaml,
metrics.csv and results.json. Runs whose configs differ in nothing but the seed (and where/how they
ran) form one row and one curve, mean +- std over the seeds. Rows keep folder-name order; the first
row is the baseline, and each row's "change" column lists how its config differs from it.
"""
import argparse
import csv
import json
import os
import statistics
import sys

import numpy as np
import yaml

# Config keys that say where or how a run ran, not what it trained: they never split or label rows.
RUN_ONLY = {"seed", "run_name", "output_dir", "data_dir", "logger", "wandb_project", "wandb_entity", "group",
            "tags", "log_model", "accelerator", "devices", "num_nodes", "eval_batch_size", "eval_every",
            "log_every", "compile", "preset"}
SMOOTH = 25  # train curves are per batch: a moving mean over this many logged points


def load_run(folder):
    with open(os.path.join(folder, "config.yaml")) as f:
        config = yaml.safe_load(f)
    with open(os.path.join(folder, "results.json")) as f:
        results = json.load(f)
    series = {}  # metric -> (steps, values)
    with open(os.path.join(folder, "metrics.csv")) as f:
        for row in csv.DictReader(f):
            for key, value in row.items():
                if key not in ("step", "epoch") and value not in ("", None):
                    series.setdefault(key, ([], []))
                    series[key][0].append(int(row["step"]))
                    series[key][1].append(float(value))
    return dict(folder=folder, config=config, results=results, series=series)


def find_runs(root):
    folders = sorted(d for d, _, files in os.walk(root) if "results.json" in files and "config.yaml" in files)
    if not folders:
        raise FileNotFoundError(f"no run folders (with results.json and config.yaml) under {root}")
    return [load_run(d) for d in folders]


def group_runs(runs):
    """[(config without run-only keys, [runs])] in order of first appearance."""
    groups = []
    for run in runs:
        key = {k: v for k, v in run["config"].items() if k not in RUN_ONLY}
        for cfg, members in groups:
            if cfg == key:
                members.append(run)
                break
        else:
            groups.append((key, [run]))
    return groups


def show(value):
    return "[" + ",".join(map(str, value)) + "]" if isinstance(value, list) else str(value)


def change(cfg, base):
    diff = [f"{k}={show(v)}" for k, v in cfg.items() if base.get(k) != v]
    return " ".join(diff) or "(baseline)"


def mean_std(values):
    values = [v for v in values if v is not None]
    if not values:
        return "-"
    if len(values) == 1:
        return f"{values[0]:.4f}"
    return f"{statistics.mean(values):.4f} ± {statistics.stdev(values):.4f}"


def table(groups):
    base = groups[0][0]
    lines = ["| # | change from the first row | runs | test acc | best val acc | steps | params | train time (s) |",
             "|---|---|---|---|---|---|---|---|"]
    for i, (cfg, members) in enumerate(groups, 1):
        res = [m["results"] for m in members]
        lines.append(f"| {i} | {change(cfg, base)} | {len(members)} | {mean_std([r['test_acc'] for r in res])} | "
                     f"{mean_std([r.get('best_val_acc') for r in res])} | {res[0]['steps']} | {res[0]['params']:,} | "
                     f"{statistics.mean(r['train_seconds'] for r in res):.0f} |")
    return "\n".join(lines)


def curve(members, metric, smooth):
    """(steps, mean, std) of one metric over a group's runs, on the steps they all logged."""
    series = [m["series"][metric] for m in members if metric in m["series"]]
    if not series:
        return None
    steps = sorted(set.intersection(*(set(s) for s, _ in series)))
    values = np.array([[dict(zip(*s))[t] for t in steps] for s in series])
    if smooth:  # trailing moving mean; the first points average what there is so far
        sums = np.cumsum(values, axis=1)
        sums[:, smooth:] = sums[:, smooth:] - sums[:, :-smooth]
        values = sums / np.minimum(np.arange(1, values.shape[1] + 1), smooth)
    return np.array(steps), values.mean(0), values.std(0)


def plot(groups, kind, path):
    """Train and validation panels, one colour (and dash) per row, a test star at each row's last step.
    Rows of very different lengths (1400 and 10000 steps) get a log step axis, so the short ones show."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, 2, figsize=(13, 5.2 + 0.22 * ((len(groups) + 1) // 2)), sharey=True)
    colours, dashes = plt.get_cmap("tab10"), ("-", "--", ":")
    base = groups[0][0]
    lengths = [members[0]["results"]["steps"] for _, members in groups]
    for i, (cfg, members) in enumerate(groups):
        style = dict(color=colours(i % 10), ls=dashes[i // 10 % 3], lw=1.5)
        label = f"{i + 1}: {change(cfg, base)}" + (f" (mean ± std of {len(members)})" if len(members) > 1 else "")
        for ax, split in zip(axes, ("train", "val")):
            got = curve(members, f"{split}/{kind}", SMOOTH if split == "train" else 0)
            if got is None:
                continue
            steps, mean, std = got
            ax.plot(steps + 1, mean, label=label if split == "train" else None, **style)
            if len(members) > 1:
                ax.fill_between(steps + 1, mean - std, mean + std, color=style["color"], alpha=0.2, lw=0)
        test = np.mean([m["results"][f"test_{kind}"] for m in members])
        axes[1].plot(lengths[i], test, "*", color=style["color"], ms=12, mec="black", mew=0.6)
    name = {"loss": "cross-entropy loss", "acc": "accuracy"}[kind]
    axes[0].set_title(f"train (moving mean of {SMOOTH} logged steps)")
    axes[1].set_title("validation (★ = the run's test result, drawn at its last step)")
    for ax in axes:
        ax.set_xlabel("step" + (" (log scale)" if max(lengths) >= 4 * min(lengths) else ""))
        if max(lengths) >= 4 * min(lengths):
            ax.set_xscale("log")
        ax.grid(alpha=0.3, which="both")
    axes[0].set_ylabel(name)
    fig.suptitle(name)
    fig.legend(loc="lower center", ncol=2, fontsize=8.5, frameon=False)
    fig.tight_layout(rect=(0, 0.03 + 0.03 * ((len(groups) + 1) // 2), 1, 1))
    fig.savefig(path, dpi=110)
    plt.close(fig)


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("runs", help="folder holding run folders (searched recursively)")
    p.add_argument("--out", help="where report.md and the PNGs go (default RUNS/report)")
    args = p.parse_args(argv)
    try:
        groups = group_runs(find_runs(args.runs))
    except (OSError, ValueError, KeyError, yaml.YAMLError) as e:
        sys.exit(f"error: {e}")
    out = args.out or os.path.join(args.runs, "report")
    os.makedirs(out, exist_ok=True)
    text = table(groups)
    with open(os.path.join(out, "report.md"), "w") as f:
        f.write(f"Runs under {args.runs}\n\n{text}\n\n![loss](loss.png)\n\n![accuracy](accuracy.png)\n")
    plot(groups, "loss", os.path.join(out, "loss.png"))
    plot(groups, "acc", os.path.join(out, "accuracy.png"))
    print(text)
    print(f"wrote {out}/report.md, loss.png, accuracy.png")
    return out


if __name__ == "__main__":
    main()
