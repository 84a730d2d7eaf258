"""Submitting the job scripts to the local SLURM (slurm/local_cluster.sh) and reading what they leave."""
import csv
import json
import os
import shutil
import subprocess
import time

import pytest

from runfolder.folder import RunFolder

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
SLURM_DIR = "/tmp/cifar10-lab-slurm"  # local_cluster.sh's default
NODES = 2  # the cluster every test here shares; one-node jobs take one of them
TIMEOUT = 300  # seconds a job may take, queueing included
CLUSTER = os.path.join(ROOT, "slurm", "local_cluster.sh")


def start_cluster():
    """Start the local cluster with NODES nodes, or find it running. Returns (started, None) or (False, why not)."""
    if not all(shutil.which(cmd) for cmd in ("slurmctld", "slurmd", "munged", "sbatch")):
        return False, "SLURM is not installed (apt-get install -y slurmd slurmctld munge)"
    if os.geteuid() != 0:
        return False, "starting a local SLURM needs root"
    start = subprocess.run([CLUSTER, "start", "--nodes", str(NODES)], capture_output=True, text=True,
                           env={**os.environ, "LOCAL_SLURM_DIR": SLURM_DIR}, timeout=180)
    if start.returncode:
        return False, f"local SLURM did not start: {(start.stderr or start.stdout).strip()[-400:]}"
    return "already running" not in start.stdout, None


def stop_cluster():
    subprocess.run([CLUSTER, "stop"], env={**os.environ, "LOCAL_SLURM_DIR": SLURM_DIR})


def tiny(cifar_dir, steps=40, eval_every=20):
    return ["--data-dir", cifar_dir, "--val-size", "50", "--batch-size", "16", "--eval-batch-size", "64",
            "--max-steps", str(steps), "--eval-every", str(eval_every), "--accelerator", "cpu", "--logger", "csv"]


def sbatch(env, log_dir, args, log="slurm-%j.out"):
    """Submit from the repository root, as the docs do; the log goes to log_dir. Returns the job id."""
    out = subprocess.run(["sbatch", "--parsable", f"--output={log_dir}/{log}", *args], cwd=ROOT, env=env,
                         capture_output=True, text=True, check=True).stdout
    return out.strip().split(";")[0]


def jobs(env, job):
    """scontrol's record of a job: one dict of fields per job, or per task of an array."""
    out = subprocess.run(["scontrol", "show", "job", job], env=env, capture_output=True, text=True).stdout
    return [dict(kv.split("=", 1) for kv in record.split() if "=" in kv) for record in out.split("\n\n") if record.strip()]


def wait(env, job, log=None):
    """Wait until the job (every task of an array) has ended; return its final state(s), e.g. "COMPLETED"."""
    deadline = time.time() + TIMEOUT
    while time.time() < deadline:
        if not subprocess.run(["squeue", "-h", "-j", job], env=env, capture_output=True, text=True).stdout.strip():
            return ",".join(sorted({record["JobState"] for record in jobs(env, job)}))
        time.sleep(1)
    subprocess.run(["scancel", job], env=env)
    pytest.fail(f"job {job} still not done after {TIMEOUT}s" + (f"; log:\n{read(log)[-2000:]}" if log else ""))


def wait_for(log, text):
    """Wait until text appears in the log (a job's progress line)."""
    deadline = time.time() + TIMEOUT
    while text not in read(log):
        assert time.time() < deadline, f"no {text!r} after {TIMEOUT}s:\n{read(log)[-2000:]}"
        time.sleep(0.05)


def read(path):
    return open(path).read() if os.path.exists(path) else ""


def results(run_dir):
    """results.json's metrics, and the last logged train and val loss (the best checkpoint may be early)."""
    folder = RunFolder(str(run_dir))
    r = folder.read_results()
    with open(folder.metrics_path) as f:
        rows = list(csv.DictReader(f))
    last = {k: [row[k] for row in rows if row.get(k)][-1] for k in ("train/loss", "val/loss")}
    return {**{k: r[k] for k in ("test_acc", "test_loss", "best_val_acc", "steps")}, **last}


def staged_left(scratch):
    """What the jobs' data staging left in their $TMPDIR: should be nothing."""
    return sorted(name for name in os.listdir(scratch) if name.startswith("cifar10-"))
