"""FastResNet: the fast recipe's net and pieces, its settings, the same numbers as before it was its own
class (tests/training/test_host_reads.py checks its steps read nothing on the host)."""
import csv
import json
import os

import pytest
import torch
import torch.nn as nn

import train
from models import MODELS, fast_resnet as fast, init_params
from runfolder import checkpoint
from runfolder.folder import RunFolder

REFERENCE = os.path.join(os.path.dirname(__file__), "fast_resnet_reference.json")


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


def test_triangle_schedule():
    f = fast.triangle(100)
    peak = int(fast.HYP["lr_peak_at"] * 100)
    assert f(0) == pytest.approx(fast.HYP["lr_start"])
    assert f(peak) == pytest.approx(1.0)
    assert f(100) == pytest.approx(fast.HYP["lr_end"])
    assert f(peak // 2) < 1 and f((peak + 100) // 2) < 1


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
    assert MODELS["fast_resnet"].load() is fast.FastResNet
    params = init_params(fast.FastResNet)
    assert not {"optimizer", "schedule", "warmup_steps", "arch"} & set(params)
    assert {"channels_last", "tta", "lr", "momentum", "nesterov", "weight_decay", "label_smoothing"} <= set(params)
    model = fast.FastResNet(lr=0.5, momentum=0.9, nesterov=True, weight_decay=1e-3)
    opt, sched = model.make_optimizer(total_steps=100)
    assert isinstance(opt, torch.optim.SGD) and opt.defaults["nesterov"]
    assert [g["lr"] for g in opt.param_groups] == pytest.approx(
        [0.5 * fast.HYP["bn_bias_lr_scale"] * fast.HYP["lr_start"], 0.5 * fast.HYP["lr_start"]])


def test_cli_refuses_an_optimizer_for_it(capsys):
    with pytest.raises(SystemExit) as e:
        train.main(["--model", "fast_resnet", "--optimizer", "adam"])
    assert e.value.code == 2 and "does not apply" in capsys.readouterr().err


def metric_columns(path):
    with open(path) as f:
        rows = list(csv.DictReader(f))
    col = lambda name: [float(r[name]) for r in rows if r.get(name)]  # noqa: E731
    return col("train/loss"), col("train/acc"), col("test/acc"), col("test/loss")


def test_preset_fast_gives_the_numbers_it_gave_inside_resnet(cifar_dir, tmp_path):
    """14 steps of --preset fast (4 epochs of the fixture's 300 images: whitening init, lookahead at steps
    5 and 10 and the final average, the whitening-bias freeze from epoch 3), against what the same flags
    gave when the recipe was ResNet(arch="fast"). fp32 (--precision 32-true), which depends less on the
    CPU's instruction set than bf16 does; made on this project's CPU machine, where it was identical."""
    with open(REFERENCE) as f:
        ref = json.load(f)
    run = str(tmp_path / "run")
    train.main(ref["flags"] + ["--data-dir", cifar_dir, "--output-dir", run])
    loss, acc, test_acc, test_loss = metric_columns(RunFolder(run).metrics_path)
    close = dict(rtol=1e-4, atol=1e-5)
    torch.testing.assert_close(loss, ref["train_loss"], **close)
    assert acc == ref["train_acc"]
    torch.testing.assert_close((test_acc[0], test_loss[0]), (ref["test_acc"], ref["test_loss"]), **close)
    state = checkpoint.read(RunFolder(run).last_path)
    sums = {k.removeprefix("net."): v.double().sum().item() for k, v in state["state_dict"].items()
            if v.is_floating_point()}
    torch.testing.assert_close(sums, ref["weight_sums"], **close)
    torch.testing.assert_close({k: v.double().sum().item() for k, v in state["lookahead"].items()},
                               ref["lookahead_sums"], **close)
