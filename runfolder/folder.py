"""A run folder: the one place that names its files, reads and writes them, and finds its checkpoints.

    runs/X/
      config.yaml     the resolved config; a valid `--config` (train.py --config runs/X/config.yaml)
      metrics.csv     every logged metric, one row per step
      hparams.yaml    the model's and data's arguments (Lightning's CSVLogger writes it)
      results.json    status (completed, diverged, interrupted), test_acc, ... : strict JSON
      provenance.json code (git commit, dirty), versions, device, host, data checksums, command line;
                      `earlier`: the records of the starts before a continue (training/provenance.py)
      code-<sha>.diff the uncommitted changes a start ran with, when the tree was dirty (<sha>: the first
                      12 hex digits of provenance.json's diff_sha256)
      checkpoints/    last.ckpt, and best-stepN.ckpt (the best val/acc so far; one file under both names
                      when that validation was the last save)
      run.lock        held by the run writing here (see lock.py)
      eval/           what evaluate.py writes: metrics.json, confusion.png, calibration.png, mistakes.png
      profile/        --profile's reports: fit-report.txt, test-report.txt (and the pytorch profiler's traces)
      lr_find.png, lr_find.json            --find-lr's plot and curve (written before the run, if at all)
      wandb/, wandb_id    the W&B run files and the run's W&B id, when W&B is on

Paths inside a folder are always taken relative to the folder itself, so a moved or copied folder
finds its own checkpoints, never the original's. This module imports no torch: reading a config or a
results file stays fast.
"""
import glob
import json
import math
import os

import yaml

from .errors import BadInput

CONFIG = "config.yaml"
METRICS_CSV = "metrics.csv"
RESULTS = "results.json"
PROVENANCE = "provenance.json"
DIFF = "code-{sha}.diff"  # {sha}: the diff's sha256, first 12 hex digits
CHECKPOINTS = "checkpoints"
LAST = "last.ckpt"
BEST = "best-step{step}"  # ModelCheckpoint's filename pattern for the best-val checkpoint (.ckpt added)
HPC = "hpc_ckpt_*.ckpt"   # what Lightning's SLURM requeue handler saves, in the folder itself
PARTIAL = "{name}.{pid}.partial"  # a checkpoint being written beside its name, renamed over it once whole
LOCK = "run.lock"
EVAL = "eval"
EVAL_METRICS, CONFUSION, CALIBRATION, MISTAKES = "metrics.json", "confusion.png", "calibration.png", "mistakes.png"
PROFILE = "profile"       # --profile's folder: Lightning's {stage}-report.txt (fit-, test-), pytorch's traces
PROFILE_REPORT = "report"
LR_FIND_PLOT = "lr_find.png"   # --find-lr's plot, and its curve and suggestion; a folder holding only these
LR_FIND_DATA = "lr_find.json"  # may take a new run (the one trained with the lr they suggest)
WANDB_ID = "wandb_id"
SEED_DIR = "s{seed}"  # a seed group's run folders: GROUP/s42, GROUP/s43, ... (training/seeds.py)
# A --ema run's checkpoints hold the averaged weights as their state_dict and the raw ones under RAW_STATE
# (Lightning's WeightAveraging's key); results.json's tested_weights and load_run's model.weights say which
RAW_STATE = "current_model_state"
WEIGHTS_EMA, WEIGHTS_RAW = "ema", "raw"


class RunFolder:
    def __init__(self, path):
        self.path = path

    def __repr__(self):
        return f"RunFolder({self.path!r})"

    def file(self, *names):
        return os.path.join(self.path, *names)

    @property
    def config_path(self):
        return self.file(CONFIG)

    @property
    def metrics_path(self):
        return self.file(METRICS_CSV)

    @property
    def results_path(self):
        return self.file(RESULTS)

    @property
    def checkpoint_dir(self):
        return self.file(CHECKPOINTS)

    @property
    def last_path(self):
        return self.file(CHECKPOINTS, LAST)

    @property
    def lock_path(self):
        return self.file(LOCK)

    @property
    def eval_dir(self):
        return self.file(EVAL)

    def has_config(self):
        return os.path.isfile(self.config_path)

    def problem(self):
        """Why this path is no run folder (a few words, without the path), or None."""
        if not os.path.isdir(self.path):
            return "is a file, not a run folder" if os.path.exists(self.path) else "no such folder"
        return None if self.has_config() else f"no {CONFIG} there, so not a run folder"

    # config.yaml

    def read_config(self):
        """The saved config as a dict; BadInput when missing, not YAML, or not a mapping."""
        if self.problem():
            raise BadInput(f"{self.path}: {self.problem()}")
        config = read_yaml(self.config_path)
        if not isinstance(config, dict):
            raise BadInput(f"{self.config_path}: expected a mapping of settings, found {type(config).__name__}")
        return config

    def write_config(self, config):
        _write_atomic(self.config_path, yaml.safe_dump(config, sort_keys=False))

    # results.json

    def read_results(self):
        """results.json as a dict, or None when the run has not written one."""
        if not os.path.isfile(self.results_path):
            return None
        try:
            with open(self.results_path) as f:
                results = json.load(f)
        except (OSError, ValueError) as e:
            raise BadInput(f"{self.results_path}: not valid JSON ({e})") from None
        if not isinstance(results, dict):
            raise BadInput(f"{self.results_path}: expected a JSON object, found {type(results).__name__}")
        return results

    def write_results(self, results):
        _write_atomic(self.results_path, strict_json(results) + "\n")

    # provenance.json and its diffs

    @property
    def provenance_path(self):
        return self.file(PROVENANCE)

    def read_provenance(self):
        """provenance.json as a dict, or None when the run has none (or it is unreadable)."""
        try:
            with open(self.provenance_path) as f:
                return json.load(f)
        except (OSError, ValueError):
            return None

    def diff_path(self, record):
        """The diff file of a provenance record, or None when its tree was clean."""
        sha = record.get("diff_sha256")
        return self.file(DIFF.format(sha=sha[:12])) if sha else None

    def write_provenance(self, record, diff=None):
        """Write this start's record (and its diff), keeping the earlier starts' records under `earlier`."""
        old = self.read_provenance()
        if old:
            record = {**record, "earlier": [*old.pop("earlier", []), old]}
        if diff:
            _write_atomic(self.diff_path(record), diff)
        _write_atomic(self.provenance_path, strict_json(record) + "\n")

    # checkpoints

    def best_checkpoint(self):
        """The best-val checkpoint (the newest, should there be several), or None."""
        paths = glob.glob(self.file(CHECKPOINTS, BEST.format(step="*") + ".ckpt"))
        return max(paths, key=os.path.getmtime, default=None)

    def partial_checkpoints(self):
        """Checkpoint writes a killed process left unfinished (runfolder.checkpoint.write's temporary files)."""
        pattern = PARTIAL.format(name="*", pid="*")
        return sorted(glob.glob(self.file(CHECKPOINTS, pattern)) + glob.glob(self.file(pattern)))

    def resume_candidates(self):
        """Checkpoints a run could continue from, newest first: checkpoints/last.ckpt and hpc_ckpt_*.ckpt."""
        paths = glob.glob(self.file(HPC)) + glob.glob(self.last_path)
        return sorted(paths, key=os.path.getmtime, reverse=True)

    def checkpoint(self, which="best"):
        """The checkpoint file for `which`: best (the one results.json's test_acc was measured on: the
        best-val checkpoint, else the final weights), last, or a path. BadInput if there is none."""
        if which == "best":
            found = self.best_checkpoint() or (self.last_path if os.path.isfile(self.last_path) else None)
        elif which == "last":
            found = self.last_path if os.path.isfile(self.last_path) else None
        else:
            found = which if os.path.isfile(which) else None
            if found is None:
                raise BadInput(f"checkpoint {which}: no such file")
        if found is None:
            raise BadInput(f"{self.path}: no {which} checkpoint in {CHECKPOINTS}/")
        return found


def read_yaml(path, error=BadInput):
    """A YAML file's contents; `error` with one line naming the file when it cannot be read or parsed."""
    try:
        with open(path) as f:
            return yaml.safe_load(f)
    except OSError as e:
        raise error(f"{path}: cannot read ({e.strerror})") from None
    except yaml.YAMLError as e:
        raise error(f"{path}: not valid YAML ({str(e).splitlines()[0]})") from None


def strict_json(obj):
    """JSON that strict parsers accept: a NaN or infinity becomes null (callers say why beside it)."""
    def clean(v):
        if isinstance(v, float) and not math.isfinite(v):
            return None
        if isinstance(v, dict):
            return {k: clean(x) for k, x in v.items()}
        if isinstance(v, (list, tuple)):
            return [clean(x) for x in v]
        return v
    return json.dumps(clean(obj), indent=2, allow_nan=False)


def _write_atomic(path, text):
    """Write via a temporary file and a rename: a crash mid-write never leaves half a file."""
    tmp = f"{path}.tmp{os.getpid()}"
    with open(tmp, "w") as f:
        f.write(text)
    os.replace(tmp, path)
