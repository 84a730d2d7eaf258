"""No host read in a training step, except on log steps: at each model's own --log-every (its preset's), over
more than 100 steps with epoch ends and validations among them, with the progress bar (a terminal) or the
plain log lines (a pipe), the CSV logger or W&B. On a GPU each read is a sync: the host waits for the
GPU to drain its queue, then the GPU waits for the host to queue the next step (tests/host_reads.py).
tests/gpu/test_syncs.py runs the same fits on a GPU."""
import pytest

from tests.host_reads import MODELS, STEPS, fit, show
from tests.test_loggers import isolate_wandb


@pytest.mark.parametrize("model", list(MODELS))
def test_reads_only_on_log_steps_with_the_bar(cifar_dir, tmp_path, model):
    reads, log_every, bar = fit(MODELS[model] + ["--logger", "csv"], cifar_dir, tmp_path)
    assert "train/loss=" in bar and "val/acc=" in bar  # the bar still shows them
    assert log_every == (50 if model == "fast_resnet" else 10)  # the preset's, as users run it
    assert reads.k == (1 if model == "fast_resnet" else 10)  # --steps-per-call auto's, as users run it
    assert not reads.unexpected(log_every, STEPS), show(reads.unexpected(log_every, STEPS))
    logged = {s for (kind, s), *_ in reads.reads if kind == "step"}
    assert logged and all((s + reads.k) % log_every == 0 or s + reads.k == STEPS for s in logged)  # it sees reads


def test_reads_only_on_log_steps_with_plain_lines_and_wandb(cifar_dir, tmp_path, monkeypatch):
    isolate_wandb(monkeypatch, str(tmp_path))
    reads, log_every, _ = fit(MODELS["mlp"] + ["--logger", "wandb"], cifar_dir, tmp_path, terminal=False)
    assert not reads.unexpected(log_every, STEPS), show(reads.unexpected(log_every, STEPS))


def test_reads_only_on_log_steps_with_one_step_per_call(cifar_dir, tmp_path):
    """--steps-per-call 1: every Lightning step is one optimizer step; only log steps read."""
    reads, log_every, _ = fit(MODELS["mlp"] + ["--logger", "csv", "--steps-per-call", "1"], cifar_dir, tmp_path)
    assert reads.k == 1 and not reads.unexpected(log_every, STEPS), show(reads.unexpected(log_every, STEPS))
    assert {s for (kind, s), *_ in reads.reads if kind == "step"}  # the test sees reads
