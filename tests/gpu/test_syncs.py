"""No host-device sync in a training step on the GPU except on log steps, for every PyTorch model at its
preset's --log-every: the CPU test's fits (tests/training/test_host_reads.py) on the GPU, under
torch.cuda.set_sync_debug_mode (tests/host_reads.py). A sync makes the host wait for the GPU to drain,
and the GPU then waits for the host to queue the next kernels: at a few ms a step, one costs a step."""
import pytest
import torch

from tests.host_reads import MODELS, STEPS, fit, show

pytestmark = [pytest.mark.gpu, pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU")]
FIRST = 2  # steps 0 and 1 may sync: cuDNN's kernel search for each new shape (benchmark=True), the whitening fit


@pytest.mark.parametrize("model", list(MODELS))
def test_syncs_only_on_log_steps(cifar_dir, tmp_path, model):
    reads, log_every, _ = fit(MODELS[model] + ["--logger", "csv"], cifar_dir, tmp_path, accelerator="gpu")
    assert not reads.unexpected(log_every, STEPS, first=FIRST), show(reads.unexpected(log_every, STEPS, first=FIRST))


def test_syncs_only_on_log_steps_with_one_step_per_call(cifar_dir, tmp_path):
    """--steps-per-call 1 (docs/tools.md): every Lightning step is one optimizer step; only log steps sync."""
    flags = MODELS["mlp"] + ["--logger", "csv", "--steps-per-call", "1"]
    reads, log_every, _ = fit(flags, cifar_dir, tmp_path, accelerator="gpu")
    unexpected = reads.unexpected(log_every, STEPS, first=FIRST)
    assert reads.k == 1 and not unexpected, show(unexpected)
