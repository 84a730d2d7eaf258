"""Compare run folders without W&B: a markdown table like the course's Table 1, and PNG curves.

    python report.py runs/table1                      # -> runs/table1/report/{report.md,loss.png,accuracy.png}
    python report.py runs/activation --out figs       # seeds of one config -> mean +- std
    python report.py runs/mlp_random                  # a search's study folder: also its best trial and
                                                      # the parameter importances
    python report.py --compare runs/elu runs/tanh     # two seed groups: is B - A beyond seed noise?
    python report.py runs/table1 --json               # the table as strict JSON on stdout, for scripts

It reads run folders only (every folder below the given one holding a config.yaml): config.yaml,
metrics.csv and results.json. Runs whose configs differ in nothing but the seed (and where/how they
ran) form one row and one curve, mean +- std over the seeds with the mean's t-based 95% interval.
Rows keep folder-name order; the first row is the baseline, and each row's "change" column lists how
its config differs from it. When the runs' provenance.json differ (code, versions, device, data), a
section says in what. --compare: reporting/compare.py.
Runs that did not complete (results.json's status is not `completed`, or there is no results.json)
are listed in their own section with the reason, never as rows; so are a search's pruned trials, and
folders whose files cannot be read. An earlier report in the output folder is kept, and the command
refused, unless --overwrite.
"""
import csv
import os
import statistics
import sys
import textwrap

import numpy as np

from config.checks import FOLDER, NEW_FILE, OUT_FOLDER, Parser, command_name, require
from config.resolve import runtime_keys
from runfolder import BadInput, RunFolder, one_line_errors, strict_json
from reporting import compare, provenance, stats

# What never splits or labels rows: where/how a run ran (config: Runtime[...]), and the seed, over which
# rows pool (mean +- std), and the preset's name (its values are in the config already).
POOLED = runtime_keys() | {"seed", "preset"}
REPORT = "report.md"  # in the output folder, beside loss.png and accuracy.png
SMOOTH = 25        # train curves are per batch: a moving mean over this many logged points
LABEL_WIDTH = 44   # legend labels wrap at this many characters ...
LABEL_LINES = 2    # ... onto at most this many lines; a longer change is labelled by the run folder's name
SKIP_START = 0.1   # the loss axis ends above the curves after their first 10% of steps ...
DWARF = 1.5        # ... when their first steps reach 1.5x higher than that: early spikes are clipped


def read_series(path):
    """metric -> (steps, values) from a metrics.csv; {} when there is none yet."""
    series = {}
    if not os.path.isfile(path):
        return series
    with open(path) as f:
        for row in csv.DictReader(f):
            for key, value in row.items():
                if key not in ("step", "epoch") and value not in ("", None):
                    series.setdefault(key, ([], []))
                    series[key][0].append(int(row["step"]))
                    series[key][1].append(float(value))
    return series


def load_run(path):
    """A run folder as a dict: folder, config, results (None when missing), series, and `why` it did not
    complete (None when it did)."""
    folder = RunFolder(path)
    run = dict(folder=path, config=None, results=None, series={}, why=None)
    try:
        run["config"] = folder.read_config()
        run["results"] = folder.read_results()
    except BadInput as e:
        run["why"] = str(e)
        return run
    try:
        run["series"] = read_series(folder.metrics_path)
    except (OSError, ValueError, KeyError, TypeError) as e:  # a damaged or hand-edited metrics.csv
        run["why"] = f"{folder.metrics_path}: cannot read ({type(e).__name__}: {str(e).splitlines()[0] if str(e) else ''})"
        return run
    results = run["results"]
    if results is None:
        run["why"] = "no results.json: still running, or stopped before writing it (killed, crashed)"
    elif results.get("status", "completed") != "completed":
        run["why"] = f"{results['status']}: {results.get('reason') or 'no reason given'}"
    return run


def find_runs(root):
    folders = sorted(d for d, _, files in os.walk(root) if RunFolder(d).has_config())
    if not folders:
        raise FileNotFoundError(f"no run folders (with a config.yaml) under {root}")
    return [load_run(d) for d in folders]


def group_runs(runs):
    """[(config without pooled keys, [runs])] in order of first appearance."""
    groups = []
    for run in runs:
        key = {k: v for k, v in run["config"].items() if k not in POOLED}
        for cfg, members in groups:
            if cfg == key:
                members.append(run)
                break
        else:
            groups.append((key, [run]))
    return groups


def show(value):
    if isinstance(value, list):
        return "[" + ",".join(map(show, value)) + "]"
    return f"{value:.4g}" if isinstance(value, float) else str(value)


def change(cfg, base):
    diff = [f"{k}={show(v)}" for k, v in cfg.items() if base.get(k) != v]
    return " ".join(diff) or "(baseline)"


def describe(groups):
    """Each row's text: the first row's values of every key another row changes, then each row's changes."""
    base = groups[0][0]
    varying = [k for k in base if any(cfg.get(k) != base[k] for cfg, _ in groups)]
    first = " ".join(["(baseline)"] + [f"{k}={show(base[k])}" for k in varying])
    return [first] + [change(cfg, base) for cfg, _ in groups[1:]]


def mean_std(values):
    values = [v for v in values if v is not None]
    if not values:
        return "-"
    if len(values) == 1:
        return f"{values[0]:.4f}"
    return f"{statistics.mean(values):.4f} ± {statistics.stdev(values):.4f}"


def interval(values):
    s = stats.summary([v for v in values if v is not None])
    return f"[{s['ci_low']:.4f}, {s['ci_high']:.4f}]" if s["n"] >= 2 else "-"


def table(groups):
    # which weights the test measured: a column when any run averaged them (--ema), so rows say which
    weights = any(m["results"].get("tested_weights") == "ema" for _, members in groups for m in members)
    lines = ["| # | change from the first row | runs | test acc | test acc 95% interval | " +
             ("tested weights | " if weights else "") + "best val acc | steps | params | train time (s) | folder |",
             "|---|---|---|---|---|" + ("---|" if weights else "") + "---|---|---|---|---|"]
    for i, ((cfg, members), what) in enumerate(zip(groups, describe(groups)), 1):
        res = [m["results"] for m in members]
        tested = "/".join(sorted({r.get("tested_weights") or "raw" for r in res})) + " | " if weights else ""
        steps = "/".join(str(n) for n in sorted({r["steps"] for r in res}))  # seeds stopped early may differ
        stopped = " (stopped early)" if any(r.get("stopped_early") for r in res) else ""
        lines.append(f"| {i} | {what} | {len(members)} | {mean_std([r['test_acc'] for r in res])} | "
                     f"{interval([r['test_acc'] for r in res])} | {tested}"
                     f"{mean_std([r.get('best_val_acc') for r in res])} | {steps}{stopped} | {res[0]['params']:,} | "
                     f"{statistics.mean(r.get('fit_seconds') or r['wall_seconds'] for r in res):.0f} | "
                     f"{', '.join(os.path.basename(m['folder']) for m in members)} |")
    return "\n".join(lines)


def rows_json(groups):
    """The table's rows as dicts for --json: what changes, the seeds, the pooled test accuracy, the weights tested."""
    out = []
    for (cfg, members), what in zip(groups, describe(groups)):
        accs = [m["results"]["test_acc"] for m in members]
        out.append(dict(change=what, config=cfg, runs=[m["folder"] for m in members],
                        seeds=[m["config"].get("seed") for m in members], test_acc=accs, test_acc_summary=stats.summary(accs),
                        tested_weights=sorted({m["results"].get("tested_weights") or "raw" for m in members})))
    return out


def provenance_section(runs):
    """Markdown saying in what the runs' provenance.json differ (None when they agree), and the differences."""
    records = [RunFolder(r["folder"]).read_provenance() for r in runs]
    diff = provenance.differences(records)
    if not diff:
        return None, diff
    lines = ["## The runs differ in provenance", "",
             "Numbers made with other code, software, hardware or data may differ for that reason alone.", "",
             "| item | value | runs |", "|---|---|---|"]
    for key, values in diff.items():
        shown = {}
        for run, value in zip(runs, values):
            shown.setdefault(str(value)[:80] if value is not None else "(none recorded)", []).append(
                os.path.basename(run["folder"]))
        for value, names in shown.items():
            lines.append(f"| {key} | {value.replace('|', '/')} | {', '.join(names)} |")
    return "\n".join(lines), diff


def incomplete_table(runs, root):
    lines = ["| run | steps | why |", "|---|---|---|"]
    for run in runs:
        steps = (run["results"] or {}).get("steps")
        if steps is None:  # no results.json: the last training step metrics.csv logged (its steps count from 0)
            steps = max((s[-1] + 1 for k, (s, _) in run["series"].items() if k.startswith(("train/", "val/"))),
                        default="-")
        lines.append(f"| {os.path.relpath(run['folder'], root)} | {steps} | {run['why'].replace('|', '/')} |")
    return "\n".join(lines)


def label(i, text, members):
    """A legend entry: the row number and its text (describe()), wrapped; the run folder's name when long."""
    lines = textwrap.wrap(f"{i}: {text}", LABEL_WIDTH, subsequent_indent="    ")
    if len(lines) > LABEL_LINES:
        lines = [f"{i}: {os.path.basename(members[0]['folder'])} (row {i} of the table)"]
    if len(members) > 1:
        lines.append(f"    mean ± std of {len(members)} seeds")
    return "\n".join(lines)


def curve(members, metric, smooth):
    """(steps, mean, std) of one metric over a group's runs, on the steps they all logged."""
    series = [m["series"][metric] for m in members if metric in m["series"]]
    if not series:
        return None
    steps = sorted(set.intersection(*(set(s) for s, _ in series)))
    if not steps:
        return None
    values = np.array([[dict(zip(*s))[t] for t in steps] for s in series])
    if smooth:  # trailing moving mean; the first points average what there is so far
        sums = np.cumsum(values, axis=1)
        sums[:, smooth:] = sums[:, smooth:] - sums[:, :-smooth]
        values = sums / np.minimum(np.arange(1, values.shape[1] + 1), smooth)
    return np.array(steps), values.mean(0), values.std(0)


def clip_top(curves, marks):
    """The loss axis's top: above every curve after its first SKIP_START of steps and every test mark, so
    the first steps' loss (often many times the rest) does not squash the curves. None: nothing to clip."""
    later = [m[int(len(m) * SKIP_START):] for _, m in curves if len(m)]
    if not later:
        return None
    top = max(max(float(v.max()) for v in later), max(marks, default=-np.inf))
    highest = max(float(m.max()) for _, m in curves if len(m))
    return top * 1.05 if highest > top * DWARF else None


def plot(groups, kind, path):
    """Train and validation panels, one colour (and dash) per row, a test star at each row's last step.
    Rows of very different lengths (1400 and 10000 steps) get a log step axis, so the short ones show.
    The legend sits right of the panels, and the figure grows to hold it."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, 2, figsize=(13, 5.2), sharey=True)
    colours, dashes = plt.get_cmap("tab10"), ("-", "--", ":")
    texts = describe(groups)
    lengths = [members[0]["results"]["steps"] for _, members in groups]
    drawn, marks = [], []
    for i, (cfg, members) in enumerate(groups):
        style = dict(color=colours(i % 10), ls=dashes[i // 10 % 3], lw=1.5)
        named = False  # the row's first curve carries its legend label
        for ax, split in zip(axes, ("train", "val")):
            got = curve(members, f"{split}/{kind}", SMOOTH if split == "train" else 0)
            if got is None:
                continue
            steps, mean, std = got
            ax.plot(steps + 1, mean, label=None if named else label(i + 1, texts[i], members), **style)
            named = True
            drawn.append((steps, mean))
            if len(members) > 1:
                ax.fill_between(steps + 1, mean - std, mean + std, color=style["color"], alpha=0.2, lw=0)
        tests = [m["results"].get(f"test_{kind}") for m in members]
        if all(t is not None for t in tests):
            marks.append(float(np.mean(tests)))
            axes[1].plot(lengths[i], marks[-1], "*", color=style["color"], ms=12, mec="black", mew=0.6)
    name = {"loss": "cross-entropy loss", "acc": "accuracy"}[kind]
    axes[0].set_title(f"train (moving mean of {SMOOTH} logged steps)")
    axes[1].set_title("validation (★ = the run's test result, drawn at its last step)")
    for ax in axes:
        ax.set_xlabel("step" + (" (log scale)" if max(lengths) >= 4 * min(lengths) else ""))
        if max(lengths) >= 4 * min(lengths):
            ax.set_xscale("log")
        ax.grid(alpha=0.3, which="both")
    top = clip_top(drawn, marks) if kind == "loss" else None
    if top is not None:
        axes[0].set_ylim(top=top)
    axes[0].set_ylabel(name + (" (axis clipped: the first steps run off its top)" if top is not None else ""))
    fig.suptitle(name)
    fig.legend(loc="upper left", bbox_to_anchor=(1.0, 0.93), fontsize=8.5, frameon=False, labelspacing=0.8)
    fig.tight_layout()
    fig.savefig(path, dpi=110, bbox_inches="tight")  # tight: the legend outside the axes is never cut off
    plt.close(fig)


def study_section(root):
    """The search's summary when root is a study folder (sweeps/search.py's journal in it), else None;
    and {run folder: why} for its trials that are not complete."""
    from sweeps import study as studies

    journal = os.path.join(root, studies.STUDY_FILE)
    if not os.path.isfile(journal):
        return None, {}
    import optuna

    optuna.logging.set_verbosity(optuna.logging.WARNING)
    study = studies.load(journal)
    trials = study.get_trials(deepcopy=False)
    notes = {}  # run folder -> why it is not a row, as the study knows it (pruned, running, failed)
    for t in trials:  # in trial order: a retry (a later trial in the same folder) wins
        if "run_dir" not in t.user_attrs:
            continue
        folder = os.path.normpath(os.path.join(root, t.user_attrs["run_dir"]))
        if t.state == optuna.trial.TrialState.COMPLETE:
            notes.pop(folder, None)
            continue
        why = {"PRUNED": f"{t.user_attrs.get('status')}: not in the search's top at that validation",
               "RUNNING": f"trial {t.number} is running (worker {(t.user_attrs.get('worker') or {}).get('id')})",
               "WAITING": f"trial {t.number} waits for a worker to continue it",
               "FAIL": f"trial {t.number} failed: {t.user_attrs.get('status')}: {t.user_attrs.get('reason')}"}
        notes[folder] = why[t.state.name]
    states = [t.state.name.lower() for t in trials]
    lines = [f"## Search: study {study.study_name}", "",
             f"{len(trials)} trials: " + ", ".join(f"{states.count(s)} {s}" for s in sorted(set(states))) + "."]
    done = [t for t in trials if t.state == optuna.trial.TrialState.COMPLETE]
    if done:
        best = study.best_trial
        metric = study.user_attrs["sweep"]["metric"]
        lines += ["", f"Best trial: {best.number} ({best.user_attrs.get('run_dir')}), {metric['name']} "
                      f"{best.value:.4f} ({metric['goal']}).", "", "| parameter | value |", "|---|---|"]
        lines += [f"| {k} | {show(v)} |" for k, v in best.params.items()]
    try:
        importances = optuna.importance.get_param_importances(study)
    except (ValueError, RuntimeError) as e:
        lines += ["", f"Parameter importances: not computable ({str(e).splitlines()[0]})."]
    else:
        lines += ["", f"Parameter importances (Optuna's fANOVA over the {len(done)} completed trials; they sum "
                      "to 1):", "", "| parameter | importance |", "|---|---|"]
        lines += [f"| {k} | {v:.3f} |" for k, v in importances.items()]
    return "\n".join(lines), notes


def checked(args, inputs, out, first):
    """Exit with one line naming every problem of the input folders and the output folder `out`, where
    the file `first` must not exist already unless --overwrite."""
    out_flag = "--out" if args.out else "output"
    try:
        require(*inputs, (out_flag, out, OUT_FOLDER))
        require((out_flag, os.path.join(out, first), NEW_FILE, args.overwrite))
    except BadInput as e:
        sys.exit(f"error: {e}")


def compare_main(args):
    """--compare A B: the markdown table (stdout, or strict JSON with --json), compare.md/.json/.png in --out."""
    name = "-vs-".join(os.path.basename(os.path.normpath(r)) for r in args.compare)
    out = args.out or os.path.join(os.path.commonpath([os.path.abspath(r) for r in args.compare]), "report", f"compare-{name}")
    checked(args, [("--compare", root, FOLDER) for root in args.compare], out, "compare.md")
    sides = []
    for root in args.compare:
        try:
            sides.append(compare.side(find_runs(root), root))
        except (OSError, ValueError, KeyError) as e:
            sys.exit(f"error: {e}")
    result = compare.compare(*sides)
    os.makedirs(out, exist_ok=True)
    text = compare.markdown(result)
    with open(os.path.join(out, "compare.md"), "w") as f:
        f.write(f"# {args.compare[1]} (B) against {args.compare[0]} (A)\n\n{text}\n\n![per seed](compare.png)\n")
    with open(os.path.join(out, "compare.json"), "w") as f:
        f.write(strict_json(result) + "\n")
    compare.plot(result, os.path.join(out, "compare.png"))
    if args.json:
        print(strict_json(result))
    else:
        print(text)
        print(f"wrote {out}/compare.md, compare.json, compare.png")
    return out


@one_line_errors
def main(argv=None):
    p = Parser(prog=command_name("report.py", argv), description=__doc__.split("\n")[0])
    p.add_argument("runs", nargs="?", metavar="RUNS", help="folder holding run folders (searched recursively), or a search's study folder")
    p.add_argument("--out", help="where report.md and the PNGs go (default RUNS/report)")
    p.add_argument("--compare", nargs=2, metavar=("A", "B"),
                   help="two folders of run folders (e.g. two seed groups): is B's test accuracy different beyond seed noise?")
    p.add_argument("--json", action="store_true", help="print strict JSON on stdout instead of the markdown table")
    p.add_argument("--overwrite", action="store_true", help="replace an earlier report there (default: keep it, refuse)")
    args = p.parse_args(argv)
    if args.compare:
        if args.runs:
            p.error("give either RUNS or --compare A B")
        return compare_main(args)
    if not args.runs:
        p.error("give a folder of runs, or --compare A B")
    out = args.out or os.path.join(args.runs, "report")
    checked(args, [("RUNS", args.runs, FOLDER)], out, REPORT)
    try:
        runs = find_runs(args.runs)
        search, notes = study_section(args.runs)
    except (OSError, ValueError, KeyError, BadInput) as e:
        sys.exit(f"error: {e}")
    for run in runs:  # the study knows more: pruned (results.json says completed), running, retried
        run["why"] = notes.get(os.path.normpath(run["folder"]), run["why"])
    done, stopped = [r for r in runs if r["why"] is None], [r for r in runs if r["why"] is not None]
    os.makedirs(out, exist_ok=True)
    parts = [f"Runs under {args.runs}"]
    if done:
        groups = group_runs(done)
        text = table(groups)
        parts += [text, "![loss](loss.png)", "![accuracy](accuracy.png)"]
        plot(groups, "loss", os.path.join(out, "loss.png"))
        plot(groups, "acc", os.path.join(out, "accuracy.png"))
    else:
        text = "No run completed."
        parts.append(text)
    differs, diff = provenance_section(done)
    if differs:
        parts.append(differs)
    if stopped:
        parts += ["## Runs that did not complete", incomplete_table(stopped, args.runs)]
    if search:
        parts.append(search)
    with open(os.path.join(out, REPORT), "w") as f:
        f.write("\n\n".join(parts) + "\n")
    if args.json:
        print(strict_json(dict(rows=rows_json(groups) if done else [], provenance_differs=diff,
                               incomplete=[dict(folder=r["folder"], why=r["why"]) for r in stopped], out=out)))
        return out
    print(text)
    if diff:
        print(f"the runs differ in provenance: {', '.join(diff)} (see report.md)")
    if stopped:
        print(f"{len(stopped)} runs did not complete: see report.md")
    print(f"wrote {os.path.join(out, REPORT)}" + (", loss.png, accuracy.png" if done else ""))
    return out



def cli():
    """The installed command, cifar10-lab-report: main's return value is for Python callers, not an exit status."""
    main()


if __name__ == "__main__":
    main()
