"""The shared Classifier: optimizers and learning-rate schedules built from hyperparameters, soft labels."""
import csv
import math

import pytest
import torch
import torch.nn.functional as F

import train
from models.base import lr_factor, top_class_credit
from models.mlp import MLP


def optimizer_of(**kw):
    model = MLP(hidden=[4], **kw)
    model.trainer = type("T", (), {"max_steps": 100})()  # configure_optimizers reads max_steps only
    return model.configure_optimizers()


def test_sgd_with_nesterov_momentum_and_weight_decay():
    opt = optimizer_of(optimizer="sgd", lr=0.1, momentum=0.9, nesterov=True, weight_decay=5e-4)
    assert isinstance(opt, torch.optim.SGD)
    group = opt.param_groups[0]
    assert (group["lr"], group["momentum"], group["nesterov"], group["weight_decay"]) == (0.1, 0.9, True, 5e-4)


def test_adam_and_a_stepwise_schedule():
    out = optimizer_of(optimizer="adam", lr=1e-3, schedule="cosine", warmup_steps=10)
    assert isinstance(out["optimizer"], torch.optim.Adam) and out["lr_scheduler"]["interval"] == "step"


@pytest.mark.parametrize("schedule, at_end", [("constant", 1.0), ("cosine", 0.0), ("linear", 0.0)])
def test_schedules_warm_up_then_decay(schedule, at_end):
    f = lr_factor(schedule, warmup=10, total=110)
    assert f(0) == pytest.approx(0.1) and f(9) == pytest.approx(1.0)
    assert f(10) == pytest.approx(1.0) and f(110) == pytest.approx(at_end, abs=1e-9)
    assert f(60) == pytest.approx({"constant": 1.0, "cosine": 0.5, "linear": 0.5}[schedule])


def test_top_class_credit_is_accuracy_for_labels_and_the_top_class_weight_for_soft_ones():
    logits = torch.tensor([[2.0, 1.0, 0.0], [0.0, 3.0, 1.0], [0.0, 0.0, 5.0]])
    assert top_class_credit(logits, torch.tensor([0, 2, 2])).tolist() == [1.0, 0.0, 1.0]
    soft = torch.tensor([[0.7, 0.3, 0.0], [0.6, 0.0, 0.4], [0.0, 0.25, 0.75]])
    assert torch.allclose(top_class_credit(logits, soft), torch.tensor([0.7, 0.0, 0.75]))


@pytest.mark.parametrize("model", ["mlp", "numpy_mlp"])
def test_models_train_on_soft_labels(model, tiny_args, tmp_path):
    """MixUp/CutMix give soft labels: the loss takes them, and train/acc is the soft labels' top-class weight."""
    train.main(tiny_args + ["--model", model, "--mixup", "0.4", "--cutmix", "1.0", "--log-every", "1"])
    with open(tmp_path / "run" / "metrics.csv") as f:
        rows = [r for r in csv.DictReader(f) if r.get("train/acc")]
    assert len(rows) == 5
    assert all(math.isfinite(float(r["train/loss"])) and 0 <= float(r["train/acc"]) <= 1 for r in rows)
    # a mixed label's weights are fractions: some step's credit is no multiple of 1/16 (batch 16)
    assert any(float(r["train/acc"]) * 16 % 1 > 1e-3 for r in rows)


def test_soft_label_loss_is_the_mixed_cross_entropy():
    """cross_entropy on lam * onehot(a) + (1 - lam) * onehot(b) = lam CE(a) + (1 - lam) CE(b): MixUp's loss."""
    logits = torch.randn(8, 10, generator=torch.Generator().manual_seed(0))
    a, b, lam = torch.arange(8), torch.arange(8).roll(1), 0.3
    soft = lam * F.one_hot(a, 10).float() + (1 - lam) * F.one_hot(b, 10).float()
    torch.testing.assert_close(F.cross_entropy(logits, soft),
                               lam * F.cross_entropy(logits, a) + (1 - lam) * F.cross_entropy(logits, b))
