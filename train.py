"""Train one model on CIFAR-10 and write a run folder.

    python train.py --model mlp --data-dir data            # the course's MLP, course defaults
    python train.py --preset mlp-best --data-dir data      # a named config from configs/
    python train.py --config my.yaml --lr 0.01             # a YAML file of flags; typed flags win
    python train.py --config runs/X/config.yaml --output-dir runs/Y   # reproduce run X
    python train.py --resume runs/X                        # continue a stopped run
    python train.py --preset fast --print-config           # the resolved config; nothing runs
    python train.py --preset seed-best --seeds 5           # seeds 42..46 in runs/NAME/s42 ... s46, pooled
    python train.py --preset mlp-best --find-lr            # learning-rate range test: a plot, a suggestion

config/ layers the settings, training/run.py runs them; the run folder gets config.yaml,
metrics.csv, checkpoints/ and results.json (runfolder/folder.py). Exit status: 0 completed,
1 bad data or folder, 2 bad settings (flags, config files, and paths that are missing, of the wrong
kind or cannot be written: all named in one line, before anything runs), 3 diverged, 128 + N stopped
by signal N.
"""
import sys

import yaml

from config.resolve import resolve
from runfolder import one_line_errors
from training import console

# Ctrl-C before the first step (torch importing, the data loading); from the first step on, training.resume
# stops the run cleanly at a step boundary and says how to continue it.
NOT_BEGUN = "interrupted before training began, nothing trained or saved: run the same command again"


@one_line_errors(interrupted=NOT_BEGUN)  # and bad data, settings or folder: one line, status 1
def main(argv=None, callbacks=()):
    cfg, invocation = resolve(argv)
    if invocation.get("print_config"):
        print(yaml.safe_dump(cfg, sort_keys=False), end="")
        return cfg
    if invocation.get("seeds") and not invocation.get("smoke"):
        from training.seeds import run_group, seed_list

        sys.exit(run_group(sys.argv[1:] if argv is None else argv, cfg, seed_list(invocation["seeds"], cfg["seed"]),
                           invocation.get("per_device", 1)))
    from training.run import RunEnded, train  # torch and Lightning: only once the arguments are read

    try:
        if invocation.get("find_lr"):
            from training.lr_find import find_lr
            return find_lr(cfg, smoke=invocation.get("smoke", False))
        results = train(cfg, callbacks, smoke=invocation.get("smoke", False))
    except RunEnded as e:  # diverged or interrupted: results.json and one stderr line say so
        sys.exit(e.code)
    if console.is_lead():  # under DDP every rank gets here; one line per job
        where = "smoke test passed, nothing written" if invocation.get("smoke") else f"run {results['run_dir']}"
        print(f"test_acc {results['test_acc']:.4f}  test_loss {results['test_loss']:.4f}  {where}")
    return results



def cli():
    """The installed command, cifar10-lab-train: main's return value is for Python callers, not an exit status."""
    main()


if __name__ == "__main__":
    main()
