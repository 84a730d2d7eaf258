"""DDP over the local SLURM's two nodes (n1 and n2: two slurmd daemons on this machine), one rank per
node as on a cluster with one GPU per node: the job completes with world size 2 and one run folder,
the two ranks end with the same weights from different data (the gradients are all-reduced), a job
signalled with SIGUSR1 is requeued and resumes on both nodes exactly, and a --num-nodes that is not
the job's stops before training. CPU (gloo), fixture data; the commands are docs/clusters.md's."""
import json
import shlex
import subprocess
from types import SimpleNamespace

import pytest

from tests.slurm.cluster import jobs, read, results, sbatch, staged_left, tiny, wait, wait_for
from tests.slurm.rank_weights import weights_digest
from runfolder import checkpoint
from runfolder.folder import RunFolder

# --cpus-per-task as on a real cluster: slurm/common.sh hands it on to srun (SRUN_CPUS_PER_TASK)
NODES_2 = ["--nodes=2", "--ntasks-per-node=1", "--gpus-per-node=1", "--cpus-per-task=1"]
DDP_2 = [*NODES_2, "slurm/ddp.sbatch", "--devices", "1", "--num-nodes", "2"]
STEPS, EVAL_EVERY = 300, 25  # long enough that a signal sent at the first validation lands mid-run


@pytest.fixture(scope="module")
def plain(env, cifar_dir, tmp_path_factory):
    """A 2-node job left alone, run once for the tests that need one."""
    out = tmp_path_factory.mktemp("plain")
    job = sbatch(env, out, [*DDP_2, *tiny(cifar_dir, STEPS, EVAL_EVERY), "--output-dir", str(out / "run")])
    log = f"{out}/slurm-{job}.out"
    return SimpleNamespace(job=job, log=log, dir=out, run_dir=out / "run", state=wait(env, job, log))


def test_two_nodes_world_size_two_one_run_folder(plain, scratch):
    text = read(plain.log)
    assert plain.state == "COMPLETED", text[-3000:]
    assert "start 1 on n[1-2]: 2 node(s) x 1 rank(s)" in text
    assert "GLOBAL_RANK: 0, MEMBER: 1/2" in text and "GLOBAL_RANK: 1, MEMBER: 2/2" in text  # Lightning's, per rank
    assert text.count("test_acc ") == 1  # the final line: rank zero only
    assert sorted(p.name for p in plain.dir.iterdir() if p.is_dir()) == ["run"]
    assert RunFolder(str(plain.run_dir)).read_results()["steps"] == STEPS
    # staged once per node into the job's own folder, removed on both at the end
    assert f"to {scratch}/cifar10-{plain.job} on 2 node(s)" in text
    assert f"removed {scratch}/cifar10-{plain.job} on 2 node(s)" in text
    assert staged_left(scratch) == []


def test_gradients_are_all_reduced(env, cifar_dir, tmp_path):
    """Each rank trains on its own shard; with the gradients averaged over both they still end with
    identical weights, bit for bit, and those are the weights rank 0 saved."""
    run_dir = tmp_path / "run"
    train = ["python", "tests/slurm/rank_weights.py", str(tmp_path / "ranks"), "--devices", "1", "--num-nodes", "2",
             *tiny(cifar_dir, steps=20, eval_every=20), "--output-dir", str(run_dir)]
    job = sbatch(env, tmp_path, [*NODES_2, "--wrap", "srun " + shlex.join(train)])
    log = f"{tmp_path}/slurm-{job}.out"
    assert wait(env, job, log) == "COMPLETED", read(log)[-3000:]
    ranks = [json.load(open(tmp_path / "ranks" / f"rank{r}.json")) for r in (0, 1)]
    assert [r["world_size"] for r in ranks] == [2, 2]
    assert sorted(r["node"] for r in ranks) == ["n1", "n2"]  # one rank on each node
    assert ranks[0]["batches"] != ranks[1]["batches"]        # different data...
    assert ranks[0]["initial"] == ranks[1]["initial"]        # ...from the same start...
    assert ranks[0]["weights"] != ranks[0]["initial"]        # ...trained...
    assert ranks[0]["weights"] == ranks[1]["weights"]        # ...to the same weights
    saved = checkpoint.read(RunFolder(str(run_dir)).last_path)["state_dict"]
    assert weights_digest(saved) == ranks[0]["weights"]


def test_two_node_usr1_requeues_and_resumes_exactly(env, plain, scratch, cifar_dir, tmp_path):
    """The signal SLURM sends 90 s before the time limit, sent now: both ranks save at the same step, the
    job requeues, starts again on both nodes in the same folder and ends as the job left alone did."""
    job = sbatch(env, tmp_path, [*DDP_2, *tiny(cifar_dir, STEPS, EVAL_EVERY), "--output-dir", str(tmp_path / "run")])
    log = f"{tmp_path}/slurm-{job}.out"
    wait_for(log, f"step {EVAL_EVERY}/{STEPS}")  # training has started: the first validation line is out
    subprocess.run(["scancel", "--signal=USR1", job], env=env, check=True)
    assert wait(env, job, log) == "COMPLETED", read(log)[-3000:]
    text = read(log)
    assert "SIGUSR1 at step" in text and "requeued the job" in text, text[-3000:]
    assert "start 2 on n[1-2]: 2 node(s) x 1 rank(s)" in text and "continuing from" in text
    assert text.count("GLOBAL_RANK: 1, MEMBER: 2/2") == 2  # both starts had both ranks
    assert jobs(env, job)[0]["Restarts"] == "1"
    # the requeue ended the job's steps: the staged copy went then, on each node, and again at the end
    assert text.count(f"removed {scratch}/cifar10-{job} on n") == 2
    assert staged_left(scratch) == []
    assert plain.state == "COMPLETED"
    assert results(tmp_path / "run") == results(plain.run_dir)


@pytest.mark.parametrize("num_nodes", [1, 3])
def test_num_nodes_mismatch_stops_before_training(env, cifar_dir, tmp_path, num_nodes):
    job = sbatch(env, tmp_path, [*NODES_2, "slurm/ddp.sbatch", "--devices", "1", "--num-nodes", str(num_nodes),
                                 *tiny(cifar_dir), "--output-dir", str(tmp_path / "run")])
    log = f"{tmp_path}/slurm-{job}.out"
    assert wait(env, job, log) == "FAILED"
    (line,) = read(log).splitlines()
    assert f"--num-nodes {num_nodes}" in line and "2 node(s)" in line and "--num-nodes equal --nodes" in line
    assert not (tmp_path / "run").exists()  # stopped before train.py
