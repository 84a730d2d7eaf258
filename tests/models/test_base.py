"""The shared Classifier: optimizers and learning-rate schedules built from hyperparameters."""
import pytest
import torch

from models.base import lr_factor
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
