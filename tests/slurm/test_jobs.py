"""The job scripts in slurm/ on one node of the local SLURM (slurm/local_cluster.sh, tests/slurm/conftest.py):
a 2-rank DDP job, a job signalled with SIGUSR1 that requeues itself and resumes exactly, and a 3-task
sweep array. CPU (gloo), fixture data, tiny runs; the commands are docs/clusters.md's.
"""
import glob
import json
import os
import subprocess

from tests.slurm.cluster import ROOT, jobs, read, results, sbatch, staged_left, tiny, wait, wait_for
from runfolder.folder import BEST, CHECKPOINTS, CONFIG, LAST, METRICS_CSV, RESULTS


def test_ddp_two_ranks_one_result(env, scratch, cifar_dir, tmp_path):
    run_dir = tmp_path / "run"
    job = sbatch(env, tmp_path, ["--ntasks-per-node=2", "--gpus-per-node=2", "slurm/ddp.sbatch", "--devices", "2",
                                 *tiny(cifar_dir), "--output-dir", str(run_dir)])
    log = f"{tmp_path}/slurm-{job}.out"
    assert wait(env, job, log) == "COMPLETED", read(log)[-3000:]
    text = read(log)
    assert "GLOBAL_RANK: 0, MEMBER: 1/2" in text and "GLOBAL_RANK: 1, MEMBER: 2/2" in text  # Lightning's, per rank
    assert "start 1 on n1: 1 node(s) x 2 rank(s)" in text or "start 1 on n2: 1 node(s) x 2 rank(s)" in text
    assert text.count("test_acc ") == 1  # the final line: rank zero only
    # one run folder with one config, one metrics.csv, one results.json and one checkpoint set
    assert sorted(p.name for p in tmp_path.iterdir() if p.is_dir()) == ["run"]
    assert {CONFIG, METRICS_CSV, RESULTS} <= set(os.listdir(run_dir))
    assert sorted(os.listdir(run_dir / CHECKPOINTS)) == [BEST.format(step=40) + ".ckpt", LAST]
    assert results(run_dir)["steps"] == 40
    # the data was staged into the job's own folder, and removed at its end
    assert f"to {scratch}/cifar10-{job} on 1 node(s)" in text and f"removed {scratch}/cifar10-{job}" in text
    assert staged_left(scratch) == []


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
    wait_for(log, "step 25/300")  # training has started: the first validation line is out
    subprocess.run(["scancel", "--signal=USR1", job], env=env, check=True)
    assert wait(env, job, log) == "COMPLETED", read(log)[-3000:]
    assert wait(env, plain) == "COMPLETED"
    text = read(log)
    assert "SIGUSR1 at step" in text and "requeued the job" in text, text[-3000:]
    assert "start 2" in text and "continuing from" in text  # the second start, which continued
    assert jobs(env, job)[0]["Restarts"] == "1"
    assert results(tmp_path / "signalled") == results(tmp_path / "plain")


def test_array_runs_one_config_per_task(env, scratch, cifar_dir, tmp_path):
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
    assert staged_left(scratch) == []  # each task staged its own copy and removed it


def test_array_packs_several_configs_per_task(env, scratch, cifar_dir, tmp_path):
    sweep = tmp_path / "packed.yaml"
    sweep.write_text("name: packed\nprogram: train.py\nmethod: grid\n"
                     "parameters:\n  model: {value: mlp}\n  seed: {values: [1, 2, 3]}\n")
    out = subprocess.run(["sbatch", "--parsable", f"--output={tmp_path}/slurm-%A_%a.out", "--array=0-1",
                          "slurm/array.sbatch", str(sweep), "--per-device", "2", *tiny(cifar_dir, steps=10, eval_every=10)],
                         cwd=ROOT, env={**env, "SWEEP_OUT": str(tmp_path / "runs")}, capture_output=True, text=True,
                         check=True)
    job = out.stdout.strip()
    assert wait(env, job) == "COMPLETED"  # task 0: configs 0 and 1 at once; task 1: config 2
    runs = sorted(glob.glob(str(tmp_path / "runs" / "packed-*" / "results.json")))
    assert [os.path.basename(os.path.dirname(r)) for r in runs] == ["packed-000", "packed-001", "packed-002"]
    assert sorted(json.load(open(r))["seed"] for r in runs) == [1, 2, 3]
    assert all(json.load(open(r))["status"] == "completed" for r in runs)
    assert len(glob.glob(str(tmp_path / "runs" / "packed-*.log"))) == 3  # each packed run's own output
    assert staged_left(scratch) == []
