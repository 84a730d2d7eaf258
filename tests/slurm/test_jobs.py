"""The job scripts in slurm/ on a real one-node SLURM (slurm/local_cluster.sh): a 2-rank DDP job, a job
signalled with SIGUSR1 that requeues itself and resumes exactly, and a 3-task sweep array. CPU (gloo),
fixture data, tiny runs; the commands are the README's ("Clusters"). Where SLURM cannot start (not
installed, not root) the tests skip, with the reason, except under CI=true, where that is a failure.
"""
import csv
import glob
import json
import os
import shutil
import subprocess
import sys
import time

import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
SLURM_DIR = "/tmp/cifar10-lab-slurm"  # local_cluster.sh's default
TIMEOUT = 300  # seconds a job may take, queueing included


@pytest.fixture(scope="module")
def env():
    """Start the local cluster (or find it running; then it stays up); the environment sbatch and the jobs need."""
    why, start = None, None
    if not all(shutil.which(cmd) for cmd in ("slurmctld", "slurmd", "munged", "sbatch")):
        why = "SLURM is not installed (apt-get install -y slurmd slurmctld munge)"
    elif os.geteuid() != 0:
        why = "starting a local SLURM needs root"
    else:
        start = subprocess.run([os.path.join(ROOT, "slurm", "local_cluster.sh"), "start"], capture_output=True,
                               text=True, env={**os.environ, "LOCAL_SLURM_DIR": SLURM_DIR}, timeout=180)
        if start.returncode:
            why = f"local SLURM did not start: {(start.stderr or start.stdout).strip()[-400:]}"
    if why:
        if os.environ.get("CI"):
            pytest.fail(why)
        pytest.skip(why)
    # The jobs run this interpreter (sbatch passes the environment on) and train on fixture data.
    path = f"{os.path.dirname(sys.executable)}:{os.environ['PATH']}"
    yield {**os.environ, "SLURM_CONF": f"{SLURM_DIR}/slurm.conf", "PATH": path}
    if "already running" not in start.stdout:
        subprocess.run([os.path.join(ROOT, "slurm", "local_cluster.sh"), "stop"], env={**os.environ, "LOCAL_SLURM_DIR": SLURM_DIR})


def tiny(cifar_dir, steps=40, eval_every=20):
    return ["--data-dir", cifar_dir, "--val-size", "50", "--batch-size", "16", "--eval-batch-size", "64",
            "--max-steps", str(steps), "--eval-every", str(eval_every), "--accelerator", "cpu", "--logger", "csv"]


def sbatch(env, tmp_path, args):
    """Submit from the repository root, as the README does; the log goes to tmp_path."""
    out = subprocess.run(["sbatch", "--parsable", f"--output={tmp_path}/slurm-%j.out", *args], cwd=ROOT, env=env,
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


def read(path):
    return open(path).read() if os.path.exists(path) else ""


def results(run_dir):
    """results.json's metrics, and the last logged train and val loss (the best checkpoint may be early)."""
    with open(os.path.join(run_dir, "results.json")) as f:
        r = json.load(f)
    with open(os.path.join(run_dir, "metrics.csv")) as f:
        rows = list(csv.DictReader(f))
    last = {k: [row[k] for row in rows if row.get(k)][-1] for k in ("train/loss", "val/loss")}
    return {**{k: r[k] for k in ("test_acc", "test_loss", "best_val_acc", "steps")}, **last}


def test_ddp_two_ranks_one_result(env, cifar_dir, tmp_path):
    run_dir = tmp_path / "run"
    job = sbatch(env, tmp_path, ["--ntasks-per-node=2", "--gpus-per-node=2", "slurm/ddp.sbatch", "--devices", "2",
                                 *tiny(cifar_dir), "--output-dir", str(run_dir)])
    log = f"{tmp_path}/slurm-{job}.out"
    assert wait(env, job, log) == "COMPLETED", read(log)[-3000:]
    text = read(log)
    assert "distributed_backend=gloo" in text and "Starting with 2 processes" in text
    assert text.count("test_acc ") == 1  # the final line: rank zero only
    # one run folder with one config, one metrics.csv, one results.json and one checkpoint set
    assert sorted(p.name for p in tmp_path.iterdir() if p.is_dir()) == ["run"]
    assert {"config.yaml", "metrics.csv", "results.json"} <= set(os.listdir(run_dir))
    assert sorted(os.listdir(run_dir / "checkpoints")) == ["best-step40.ckpt", "last.ckpt"]
    assert results(run_dir)["steps"] == 40


def test_ddp_size_mismatch_fails_fast(env, cifar_dir, tmp_path):
    job = sbatch(env, tmp_path, ["--ntasks-per-node=2", "--gpus-per-node=2", "slurm/ddp.sbatch", "--devices", "3",
                                 *tiny(cifar_dir), "--output-dir", str(tmp_path / "run")])
    log = f"{tmp_path}/slurm-{job}.out"
    assert wait(env, job, log) == "FAILED"
    assert "make --devices equal --ntasks-per-node" in read(log)
    assert not os.path.exists(tmp_path / "run")  # stopped before train.py


def test_usr1_requeues_and_resumes_exactly(env, cifar_dir, tmp_path):
    """The signal SLURM sends 90 s before the time limit, sent now: the job saves, requeues, starts again
    in the same folder and ends with the metrics of a job that ran through."""
    flags = tiny(cifar_dir, steps=300, eval_every=25)
    plain = sbatch(env, tmp_path, ["slurm/train.sbatch", *flags, "--output-dir", str(tmp_path / "plain")])
    job = sbatch(env, tmp_path, ["slurm/train.sbatch", *flags, "--output-dir", str(tmp_path / "signalled")])
    log = f"{tmp_path}/slurm-{job}.out"
    deadline = time.time() + TIMEOUT
    while "step 25/300" not in read(log):  # training has started: the first validation line is out
        assert time.time() < deadline, read(log)[-2000:]
        time.sleep(0.05)
    subprocess.run(["scancel", "--signal=USR1", job], env=env, check=True)
    assert wait(env, job, log) == "COMPLETED", read(log)[-3000:]
    assert wait(env, plain) == "COMPLETED"
    text = read(log)
    assert "SIGUSR1 at step" in text and "requeued the job" in text, text[-3000:]
    assert "start 2" in text and "resuming from" in text  # the second start, which continued
    assert jobs(env, job)[0]["Restarts"] == "1"
    assert results(tmp_path / "signalled") == results(tmp_path / "plain")


def test_array_runs_one_config_per_task(env, cifar_dir, tmp_path):
    sweep = tmp_path / "tiny.yaml"
    sweep.write_text("name: tiny\nprogram: train.py\nmethod: grid\n"
                     "parameters:\n  model: {value: mlp}\n  seed: {values: [1, 2, 3]}\n")
    out = subprocess.run(["sbatch", "--parsable", f"--output={tmp_path}/slurm-%A_%a.out", "--array=0-2",
                          "slurm/array.sbatch", str(sweep), *tiny(cifar_dir, steps=10, eval_every=10)],
                         cwd=ROOT, env={**env, "SWEEP_OUT": str(tmp_path / "runs")}, capture_output=True, text=True,
                         check=True)
    job = out.stdout.strip()
    assert wait(env, job) == "COMPLETED"
    logs = sorted(glob.glob(f"{tmp_path}/slurm-{job}_*.out"))
    assert len(logs) == 3
    runs = sorted(glob.glob(str(tmp_path / "runs" / "tiny-*" / "results.json")))
    seeds = sorted(json.load(open(r))["seed"] for r in runs)
    assert [os.path.basename(os.path.dirname(r)) for r in runs] == ["tiny-000", "tiny-001", "tiny-002"]
    assert seeds == [1, 2, 3]
