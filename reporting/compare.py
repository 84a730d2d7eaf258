"""report.py --compare A B: is the test accuracy of run group B different from A's beyond seed noise?

Each side is a folder of run folders (a seed group, runs/<group>/s<seed>, or any folder holding
them). The completed runs of a side are its seeds; the answer is Welch's t-test on their test
accuracies (reporting/stats.py), the difference's 95% interval and Hedges' g, as a markdown table,
a PNG of every seed's accuracy beside its side's mean and interval, and a strict-JSON dict.
"""
import os

from . import provenance, stats
from runfolder import RunFolder


def side(runs, root):
    """A side's summary from report.load_run dicts: its completed runs' accuracies and seeds, the
    configs it mixes (beyond the seed) and its runs' provenance records."""
    done = [r for r in runs if r["why"] is None]
    return dict(folder=root, seeds=[r["config"].get("seed") for r in done],
                test_acc=[r["results"]["test_acc"] for r in done], runs=[r["folder"] for r in done],
                incomplete=len(runs) - len(done), summary=stats.summary([r["results"]["test_acc"] for r in done]),
                provenance=[RunFolder(r["folder"]).read_provenance() for r in done])


def compare(a, b):
    """The comparison's dict (strict-JSON-able): both sides, the test, and where their provenance differs."""
    test = stats.compare(a["test_acc"], b["test_acc"])
    diff = provenance.differences(a["provenance"] + b["provenance"])
    strip = lambda s: {k: v for k, v in s.items() if k != "provenance"}  # noqa: E731
    missing = sum(r is None for r in a["provenance"] + b["provenance"])
    return dict(a=strip(a), b=strip(b), test=test, provenance_differs=sorted(diff), provenance_values=diff,
                provenance_missing=missing)


def fmt(s):
    if not s["n"]:
        return "-", "-"
    if s["n"] < 2:
        return f"{s['mean']:.4f}", "-"
    return f"{s['mean']:.4f} ± {s['std']:.4f}", f"[{s['ci_low']:.4f}, {s['ci_high']:.4f}]"


def markdown(result):
    """The comparison as markdown: one row per side, then the test's row and the verdict."""
    lines = ["| side | folder | n | test acc (mean ± std) | 95% interval | per seed |", "|---|---|---|---|---|---|"]
    for name in ("a", "b"):
        s = result[name]
        per = ", ".join(f"s{seed}: {acc:.4f}" for seed, acc in zip(s["seeds"], s["test_acc"]))
        mean, ci = fmt(s["summary"])
        lines.append(f"| {name.upper()} | {s['folder']} | {s['summary']['n']} | {mean} | {ci} | {per} |")
    t = result["test"]
    num = lambda v, f="+.4f": "-" if v is None else format(v, f)  # noqa: E731
    lines += ["", "| B − A | 95% interval | Welch's t | df | p | Hedges' g | verdict |", "|---|---|---|---|---|---|---|",
              f"| {num(t['diff'])} | " + (f"[{t['ci_low']:+.4f}, {t['ci_high']:+.4f}]" if t["ci_low"] is not None else "-")
              + f" | {num(t['t'], '.2f')} | {num(t['df'], '.1f')} | {num(t['p'], '.2g')} | {num(t['hedges_g'], '+.2f')} | "
              f"{t['verdict']} |", "", f"Test: {t['test']}, alpha {t['alpha']}; Hedges' g is the difference in pooled "
              "standard deviations, small-sample corrected."]
    for name in ("a", "b"):
        if result[name]["incomplete"]:
            lines.append(f"{name.upper()}: {result[name]['incomplete']} run(s) did not complete and are left out.")
    if result["provenance_missing"]:
        lines.append(f"Provenance: {result['provenance_missing']} run(s) have no provenance.json, so what made them is unknown.")
    if result["provenance_differs"]:
        lines.append("Provenance: the runs differ in " + ", ".join(result["provenance_differs"])
                     + " (provenance.json): part of a difference may come from there.")
    return "\n".join(lines)


def plot(result, path):
    """Each seed's test accuracy as a point, with its side's mean and 95% interval beside it."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    import numpy as np

    fig, ax = plt.subplots(figsize=(5.5, 4.2))
    rng = np.random.default_rng(0)  # horizontal jitter only, so equal accuracies stay visible
    for x, name in enumerate(("a", "b")):
        s = result[name]
        ax.scatter(x + rng.uniform(-0.08, 0.08, len(s["test_acc"])), s["test_acc"], color=f"C{x}", alpha=0.8,
                   label=f"{name.upper()}: {os.path.basename(os.path.normpath(s['folder']))} (n {s['summary']['n']})")
        m = s["summary"]
        if m["n"]:
            err = [[m["half_width"] or 0], [m["half_width"] or 0]]
            ax.errorbar(x + 0.25, m["mean"], yerr=err, fmt="D", color="black", capsize=6, ms=5)
    t = result["test"]
    p = f"p = {t['p']:.2g}" if t["p"] is not None else "no test"
    ax.set_title(f"test accuracy per seed; ◆ mean and 95% interval\nWelch's t: {p}, {t['verdict']}", fontsize=9)
    ax.set_xticks([0, 1], ["A", "B"])
    ax.set_xlim(-0.5, 1.5)
    ax.set_ylabel("test accuracy")
    ax.grid(alpha=0.3, axis="y")
    ax.legend(fontsize=8, loc="best")
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
