"""The NumPy MLP under Lightning: steps counted, schedules applied, checkpoints and resume, the CLI end to end."""
import json
import os

import numpy as np
import pytest
import pytorch_lightning as pl
import torch
import yaml

import train
from datamodules import CIFAR10DataModule
from models.numpy_classifier import NumpyMLPClassifier


def fit(model, cifar_dir, steps):
    dm = CIFAR10DataModule(cifar_dir, batch_size=16, val_size=0, normalize="center")
    trainer = pl.Trainer(max_steps=steps, accelerator="cpu", logger=False, enable_checkpointing=False,
                         enable_progress_bar=False, enable_model_summary=False, limit_val_batches=0)
    trainer.fit(model, datamodule=dm)
    return trainer


@pytest.mark.parametrize("kwargs", [dict(optimizer="adam"), dict(momentum=0.9), dict(weight_decay=1e-4),
                                    dict(activation="tanh"), dict(label_smoothing=0.1), dict(init="default"),
                                    dict(hidden=[0])])
def test_rejects_what_it_cannot_do(kwargs):
    with pytest.raises(ValueError):
        NumpyMLPClassifier(**kwargs)


def test_seed_drives_the_init():
    def params(seed):
        pl.seed_everything(seed, verbose=False)
        return NumpyMLPClassifier(hidden=[4]).mlp.state_dict()["0.weight"]
    np.testing.assert_array_equal(params(1), params(1))
    assert not np.array_equal(params(1), params(2))


def test_steps_count_and_checkpoint_restores_identical_outputs(cifar_dir, tmp_path):
    pl.seed_everything(0, verbose=False)
    model = NumpyMLPClassifier(hidden=[8], init="kaiming", lr=1e-4)
    before = model.mlp.state_dict()
    trainer = fit(model, cifar_dir, steps=3)
    assert trainer.global_step == 3  # NumpySGD steps are counted, so max_steps stops the run
    after = model.mlp.state_dict()
    assert all(not np.array_equal(before[k], after[k]) for k in before)  # every param was updated

    trainer.save_checkpoint(tmp_path / "m.ckpt")
    restored = NumpyMLPClassifier.load_from_checkpoint(tmp_path / "m.ckpt")
    x = torch.randn(5, 3, 32, 32)
    assert torch.equal(model(x), restored(x))
    assert not torch.equal(NumpyMLPClassifier(hidden=[8], init="kaiming")(x), restored(x))


def test_lr_schedule_is_stepped_once_per_step(cifar_dir):
    model = NumpyMLPClassifier(hidden=[4], lr=0.1, warmup_steps=8)
    trainer = fit(model, cifar_dir, steps=3)
    assert trainer.optimizers[0].param_groups[0]["lr"] == pytest.approx(0.1 * 4 / 8)  # warm-up factor at step 3


def test_train_cli_end_to_end_and_resume(tiny_args, tmp_path):
    results = train.main(tiny_args + ["--model", "numpy_mlp"])
    run = tmp_path / "run"
    with open(run / "results.json") as f:
        saved = json.load(f)
    assert saved["model"] == "numpy_mlp" and saved["steps"] == 5 and 0 <= saved["test_acc"] <= 1
    assert saved["params"] == 3072 * 100 + 100 + 100 * 10 + 10  # the NumPy arrays, counted
    assert saved["test_acc"] == pytest.approx(results["test_acc"])
    with open(run / "config.yaml") as f:
        cfg = yaml.safe_load(f)
    assert (cfg["lr"], cfg["hidden"], cfg["init"], cfg["normalize"]) == (1e-3, [100], "course", "center")
    assert os.path.exists(run / "checkpoints" / "last.ckpt")

    # Resuming from last.ckpt to 8 steps ends where an uninterrupted 8-step run ends.
    args = tiny_args[:]
    args[args.index("--max-steps") + 1] = "8"
    resumed = train.main(args + ["--model", "numpy_mlp"])
    args[args.index("--output-dir") + 1] = str(tmp_path / "straight")
    straight = train.main(args + ["--model", "numpy_mlp"])
    assert resumed["steps"] == straight["steps"] == 8
    assert resumed["test_loss"] == pytest.approx(straight["test_loss"], rel=1e-6)


def test_train_cli_rejects_adam_in_one_line(tiny_args, capsys):
    with pytest.raises(SystemExit) as e:
        train.main(tiny_args + ["--model", "numpy_mlp", "--optimizer", "adam"])
    assert "plain SGD" in str(e.value.code)
