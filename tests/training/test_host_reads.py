"""No host read in a training step, except on log steps: at each model's own --log-every (its preset's), over
more than 100 steps with epoch ends and validations among them, with the progress bar (a terminal) or the
plain log lines (a pipe), the CSV logger or W&B. On a GPU each read is a sync: the host waits for the
GPU to drain its queue, then the GPU waits for the host to queue the next step (tests/host_reads.py).
tests/gpu/test_syncs.py runs the same fits on a GPU."""
import contextlib
import io

import pytest

import train
from tests.host_reads import HostReads
from training.config import resolve

STEPS = 120  # 8 epochs of 15 batches; log steps every 10 (50 for fast), validations after steps 40, 80, 120
# (flags naming the model and its preset, small sizes where the model has them): the real classes each
MODELS = {
    "mlp": ["--model", "mlp", "--hidden", "8"],
    "layernorm_mlp": ["--preset", "norm-layer", "--hidden", "8"],
    "resnet": ["--model", "resnet", "--batch-size", "2"],  # the course net has no size flags: a small batch
    "fast_resnet": ["--preset", "fast"],
}


class Terminal(io.StringIO):
    """Stands in for stdout and says it is a terminal: train.py then draws the progress bar."""

    def isatty(self):
        return True


def fit(flags, cifar_dir, tmp_path, accelerator="cpu", terminal=True):
    """(HostReads of a STEPS-step fit with `flags` on the fixture data, the --log-every it ran at, stdout)."""
    reads = HostReads()
    argv = flags + ["--data-dir", cifar_dir, "--output-dir", str(tmp_path / "run"), "--accelerator", accelerator,
                    "--max-steps", str(STEPS), "--val-size", "50", "--eval-every", "40", "--eval-batch-size", "50"]
    argv += [] if "--batch-size" in flags else ["--batch-size", "16"]
    with contextlib.redirect_stdout(Terminal() if terminal else io.StringIO()) as out, \
            contextlib.redirect_stderr(io.StringIO()):
        train.main(argv, callbacks=[reads])
    assert reads.steps == STEPS
    return reads, resolve(argv)[0]["log_every"], out.getvalue()


def show(reads):
    return "\n".join(f"{phase}: {what} at {where}" for phase, what, where in reads)


@pytest.mark.parametrize("model", list(MODELS))
def test_reads_only_on_log_steps_with_the_bar(cifar_dir, tmp_path, model):
    reads, log_every, bar = fit(MODELS[model] + ["--logger", "csv"], cifar_dir, tmp_path)
    assert "train/loss=" in bar and "val/acc=" in bar  # the bar still shows them
    assert log_every == (50 if model == "fast_resnet" else 10)  # the preset's, as users run it
    assert not reads.unexpected(log_every, STEPS), show(reads.unexpected(log_every, STEPS))
    logged = {s for (kind, s), *_ in reads.reads if kind == "step"}
    assert logged and all((s + 1) % log_every == 0 or s + 1 == STEPS for s in logged)  # the test sees reads


def test_reads_only_on_log_steps_with_plain_lines_and_wandb(cifar_dir, tmp_path, monkeypatch):
    from tests.test_loggers import isolate_wandb  # here: tests/gpu/test_syncs.py imports this file, and
    isolate_wandb(monkeypatch, str(tmp_path))      # bench.gpu runs those where wandb may not be installed
    reads, log_every, _ = fit(MODELS["mlp"] + ["--logger", "wandb"], cifar_dir, tmp_path, terminal=False)
    assert not reads.unexpected(log_every, STEPS), show(reads.unexpected(log_every, STEPS))
