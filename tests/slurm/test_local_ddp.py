"""DDP without SLURM: Lightning starts the other ranks itself by running train.py again, and they must
find rank 0's run folder, whose default name holds a start time (train.default_run_name)."""
import json
import os
import subprocess
import sys

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


def test_two_local_ranks_share_one_run_folder(cifar_dir, tmp_path):
    env = {k: v for k, v in os.environ.items() if not k.startswith("SLURM_")}  # not inside a job
    args = ["--data-dir", cifar_dir, "--val-size", "50", "--batch-size", "16", "--eval-batch-size", "64",
            "--max-steps", "4", "--eval-every", "4", "--accelerator", "cpu", "--devices", "2", "--logger", "csv"]
    done = subprocess.run([sys.executable, os.path.join(ROOT, "train.py"), *args], cwd=tmp_path, env=env,
                          capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-2000:]
    assert "GLOBAL_RANK: 1, MEMBER: 2/2" in done.stdout + done.stderr  # Lightning's line for the second rank
    (folder,) = os.listdir(tmp_path / "runs")  # rank 1 made no folder of its own
    assert json.load(open(tmp_path / "runs" / folder / "results.json"))["steps"] == 4
    assert done.stdout.count("test_acc ") == 1
