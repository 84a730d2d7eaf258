"""The hand-written backward passes, proved two ways: central finite differences and a PyTorch oracle."""
import os
import subprocess
import sys

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from models.numpy_mlp import MLP, CrossEntropyModule, ELUModule, LinearModule, SoftMaxModule

EPS, TOL = 1e-6, 1e-6  # central-difference step and the largest relative error allowed (float64)
SHAPES = [(1, 1, 1), (1, 5, 3), (4, 7, 1), (8, 6, 5), (3, 1, 4)]  # (batch, in, out): batch 1, 1 class, 1 input


def rel_err(a, b):
    return np.linalg.norm(a - b) / max(np.linalg.norm(a) + np.linalg.norm(b), 1e-30)


def numeric_grad(f, x):
    """dL/dx by central differences: (f(x + eps e_i) - f(x - eps e_i)) / 2 eps, one entry at a time. x is changed in place."""
    grad = np.zeros_like(x)
    for i in np.ndindex(x.shape):
        old = x[i]
        x[i] = old + EPS
        up = f()
        x[i] = old - EPS
        down = f()
        x[i] = old
        grad[i] = (up - down) / (2 * EPS)
    return grad


def check_module(module, x, rng):
    """L = sum(R ⊙ module(x)) for a fixed random R, so dL/dY = R; compare dx and every param grad."""
    r = rng.normal(size=module.forward(x).shape)
    loss = lambda: float((r * module.forward(x)).sum())  # noqa: E731
    module.forward(x)
    dx = module.backward(r)
    grads = {k: g.copy() for k, g in module.grads.items()}
    assert rel_err(dx, numeric_grad(loss, x)) < TOL
    for k, p in module.params.items():
        assert grads[k].shape == p.shape
        assert rel_err(grads[k], numeric_grad(loss, p)) < TOL, k


@pytest.mark.parametrize("b,n_in,n_out", SHAPES)
def test_linear_gradients(b, n_in, n_out):
    rng = np.random.default_rng(b * 100 + n_in * 10 + n_out)
    m = LinearModule(n_in, n_out, init="kaiming", rng=rng)
    m.params["bias"] = rng.normal(size=n_out)  # a zero bias would hide a bias that is never read
    check_module(m, rng.normal(size=(b, n_in)), rng)


@pytest.mark.parametrize("b,n_in,n_out", SHAPES)
def test_elu_gradients(b, n_in, n_out):
    rng = np.random.default_rng(b + n_in)
    check_module(ELUModule(), rng.normal(0, 2, size=(b, n_in)), rng)  # both branches


@pytest.mark.parametrize("b,n_in,n_out", SHAPES)
def test_softmax_gradients(b, n_in, n_out):
    rng = np.random.default_rng(b + n_out)
    check_module(SoftMaxModule(), rng.normal(0, 3, size=(b, n_out)), rng)


@pytest.mark.parametrize("b,n_in,n_out", SHAPES)
def test_cross_entropy_gradient(b, n_in, n_out):
    rng = np.random.default_rng(b * n_out)
    probs = rng.uniform(0.05, 1.0, size=(b, n_out))  # CE reads X only at the labels, normalised or not
    y = rng.integers(0, n_out, size=b)
    ce = CrossEntropyModule()
    assert rel_err(ce.backward(probs, y), numeric_grad(lambda: ce.forward(probs, y), probs)) < TOL


@pytest.mark.parametrize("b,n_in,hidden,n_classes", [(1, 4, [3], 2), (5, 6, [4, 3], 3), (3, 5, [], 4),
                                                      (2, 3, [4], 1), (6, 8, [5], 10)])
def test_mlp_gradients(b, n_in, hidden, n_classes):
    """The whole network and loss: dL/dx and every Linear's weight and bias grads."""
    rng = np.random.default_rng(b + n_in + n_classes)
    mlp, ce = MLP(n_in, hidden, n_classes, init="kaiming", rng=rng), CrossEntropyModule()
    for m in mlp.modules:
        if "bias" in m.params:
            m.params["bias"] = rng.normal(size=m.params["bias"].shape)
    x, y = rng.normal(size=(b, n_in)), rng.integers(0, n_classes, size=b)
    loss = lambda: ce.forward(mlp.forward(x), y)  # noqa: E731
    dx = mlp.backward(ce.backward(mlp.forward(x), y))
    grads = [{k: g.copy() for k, g in m.grads.items()} for m in mlp.modules]
    assert rel_err(dx, numeric_grad(loss, x)) < TOL
    for m, g in zip(mlp.modules, grads):
        for k, p in m.params.items():
            assert rel_err(g[k], numeric_grad(loss, p)) < TOL, k


def test_mlp_matches_torch_autograd():
    """The same weights in a float64 torch network: same probabilities, loss and grads to 1e-10."""
    rng = np.random.default_rng(0)
    mlp, ce = MLP(12, [9, 7], 5, init="kaiming", rng=rng), CrossEntropyModule()
    x, y = rng.normal(size=(16, 12)), rng.integers(0, 5, size=16)
    probs = mlp.forward(x)
    loss = ce.forward(probs, y)
    dx = mlp.backward(ce.backward(probs, y))

    linears = [m for m in mlp.modules if isinstance(m, LinearModule)]
    ws = [torch.tensor(m.params["weight"], requires_grad=True) for m in linears]
    bs = [torch.tensor(m.params["bias"], requires_grad=True) for m in linears]
    xt = torch.tensor(x, requires_grad=True)
    h = xt
    for i, (w, b) in enumerate(zip(ws, bs)):
        h = F.linear(h, w, b)
        h = F.elu(h) if i < len(ws) - 1 else h
    loss_t = F.cross_entropy(h, torch.tensor(y))
    loss_t.backward()

    close = lambda a, t: np.testing.assert_allclose(a, t.detach().numpy(), rtol=1e-10, atol=1e-12)  # noqa: E731
    close(probs, h.softmax(1))
    close(loss, loss_t)
    close(dx, xt.grad)
    for m, w, b in zip(linears, ws, bs):
        close(m.grads["weight"], w.grad)
        close(m.grads["bias"], b.grad)


def test_softmax_extreme_logits_are_finite():
    x = np.array([[1e4, -1e4, 0.0], [-1e4, -1e4 + 1, -1e4], [1e4, 1e4, 1e4]])
    s = SoftMaxModule()
    y = s.forward(x)
    assert np.isfinite(y).all()
    np.testing.assert_allclose(y.sum(1), 1.0)
    np.testing.assert_allclose(y[0], [1, 0, 0])
    np.testing.assert_allclose(y[2], [1 / 3] * 3)
    assert np.isfinite(s.backward(np.ones_like(x))).all()


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
def test_cross_entropy_of_zero_probability_is_finite(dtype):
    """As documented: p = 0 is read as finfo.tiny, a large finite loss and a finite gradient."""
    probs = np.array([[0.0, 1.0], [0.5, 0.5]], dtype)
    y = np.array([0, 1])
    ce = CrossEntropyModule()
    loss = ce.forward(probs, y)
    np.testing.assert_allclose(loss, (-np.log(np.finfo(dtype).tiny) - np.log(0.5)) / 2, rtol=1e-6)
    dx = ce.backward(probs, y)
    assert np.isfinite(dx).all() and dx[0, 0] < 0
    # through the softmax that produced the 0 the gradient stays finite too
    s = SoftMaxModule()
    out = s.forward(np.array([[-1e4, 0.0]], dtype))
    assert out[0, 0] == 0
    assert np.isfinite(s.backward(ce.backward(out, np.array([0])))).all()


def test_course_init_and_kaiming_scale():
    rng = np.random.default_rng(0)
    course, kaiming = LinearModule(3072, 100, rng=rng), LinearModule(3072, 100, init="kaiming", rng=rng)
    assert course.params["weight"].shape == (100, 3072) and not course.params["bias"].any()
    assert course.params["weight"].std() == pytest.approx(1e-4, rel=0.02)
    assert kaiming.params["weight"].std() == pytest.approx(np.sqrt(2 / 3072), rel=0.02)
    with pytest.raises(ValueError, match="init"):
        LinearModule(3, 2, init="default")


def test_forward_reads_params_on_every_call():
    m = LinearModule(3, 2)
    x = np.ones((1, 3))
    m.params["weight"] = np.full((2, 3), 2.0)
    np.testing.assert_allclose(m.forward(x), [[6.0, 6.0]])


def test_state_dict_round_trip():
    a, b = MLP(5, [4], 3, init="kaiming"), MLP(5, [4], 3, init="kaiming")
    x = np.random.default_rng(1).normal(size=(2, 5))
    assert not np.allclose(a.forward(x), b.forward(x))
    b.load_state_dict(a.state_dict())
    np.testing.assert_array_equal(a.forward(x), b.forward(x))
    with pytest.raises(ValueError, match="shape"):
        MLP(5, [3], 3).load_state_dict(a.state_dict())


def test_float32_stays_float32():
    mlp = MLP(6, [4], 3, dtype=np.float32)
    x = np.ones((2, 6), np.float32)
    probs = mlp.forward(x)
    dx = mlp.backward(CrossEntropyModule().backward(probs, np.array([0, 2])))
    assert probs.dtype == dx.dtype == mlp.modules[0].grads["weight"].dtype == np.float32


def test_imports_no_torch():
    """`import models.numpy_mlp`, package and all, runs on NumPy alone."""
    code = "import sys, models.numpy_mlp; assert 'torch' not in sys.modules and 'pytorch_lightning' not in sys.modules"
    subprocess.run([sys.executable, "-c", code], check=True, cwd=os.path.join(os.path.dirname(__file__), "..", ".."))


@pytest.mark.parametrize("b, n_out", [(1, 2), (5, 10)])
def test_cross_entropy_takes_one_hot_and_soft_targets(b, n_out):
    """The course's -sum(T * log X) / N with T (N, C): one-hot T equals integer labels; soft T matches
    torch's cross-entropy with probability targets, and its gradient the finite differences."""
    rng = np.random.default_rng(b + n_out)
    probs = rng.dirichlet(np.ones(n_out), size=b)
    y = rng.integers(0, n_out, size=b)
    one_hot = np.eye(n_out)[y]
    ce = CrossEntropyModule()
    assert ce.forward(probs, one_hot) == pytest.approx(ce.forward(probs, y), rel=1e-12)
    assert np.allclose(ce.backward(probs, one_hot), ce.backward(probs, y), rtol=1e-12)
    soft = rng.dirichlet(np.ones(n_out), size=b)
    expected = F.cross_entropy(torch.from_numpy(np.log(probs)), torch.from_numpy(soft)).item()
    assert ce.forward(probs, soft) == pytest.approx(expected, rel=1e-10)
    assert rel_err(ce.backward(probs, soft), numeric_grad(lambda: ce.forward(probs, soft), probs)) < TOL
