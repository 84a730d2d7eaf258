"""Search a W&B sweep file's parameters with Optuna, on one machine or many workers, with no W&B server.

    python sweeps/search.py sweeps/mlp_search.yaml --trials 24 -- --data-dir data
    python sweeps/search.py sweeps/mlp_search.yaml --trials 24 --study runs/mlp_search/study.log -- --data-dir data
    python report.py runs/mlp_search           # table, curves, the best trial and the parameter importances
    python sweeps/search.py sweeps/mlp_search.yaml --trials 24 --per-device 4 -- --data-dir data  # 4 workers per device

The sweep file is the one `wandb sweep` takes (sweeps/sweep_file.py reads it): method grid, random or
bayes (Optuna's TPE), the parameters' values or distributions, the metric, and early_terminate
(hyperband: Optuna's successive halving on val/acc at each validation). Each trial is an ordinary run
folder, STUDY_DIR/trial-NNN with --group set to the study's name (the study folder's name), trained
in this process so the pruner can stop it. Flags after `--` go to every trial; they may not set a
searched parameter.

Every worker runs the same line (one per SLURM array task, say); they share the study through its
journal file, --study (default runs/<sweep name>/study.log). The first creates the study with its
--trials trials; each worker then takes the next one until none is left, and waits for the others'
running trials before it exits, so that one whose worker died is retried rather than lost
(sweeps/study.py: claiming, requeued tasks, heartbeats, retries).
--per-device K starts K such workers on each device (training/packing.py: each its share of the GPU's
memory, or of the cores), their output in STUDY_DIR/worker-J.log.
Exit status: 0 when the study has no trial left to run; 2 on a bad sweep file or option, before
anything starts; 128 + N when signal N stopped it (the trial continues when the task is requeued,
or in the next worker).
"""
import argparse
import math
import os
import sys
import time

if __package__ in (None, ""):  # run as `python sweeps/search.py`
    sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
from runfolder import BadInput  # noqa: E402
from sweeps import study as studies  # noqa: E402
from sweeps.sweep_file import load, params, resolve_quietly, train_args  # noqa: E402
from config.checks import OUT_FILE, Parser, require  # noqa: E402

PROG = "search.py"


def parse_args(argv):
    p = Parser(prog=PROG, description=__doc__.split("\n")[0], epilog=__doc__.split("\n\n", 2)[2],
               formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("sweep", help="a W&B sweep YAML (method grid, random or bayes)")
    p.add_argument("--trials", type=int, help="trials in the study (default: a grid's size; required otherwise); "
                                              "fixed when the study is created")
    p.add_argument("--study", help="the study's journal file; trials go beside it (default runs/<sweep name>/"
                                   f"{studies.STUDY_FILE})")
    p.add_argument("--grace", type=float, default=studies.GRACE_S,
                   help="seconds without a heartbeat before a trial's worker counts as gone and the trial is "
                        f"retried (default {studies.GRACE_S}); fixed when the study is created")
    p.add_argument("--per-device", type=int, default=1, metavar="K",
                   help="start K workers on each device, sharing it (default 1: this process is the worker)")
    argv = sys.argv[1:] if argv is None else list(argv)
    cut = argv.index("--") if "--" in argv else len(argv)
    args, extra = p.parse_args(argv[:cut]), argv[cut + 1:]
    return p, args, extra


def runner_flags(study_dir, run_dir):
    name = os.path.basename(os.path.abspath(study_dir))
    return ["--output-dir", os.path.join(study_dir, run_dir), "--run-name", f"{name}-{run_dir}", "--group", name]


def preflight(sweep, study_dir, extra):
    """Refuse, before anything starts, what no trial could run: a flag after -- that sets a searched
    parameter, or a corner of the space (every first value and minimum; every last value and maximum)
    that train.py rejects."""
    searched = {p.name.replace("-", "_") for p in params(sweep) if p.values is None or len(p.values) > 1}
    for word in extra:
        dest = word[2:].split("=")[0].replace("-", "_") if word.startswith("--") else None
        if dest in searched or dest and dest.startswith("no_") and dest[3:] in searched:
            raise BadInput(f"{word.split('=')[0]} after -- sets a parameter the sweep searches; leave it out")
    key, watched, _ = studies.metric(sweep)
    for end in (0, -1):
        values = {p.name: p.values[end] if p.values is not None else p.value((p.low, p.high)[end]) for p in params(sweep)}
        cfg = resolve_quietly(train_args(sweep, values) + runner_flags(study_dir, "trial-check") + extra)
        if cfg["devices"] * cfg["num_nodes"] > 1:
            raise BadInput("a trial runs on one device (--devices 1 --num-nodes 1): the pruner reports from one "
                             "process; run more workers instead")
        if cfg["val_size"] == 0:
            raise BadInput(f"--val-size 0: the search needs a validation split ({watched} is its signal)")


def run_trial(claimed, sweep, study_dir, extra):
    """Train one claimed trial and record how it ended. Returns None, or the exit status when a signal stopped it."""
    from optuna.trial import TrialState

    from training.run import DIVERGED_EXIT, RunEnded, train

    from sweeps.pruning import ReportToTrial

    trial = claimed.trial
    values = studies.suggest(trial, sweep)
    key, watched, _ = studies.metric(sweep)
    shown = " ".join(f"{k}={v:.4g}" if isinstance(v, float) else f"{k}={v}" for k, v in values.items()
                     if k in trial.params)
    print(f"trial {trial.number} -> {os.path.join(study_dir, claimed.run_dir)}"
          f"{' (resumed)' if claimed.resumed else ''}: {shown}", flush=True)
    try:
        cfg = resolve_quietly(train_args(sweep, values) + runner_flags(study_dir, claimed.run_dir) + extra)
        pruning = ReportToTrial(trial, watched, cfg["eval_every"])
        results = train(cfg, callbacks=[pruning])
    except RunEnded as e:
        if e.code == DIVERGED_EXIT:
            claimed.finish(TrialState.FAIL, status="diverged", reason=str(e))
            print(f"trial {trial.number}: diverged, recorded as failed ({e})", flush=True)
            return None
        claimed.stop()
        if not os.environ.get("SLURM_JOB_ID"):  # no requeue will resume it in place: hand it to the next worker
            studies.hand_back(claimed.study, claimed.storage, trial.number, "interrupted", str(e))
        print(f"trial {trial.number}: interrupted ({e}); it continues from its checkpoint later", flush=True)
        return e.code
    except BadInput as e:
        claimed.finish(TrialState.FAIL, status="refused", reason=str(e))
        print(f"trial {trial.number}: refused, recorded as failed: {e}", file=sys.stderr, flush=True)
        return None
    except Exception as e:  # a crash in one trial is that trial's failure, not the search's
        reason = f"{type(e).__name__}: {str(e).splitlines()[0] if str(e) else ''}"
        if not claimed.finish(TrialState.FAIL, status="crashed", reason=reason):
            reason += " (the trial had meanwhile been retried by another worker)"
        print(f"trial {trial.number}: crashed, recorded as failed: {reason}", file=sys.stderr, flush=True)
        return None
    value = results.get(key)
    if pruning.pruned_at is not None:
        state = TrialState.PRUNED
        status = f"pruned at step {pruning.pruned_at} ({watched} {pruning.value:.4f} at validation {pruning.iteration})"
    elif value is None or not math.isfinite(value):
        state, status = TrialState.FAIL, f"no finite {key} in results.json"
    else:
        state, status = TrialState.COMPLETE, "completed"
    if not claimed.finish(state, value, status=status, reason=None):
        status += "; not recorded: another worker had retried it meanwhile (no heartbeat within the grace period)"
    shown = f"{value:.4f}" if isinstance(value, float) else value  # 4 decimals, as every command prints metrics
    print(f"trial {trial.number}: {status}, {key} {shown}", flush=True)
    return None


def pack_workers(argv, per_device, study_dir):
    """K workers per device, each this same command without --per-device; the worst exit status."""
    from training import packing
    from training.seeds import strip_own_flags

    argv = sys.argv[1:] if argv is None else list(argv)
    cut = argv.index("--") if "--" in argv else len(argv)
    own = strip_own_flags(argv[:cut]) + argv[cut:]  # --per-device only before --
    n = per_device * max(1, len(packing.gpus()))
    jobs = [packing.Job([sys.executable, os.path.abspath(__file__), *own], log=os.path.join(study_dir, f"worker-{j}.log"),
                        name=f"worker {j}") for j in range(n)]
    codes = packing.run(jobs, per_device, say=lambda line: print(line, flush=True))
    return max(codes, default=0)


def main(argv=None):
    p, args, extra = parse_args(argv)
    try:
        sweep = load(args.sweep)
        n = args.trials
        if sweep["method"] == "grid":
            from sweeps.sweep_file import grid

            size = len(grid(sweep))
            n = size if n is None else n
            if n > size:
                raise BadInput(f"--trials {n}: the grid has only {size} configs")
        elif n is None:
            raise BadInput(f"--trials is required for method {sweep['method']}")
        if n < 1 or args.grace <= 0 or args.per_device < 1:
            raise BadInput("--trials, --grace and --per-device must be positive")
        journal = args.study or os.path.join("runs", sweep["name"], studies.STUDY_FILE)
        require(("--study" if args.study else "study", journal, OUT_FILE))  # an existing journal is joined
        study_dir = os.path.dirname(journal) or "."
        preflight(sweep, study_dir, extra)
        study, storage = studies.open_study(journal, sweep, n, args.grace)
    except BadInput as e:
        p.exit(2, f"{PROG}: error: {e}\n")
    if args.per_device > 1:
        return pack_workers(argv, args.per_device, study_dir)
    me = studies.worker_id()
    print(f"worker {me}: study {study.study_name} ({journal}), {study.user_attrs['trials']} trials", flush=True)
    ran, waiting = 0, False
    while True:
        claimed = studies.claim(study, storage, me, study_dir)
        if claimed is None:
            running = studies.others_running(study)
            if not running:
                break
            if not waiting:
                print(f"worker {me}: waiting for {len(running)} running trials of other workers "
                      "(one whose worker is gone is retried here)", flush=True)
            waiting = True
            time.sleep(min(30.0, study.user_attrs["grace"] / 4))  # a vanished worker's trial is retried once stale
            continue
        waiting = False
        code = run_trial(claimed, sweep, study_dir, extra)
        ran += 1
        if code is not None:
            return code
    states = [t.state.name.lower() for t in study.get_trials(deepcopy=False)]
    counts = ", ".join(f"{states.count(s)} {s}" for s in sorted(set(states)))
    print(f"worker {me}: ran {ran} trials; the study has none left to run ({counts})", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
