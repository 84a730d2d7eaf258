"""The three LayerNorm forms against torch's, the hand-written backward by gradcheck, and the LayerNorm MLP."""
import re

import pytest
import torch
import torch.nn.functional as F

import train
from config.resolve import model_kwargs, resolve
from models.layernorm import LayerNormAutograd, LayerNormManualFunction, LayerNormManualModule, LayerNormMLP
from models.mlp import MLP

SHAPES = [(1, 5), (2, 3), (7, 16), (12, 40)]  # (batch, features); batch 1 included
TOL = {torch.float32: 1e-5, torch.float64: 1e-10}


def manual_function(x, gamma, beta):
    return LayerNormManualFunction.apply(x, gamma, beta, 1e-5)


def module_form(cls):
    def run(x, gamma, beta):
        m = cls(x.shape[1]).to(x.dtype)
        with torch.no_grad():
            m.gamma.copy_(gamma)
            m.beta.copy_(beta)
        y = m(x)
        return y, m.gamma, m.beta  # the module's own parameters get the gamma and beta grads
    return run


FORMS = {"function": manual_function, "manual_module": module_form(LayerNormManualModule),
         "autograd_module": module_form(LayerNormAutograd)}


def inputs(shape, dtype, seed=0):
    g = torch.Generator().manual_seed(seed)
    x = (torch.randn(shape, generator=g, dtype=dtype) * 3 + 1).requires_grad_()
    gamma = torch.randn(shape[1], generator=g, dtype=dtype).requires_grad_()
    beta = torch.randn(shape[1], generator=g, dtype=dtype).requires_grad_()
    return x, gamma, beta


@pytest.mark.parametrize("shape", SHAPES)
def test_gradcheck(shape):
    x, gamma, beta = inputs(shape, torch.float64)
    assert torch.autograd.gradcheck(manual_function, (x, gamma, beta))


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
@pytest.mark.parametrize("shape", SHAPES)
@pytest.mark.parametrize("form", FORMS)
def test_matches_torch_forward_and_grads(form, shape, dtype):
    x, gamma, beta = inputs(shape, dtype)
    grad_y = torch.randn(shape, generator=torch.Generator().manual_seed(1), dtype=dtype)
    out = FORMS[form](x, gamma, beta)
    y, params = (out, (gamma, beta)) if form == "function" else (out[0], out[1:])
    ours = torch.autograd.grad(y, (x, *params), grad_y)
    ref_y = F.layer_norm(x, (shape[1],), gamma, beta, eps=1e-5)
    ref = torch.autograd.grad(ref_y, (x, gamma, beta), grad_y)
    tol = TOL[dtype]
    torch.testing.assert_close(y, ref_y, rtol=tol, atol=tol)
    for name, a, b in zip(("x", "gamma", "beta"), ours, ref):
        torch.testing.assert_close(a, b, rtol=tol, atol=tol, msg=lambda m: f"grad of {name}: {m}")


@pytest.mark.parametrize("cls", [LayerNormManualModule, LayerNormAutograd])
def test_rows_are_normalised(cls):
    x = torch.randn(64, 200, dtype=torch.float64) * 5 + 3
    y = cls(200).double()(x)  # gamma = 1, beta = 0 at init
    torch.testing.assert_close(y.mean(1), torch.zeros(64, dtype=torch.float64), atol=1e-10, rtol=0)
    torch.testing.assert_close(y.var(1, unbiased=False), torch.ones(64, dtype=torch.float64), atol=1e-5, rtol=0)


def test_backward_returns_none_where_no_grad_is_needed():
    x, gamma, beta = inputs((4, 6), torch.float64)
    gamma.requires_grad_(False)
    y = manual_function(x, gamma, beta)
    grad_x, grad_gamma, grad_beta, grad_eps = y.grad_fn.apply(torch.ones_like(y))  # calls backward itself
    assert grad_gamma is None and grad_eps is None
    assert grad_x.shape == (4, 6) and grad_beta.shape == (6,)


@pytest.mark.parametrize("cls", [LayerNormManualModule, LayerNormAutograd])
@pytest.mark.parametrize("shape", [(4, 7), (8,), (2, 8, 1)])
def test_wrong_shape_names_expected_and_actual(cls, shape):
    with pytest.raises(ValueError, match=re.escape(f"shape (batch, 8), got {shape}")):
        cls(8)(torch.randn(shape))


def test_mlp_with_batch_of_one():
    x = torch.randn(1, 3, 32, 32)
    model = LayerNormMLP(hidden=[16, 8]).train()
    logits = model(x)
    logits.sum().backward()
    assert logits.shape == (1, 10)
    assert sum(isinstance(m, LayerNormManualModule) for m in model.net) == 2  # after each hidden Linear only
    with pytest.raises(ValueError, match="more than 1 value per channel"):  # where batch norm cannot
        MLP(hidden=[16, 8], batchnorm=True).train()(x)


def test_mlp_rejects_unknown_norm_impl():
    with pytest.raises(ValueError, match="norm_impl must be one of"):
        LayerNormMLP(norm_impl="batch")


def resolved_kwargs(argv):
    return model_kwargs(resolve(argv)[0])


def test_seed_best_preset_drops_batchnorm():
    kwargs = resolved_kwargs(["--model", "layernorm_mlp", "--preset", "seed-best"])
    assert "batchnorm" not in kwargs
    assert kwargs["hidden"] == [64, 128, 256] and kwargs["norm_impl"] == "manual"
    assert resolved_kwargs(["--model", "mlp", "--preset", "seed-best"])["batchnorm"] is True


def test_explicit_batchnorm_is_a_usage_error(capsys):
    with pytest.raises(SystemExit) as exit_:
        resolved_kwargs(["--model", "layernorm_mlp", "--batchnorm"])
    assert exit_.value.code == 2
    assert "--batchnorm does not apply to --model layernorm_mlp" in capsys.readouterr().err


@pytest.mark.parametrize("impl", ["manual", "autograd", "torch"])
def test_train_end_to_end(tiny_args, tmp_path, impl):
    results = train.main(["--model", "layernorm_mlp", "--norm-impl", impl, "--hidden", "32", *tiny_args])
    assert results["steps"] == 5 and 0.0 <= results["test_acc"] <= 1.0
    assert (tmp_path / "run" / "results.json").exists()
