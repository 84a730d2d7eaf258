"""MLP structure, init and that it can fit a tiny batch."""
import pytest
import torch
import torch.nn as nn

from models.mlp import MLP


def kinds(model):
    return [type(m).__name__ for m in model.net]


def test_batchnorm_follows_each_hidden_linear_never_the_output():
    model = MLP(hidden=[64, 32], batchnorm=True, activation="tanh")
    assert kinds(model) == ["Flatten", "Linear", "BatchNorm1d", "Tanh", "Linear", "BatchNorm1d", "Tanh", "Linear"]
    assert model.net[-1].out_features == 10 and model.net[1].in_features == 3072


def test_no_hidden_layers_is_softmax_regression():
    assert kinds(MLP(hidden=[])) == ["Flatten", "Linear"]


def test_course_init_is_small_normal_with_zero_bias():
    torch.manual_seed(0)
    layer = MLP(hidden=[500], init="course").net[1]
    assert layer.weight.std().item() == pytest.approx(1e-4, rel=0.05)
    assert torch.count_nonzero(layer.bias) == 0


def test_small_first_init_touches_the_first_layer_only():
    torch.manual_seed(0)
    first, second = [m for m in MLP(hidden=[500, 500], init="small-first").net if isinstance(m, nn.Linear)][:2]
    assert first.weight.std().item() == pytest.approx(1e-4, rel=0.05) and torch.count_nonzero(first.bias) == 0
    assert second.weight.std().item() == pytest.approx(1 / (3 * 500) ** 0.5, rel=0.05)  # PyTorch's default


@pytest.mark.parametrize("kwargs, message", [
    (dict(activation="gelu"), "activation"), (dict(hidden=[10, 0]), "positive"), (dict(init="xavier"), "init"),
    (dict(optimizer="rmsprop"), "optimizer"),
])
def test_bad_settings_are_refused(kwargs, message):
    with pytest.raises(ValueError, match=message):
        MLP(**kwargs)


def test_overfits_a_tiny_batch():
    torch.manual_seed(0)
    x, y = torch.randn(20, 3, 32, 32), torch.arange(20) % 10
    model = MLP(hidden=[64], batchnorm=True)
    opt = torch.optim.Adam(model.parameters(), lr=1e-2)
    for _ in range(100):
        loss = nn.functional.cross_entropy(model(x), y)
        opt.zero_grad()
        loss.backward()
        opt.step()
    model.eval()
    assert (model(x).argmax(1) == y).float().mean() == 1.0
