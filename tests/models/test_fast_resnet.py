"""FastResNet: the fast recipe's net and pieces against airbench94's published hyperparameters and formulas
(Keller Jordan, "94% on CIFAR-10 in 3.29 seconds on a single GPU", 2024, and airbench 0.1.8's numbers),
and its dtypes (tests/training/test_host_reads.py checks its steps read nothing on the host)."""
import math

import pytest
import torch
import torch.nn as nn

import train
import models
from config import signatures
from config.resolve import defaults
from models import fast_resnet as fast
from runfolder import checkpoint
from runfolder.folder import RunFolder

FAST_RECIPE = defaults("fast_resnet")  # its course defaults: the recipe (configs/models.yaml)

# airbench94, as published: per 1024 examples of a summed loss, batch 1024, 9.9 epochs of 50,000 images.
AIRBENCH = dict(lr=11.5, weight_decay=0.0153, momentum=0.85, bias_scaler=64.0, batch_size=1024, epochs=9.9,
                label_smoothing=0.2, lr_start=0.2, lr_peak=0.23, lr_end=0.07, whiten_bias_epochs=3, translate=2)


def test_fast_net_shapes_and_frozen_parts():
    net = fast.FastNet()
    assert net(torch.randn(2, 3, 32, 32)).shape == (2, 10)
    assert not net.whiten.weight.requires_grad
    bns = [m for m in net.modules() if isinstance(m, nn.BatchNorm2d)]
    assert len(bns) == 6 and all(not bn.weight.requires_grad and bn.bias.requires_grad for bn in bns)
    groups = fast.param_groups(net, lr=1.0, weight_decay=1e-3)
    assert sum(len(g["params"]) for g in groups) == sum(p.requires_grad for p in net.parameters())
    assert groups[0]["lr"] == fast.HYP["bn_bias_lr_scale"] and {id(p) for p in groups[0]["params"]} == {
        id(bn.bias) for bn in bns}
    # the same decay per step for both groups: lr * weight_decay
    assert groups[0]["lr"] * groups[0]["weight_decay"] == pytest.approx(groups[1]["lr"] * groups[1]["weight_decay"])


def test_whitening_of_clean_training_images_gives_identity_covariance(cifar_dir):
    """Fitted to the clean (unaugmented, normalised) training images the run hands it, the whitening layer
    maps their 2x2 patches to covariance ~ identity: exactly diagonal (the filters are the covariance's
    eigenvectors), with lambda / (lambda + eps) on it, so within eps / smallest lambda of 1."""
    from datamodules import CIFAR10DataModule

    dm = CIFAR10DataModule(cifar_dir, batch_size=32, val_size=0, augment=True, crop_pad="reflect")
    dm.setup()
    x = dm.train_dataloader().clean(fast.HYP["whiten_images"])
    assert x.shape == (300, 3, 32, 32)  # the fixture's whole split: fewer than whiten_images
    net = fast.FastNet().double()
    net.init_whitening(x.double())
    out = (net.whiten(x.double()) - net.whiten.bias[:, None, None])[:, :12]  # (B, 12, 31, 31)
    flat = out.permute(1, 0, 2, 3).flatten(1)
    cov = flat @ flat.T / flat.shape[1]
    patches = torch.nn.functional.unfold(x.double(), 2).transpose(1, 2).flatten(0, 1)
    smallest = torch.linalg.eigvalsh(patches.T @ patches / len(patches)).min().item()
    torch.testing.assert_close(cov, torch.eye(12, dtype=torch.float64), atol=fast.HYP["whiten_eps"] / smallest, rtol=0)
    assert (cov - torch.diag(cov.diag())).abs().max() < 1e-5  # init_whitening's eigh runs in float32


def test_whitening_decorrelates_patches():
    torch.manual_seed(0)
    mix = torch.tensor([[1.0, 0.9, 0.8], [0.0, 0.5, 0.4], [0.0, 0.0, 0.3]])  # strongly correlated channels
    x = torch.einsum("ij,bjhw->bihw", mix, torch.randn(64, 3, 32, 32))
    net = fast.FastNet()
    net.init_whitening(x)
    out = net.whiten(x)[:, :12] - net.whiten.bias[:12, None, None]  # the 12 positive filters, (B, 12, 31, 31)
    flat = out.permute(1, 0, 2, 3).flatten(1)
    cov = flat @ flat.T / flat.shape[1]
    torch.testing.assert_close(cov, torch.eye(12), atol=0.02, rtol=0)
    torch.testing.assert_close(net.whiten(x)[:, 12:], -net.whiten(x)[:, :12])


def test_step_count_is_airbench94s():
    """ceil(9.9 epochs x 48 full batches of 1024 from 50,000 images) = 476 optimizer steps."""
    per_epoch = 50_000 // AIRBENCH["batch_size"]
    assert FAST_RECIPE["batch_size"] == AIRBENCH["batch_size"]
    assert FAST_RECIPE["max_steps"] == math.ceil(per_epoch * AIRBENCH["epochs"]) == 476


def airbench_triangle(step, total):
    """The lr factor, piecewise linear through (0, 0.2), (int(0.23 * total), 1), (total, 0.07)."""
    points = [(0, AIRBENCH["lr_start"]), (int(AIRBENCH["lr_peak"] * total), 1.0), (total, AIRBENCH["lr_end"])]
    for (x0, y0), (x1, y1) in zip(points, points[1:]):
        if step <= x1:
            return y0 + (y1 - y0) * (step - x0) / (x1 - x0)
    return AIRBENCH["lr_end"]


@pytest.mark.parametrize("total", [476, 100, 7])
def test_triangle_schedule_is_airbench94s(total):
    f = fast.triangle(total)
    for step in range(total + 1):
        assert f(step) == pytest.approx(airbench_triangle(step, total), abs=1e-12), step


def test_lr_schedule_reaches_the_optimizer_per_step():
    """What SGD sees at each step (LambdaLR over make_optimizer's groups) follows the triangle."""
    model = fast.FastResNet(**{k: FAST_RECIPE[k] for k in ("lr", "momentum", "nesterov", "weight_decay")})
    opt, sched = model.make_optimizer(total_steps=476)
    base = [g["initial_lr"] for g in opt.param_groups]
    for step in range(476):
        assert [g["lr"] for g in opt.param_groups] == pytest.approx([b * airbench_triangle(step, 476) for b in base])
        opt.step()
        sched.step()


def test_sgd_groups_are_airbench94s():
    """Per-group lr and weight decay as airbench94 sets them for its summed loss: lr = 11.5 / (1024 (1 + 1 /
    (1 - momentum))), weight decay = 0.0153 * 1024 / 11.5; BN biases at 64x the lr and 1/64 the decay."""
    kilostep = 1024 * (1 + 1 / (1 - AIRBENCH["momentum"]))
    lr = AIRBENCH["lr"] / kilostep
    wd = AIRBENCH["weight_decay"] * AIRBENCH["batch_size"] / kilostep
    model = fast.FastResNet(**{k: FAST_RECIPE[k] for k in ("lr", "momentum", "nesterov", "weight_decay")})
    opt, sched = model.make_optimizer(total_steps=476)
    bias, other = opt.param_groups
    start = AIRBENCH["lr_start"]  # LambdaLR has applied the schedule's first factor
    assert bias["lr"] == pytest.approx(lr * AIRBENCH["bias_scaler"] * start, rel=1e-9)
    assert bias["weight_decay"] == pytest.approx(wd / (lr * AIRBENCH["bias_scaler"]), rel=1e-9)
    assert other["lr"] == pytest.approx(lr * start, rel=1e-9)
    assert other["weight_decay"] == pytest.approx(wd / lr, rel=1e-9)
    assert opt.defaults["momentum"] == AIRBENCH["momentum"] and opt.defaults["nesterov"]
    bns = [m.bias for m in model.net.modules() if isinstance(m, nn.BatchNorm2d)]
    assert {id(p) for p in bias["params"]} == {id(p) for p in bns}
    assert {id(p) for p in other["params"]} == {id(model.net.whiten.bias), id(model.net.head.weight)} | {
        id(m.weight) for m in model.net.modules() if isinstance(m, nn.Conv2d) and m is not model.net.whiten}


def test_summed_loss_with_the_scaled_lr_is_the_mean_losss_step():
    """loss_scale changes no step: SGD on loss * 1024 at lr / 1024 with weight decay * 1024 moves the weights
    as SGD on the mean loss at lr with weight decay would (one step, fp64 to leave rounding out)."""
    torch.manual_seed(0)
    x, y = torch.randn(4, 3, 32, 32, dtype=torch.float64), torch.randint(0, 10, (4,))
    nets = []
    for scaled in (True, False):
        torch.manual_seed(1)
        net = fast.FastNet().double()
        s = fast.HYP["loss_scale"] if scaled else 1
        opt = torch.optim.SGD(fast.param_groups(net, 1.5 / s, 1.33e-3 * s), momentum=0.85, nesterov=True)
        for _ in range(2):
            loss = nn.functional.cross_entropy(net.head(net.body(net.whiten(x))).double(), y) * s
            opt.zero_grad()
            loss.backward()
            opt.step()
        nets.append(net)
    for a, b in zip(nets[0].parameters(), nets[1].parameters()):
        torch.testing.assert_close(a, b, rtol=1e-9, atol=1e-12)


def test_lookahead_decay_is_airbench94s():
    """decay = 0.95 ** 5 * (step / total) ** 3 at every 5th step, and 1.0 (a plain copy back) at the end."""
    model = fast.FastResNet()
    seen = []
    model.lookahead = fast.Lookahead(model.net)
    model.lookahead.update = lambda net, decay: seen.append(decay)
    for step in range(1, 477):
        model.lookahead_step(step, 476)
    expected = [0.95 ** 5 * (s / 476) ** 3 for s in range(5, 477, 5)] + [1.0]
    assert seen == pytest.approx(expected, rel=1e-12)


def test_lookahead_pulls_weights_back_to_the_average():
    lin = nn.Linear(3, 2)
    look = fast.Lookahead(lin)
    before = lin.weight.detach().clone()
    with torch.no_grad():
        lin.weight.add_(1.0)
    look.update(lin, decay=0.75)  # ema = 0.75 * old + 0.25 * new, and the weights are set to it
    torch.testing.assert_close(lin.weight, before + 0.25)
    with torch.no_grad():
        lin.weight.add_(1.0)
    look.update(lin, decay=1.0)  # the final copy: back to the average, ignoring the last steps
    torch.testing.assert_close(lin.weight, before + 0.25)


def test_its_own_optimizer_and_schedule_are_not_settings():
    assert models.load("fast_resnet") is fast.FastResNet
    params = signatures.models()["fast_resnet"].settings
    assert not {"optimizer", "schedule", "warmup_steps", "arch"} & set(params)
    assert {"channels_last", "tta", "lr", "momentum", "nesterov", "weight_decay", "label_smoothing"} <= set(params)
    model = fast.FastResNet(lr=0.5, momentum=0.9, nesterov=True, weight_decay=1e-3)
    opt, sched = model.make_optimizer(total_steps=100)
    assert isinstance(opt, torch.optim.SGD) and opt.defaults["nesterov"]
    scale = fast.HYP["loss_scale"]
    assert [g["lr"] for g in opt.param_groups] == pytest.approx(
        [0.5 / scale * fast.HYP["bn_bias_lr_scale"] * fast.HYP["lr_start"], 0.5 / scale * fast.HYP["lr_start"]])


def test_cli_refuses_an_optimizer_for_it(capsys):
    with pytest.raises(SystemExit) as e:
        train.main(["--model", "fast_resnet", "--optimizer", "adam"])
    assert e.value.code == 2 and "does not apply" in capsys.readouterr().err


def test_net_dtype_casts_weights_and_keeps_batchnorm_in_float32():
    """airbench94's split: half-precision weights, float32 BatchNorm; 'auto' is float16 on a GPU, float32 on a CPU."""
    for device, wanted in (("cpu", torch.float32), ("cuda", torch.float16)):  # a dtype choice: nothing moves
        model = fast.FastResNet()
        model.cast_net(device)
        assert model.net.whiten.weight.dtype == model.net.head.weight.dtype == wanted
    model = fast.FastResNet(net_dtype="bfloat16", channels_last=True)
    model.cast_net("cpu")
    bns = [m for m in model.net.modules() if isinstance(m, nn.BatchNorm2d)]
    convs = [m for m in model.net.modules() if isinstance(m, nn.Conv2d)]
    assert all(t.dtype == torch.float32 for bn in bns for t in (bn.weight, bn.bias, bn.running_mean, bn.running_var))
    assert all(c.weight.dtype == torch.bfloat16 for c in convs) and model.net.head.weight.dtype == torch.bfloat16
    # two SGD steps with lookahead, as training does them: finite, and every tensor keeps its dtype
    opt, _ = model.make_optimizer(total_steps=2)
    x, y = torch.randn(8, 3, 32, 32), torch.randint(0, 10, (8,))
    model.net.init_whitening(x)
    for step in (1, 2):
        logits = model(x)
        assert logits.dtype == torch.float32
        loss = nn.functional.cross_entropy(logits, y) * fast.HYP["loss_scale"]
        opt.zero_grad()
        loss.backward()
        opt.step()
        model.lookahead_step(step, 2)
    assert torch.isfinite(loss)
    assert all(bn.running_mean.dtype == torch.float32 for bn in bns) and convs[1].weight.dtype == torch.bfloat16
    assert {k: v.dtype for k, v in model.lookahead.ema.items()} == {
        k: v.dtype for k, v in model.net.state_dict().items() if v.is_floating_point()}
    with pytest.raises(ValueError, match="net_dtype"):
        fast.FastResNet(net_dtype="float8")
