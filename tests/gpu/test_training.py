"""Training on the GPU: reduced precision and channels_last against fp32, --compile, TF32, and 1-GPU DDP through NCCL."""
import json
import math
import os
import subprocess
import sys

import pytest
import torch

import train
from tests.gpu.conftest import train_losses

pytestmark = [pytest.mark.gpu, pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU")]

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
STEPS = 12
# (label, train.py flags, its float32 flags, its reduced-precision flags): the recipe the GPU is for (fp16
# weights, fp32 BatchNorm, no autocast), and the course ResNet with bf16 autocast.
MODELS = [("fast", ["--preset", "fast", "--batch-size", "64", "--val-size", "0"], ["--net-dtype", "float32"],
           ["--net-dtype", "float16"]),
          ("course resnet", ["--model", "resnet", "--batch-size", "32", "--val-size", "50", "--eval-every", str(STEPS)],
           ["--precision", "32-true"], ["--precision", "bf16-mixed"])]


def run(argv, tmp_path, name):
    """train.py with argv (its --output-dir replaced by tmp_path/name) -> (results, per-step train losses)."""
    out = str(tmp_path / name)
    i = argv.index("--output-dir")
    results = train.main(argv[:i + 1] + [out] + argv[i + 2:])
    return results, train_losses(out)


@pytest.mark.parametrize("label,flags,full,reduced", MODELS, ids=[m[0] for m in MODELS])
def test_reduced_precision_and_channels_last_track_fp32(gpu_args, tmp_path, label, flags, full, reduced):
    """Same seed, same batches: the model's reduced precision + channels_last against fp32 in the default
    layout. Rounding differs from the first step on, so the losses drift apart slowly; they must stay
    within 5% per step over the first steps and 10% on average."""
    argv = gpu_args + flags + ["--max-steps", str(STEPS), "--log-every", "1"]
    _, fp32 = run(argv + full + ["--no-channels-last"], tmp_path, "fp32")
    results, bf16 = run(argv + reduced + ["--channels-last"], tmp_path, "reduced")
    assert results["status"] == "completed" and len(fp32) == len(bf16) == STEPS
    assert all(math.isfinite(v) for v in fp32 + bf16)
    for step in range(3):
        assert bf16[step] == pytest.approx(fp32[step], rel=0.05), (step, fp32[:3], bf16[:3])
    assert sum(bf16) / STEPS == pytest.approx(sum(fp32) / STEPS, rel=0.10), (fp32, bf16)


def test_fp32_matmuls_use_tf32_on_the_gpu(gpu_args):
    train.main(gpu_args + ["--model", "mlp", "--max-steps", "2", "--val-size", "50", "--eval-every", "2"])
    assert torch.get_float32_matmul_precision() == "high"


def test_compile_trains_the_fast_recipe(gpu_args, tmp_path):
    results, losses = run(gpu_args + MODELS[0][1] + ["--max-steps", "6", "--log-every", "1", "--compile"],
                          tmp_path, "compiled")
    assert results["status"] == "completed" and results["steps"] == 6
    assert len(losses) == 6 and all(math.isfinite(v) for v in losses)
    assert 0 <= results["test_acc"] <= 1


DDP_SCRIPT = """
import json, sys
import pytorch_lightning as pl
import torch
from pytorch_lightning.strategies import DDPStrategy
from datamodules import CIFAR10DataModule
from models.fast_resnet import FastResNet

pl.seed_everything(0)
dm = CIFAR10DataModule(sys.argv[1], batch_size=32, eval_batch_size=50, val_size=0, augment=True, crop_padding=2)
model = FastResNet(lr=1.5, momentum=0.85, nesterov=True, weight_decay=1.33e-3, label_smoothing=0.2, tta=2,
                   channels_last=True)
trainer = pl.Trainer(accelerator="gpu", devices=1, strategy=DDPStrategy(process_group_backend="nccl"),
                     max_steps=5, precision="32-true", logger=False, enable_checkpointing=False,
                     enable_progress_bar=False, enable_model_summary=False)
trainer.fit(model, datamodule=dm)
backend = torch.distributed.get_backend()
test = trainer.test(model, datamodule=dm, verbose=False)[0]
print(json.dumps({"backend": backend, "world": trainer.world_size, "strategy": type(trainer.strategy).__name__,
                  "steps": trainer.global_step, "test_acc": test["test/acc"]}))
"""


def test_one_gpu_ddp_through_nccl(cifar_dir):
    """DDP on one GPU in a process of its own (its process group must not outlive it): the whitening
    the gradient buckets and the metrics' sync go through NCCL."""
    done = subprocess.run([sys.executable, "-c", DDP_SCRIPT, cifar_dir], cwd=ROOT, capture_output=True, text=True,
                          timeout=300, env={**os.environ, "PYTHONPATH": ROOT})
    assert done.returncode == 0, done.stderr[-3000:]
    out = json.loads(done.stdout.strip().splitlines()[-1])
    assert out["backend"] == "nccl" and out["strategy"] == "DDPStrategy" and out["world"] == 1
    assert out["steps"] == 5 and 0 <= out["test_acc"] <= 1
