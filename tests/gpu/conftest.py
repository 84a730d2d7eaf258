"""GPU tests: each module here is marked `gpu` and skipped where there is no CUDA GPU.

    python -m pytest -m gpu          # on a machine with a GPU; bench.gpu runs this as its first part
"""
import pytest


@pytest.fixture
def gpu_args(cifar_dir, tmp_path):
    """Flags for a seconds-long train.py run on the GPU, on the fixture data, writing into tmp_path/run."""
    return ["--data-dir", cifar_dir, "--output-dir", str(tmp_path / "run"), "--eval-batch-size", "50",
            "--accelerator", "gpu", "--devices", "1", "--logger", "csv"]


def train_losses(run_dir):
    """The per-step train/loss column of a run's metrics.csv."""
    import csv

    from runfolder.folder import RunFolder

    with open(RunFolder(run_dir).metrics_path) as f:
        return [float(r["train/loss"]) for r in csv.DictReader(f) if r.get("train/loss")]
