"""ResNet: the course net's structure and size, residual blocks, its options, the CLI path."""
import pytest
import torch
import torch.nn as nn

import train
from models.resnet import PreAct, ResNet, course_net


def course_param_count():
    """By hand, from the docstring's table: conv = k*k*c_in*c_out + c_out, BN = 2c, PreAct = BN + 3x3 conv."""
    conv = lambda k, i, o: k * k * i * o + o  # noqa: E731
    preact = lambda c: 2 * c + conv(3, c, c)  # noqa: E731
    return (conv(3, 3, 64) + preact(64)
            + conv(1, 64, 128) + 2 * preact(128)
            + conv(1, 128, 256) + 2 * preact(256)
            + conv(1, 256, 512) + 2 * preact(512)
            + 2 * preact(512)
            + 2 * 512 + 512 * 10 + 10)


def test_course_net_output_shape_and_param_count():
    model = ResNet()
    assert model(torch.randn(2, 3, 32, 32)).shape == (2, 10)
    assert sum(p.numel() for p in model.parameters()) == course_param_count()


def test_course_net_layers_in_order():
    net = course_net()
    kinds = [type(m).__name__ for m in net]
    assert kinds == ["Conv2d", "PreAct",
                     "Conv2d", "MaxPool2d", "PreAct", "PreAct",
                     "Conv2d", "MaxPool2d", "PreAct", "PreAct",
                     "Conv2d", "MaxPool2d", "PreAct", "PreAct",
                     "MaxPool2d", "PreAct", "PreAct",
                     "MaxPool2d", "BatchNorm2d", "ReLU", "Flatten", "Linear"]
    convs = [(m.in_channels, m.out_channels, m.kernel_size) for m in net if isinstance(m, nn.Conv2d)]
    assert convs == [(3, 64, (3, 3)), (64, 128, (1, 1)), (128, 256, (1, 1)), (256, 512, (1, 1))]
    assert [m.bn.num_features for m in net if isinstance(m, PreAct)] == [64, 128, 128, 256, 256, 512, 512, 512, 512]


def test_course_net_spatial_sizes():
    net, sizes = course_net().eval(), []
    for m in net:
        if isinstance(m, (nn.MaxPool2d, PreAct)) or m is net[0]:
            m.register_forward_hook(lambda mod, inp, out: sizes.append(out.shape[-1]))
    net(torch.randn(1, 3, 32, 32))
    assert sorted(set(sizes), reverse=True) == [32, 16, 8, 4, 2, 1]
    assert sizes[-1] == 1  # the last maxpool leaves 1x1 for the linear layer


def test_preact_block_is_residual():
    torch.manual_seed(0)
    block, x = PreAct(8), torch.randn(4, 8, 6, 6)
    assert not torch.allclose(block(x), x)  # with weights, the branch adds something
    nn.init.zeros_(block.conv.weight)
    nn.init.zeros_(block.conv.bias)
    assert torch.equal(block(x), x)  # with a zero branch, what is left is the identity path
    assert block.conv.kernel_size == (3, 3) and block.conv.padding == (1, 1) and block.conv.stride == (1, 1)


def test_bad_settings_are_value_errors():
    with pytest.raises(ValueError, match="tta"):
        ResNet(tta=3)
    with pytest.raises(TypeError):
        ResNet(arch="fast")  # the fast recipe is its own model: --model fast_resnet, --preset fast


def test_channels_last_gives_the_same_logits():
    torch.manual_seed(0)
    plain = ResNet().eval()
    nhwc = ResNet(channels_last=True).eval()
    nhwc.load_state_dict(plain.state_dict())
    x = torch.randn(2, 3, 32, 32)
    assert nhwc.net[0].weight.is_contiguous(memory_format=torch.channels_last)
    torch.testing.assert_close(nhwc(x), plain(x), rtol=1e-4, atol=1e-4)


def test_tta_averages_mirrored_views_in_eval_only():
    torch.manual_seed(0)
    model = ResNet(tta=1).eval()
    x = torch.randn(2, 3, 32, 32)
    torch.testing.assert_close(model(x), 0.5 * (model.net(x) + model.net(x.flip(3))))
    model.train()
    torch.testing.assert_close(model(x), model.net(x))  # training sees single views


def test_cli_rejects_resnet_flags_for_other_models(capsys):
    with pytest.raises(SystemExit) as e:
        train.main(["--model", "mlp", "--tta", "1"])
    assert e.value.code == 2
    assert "does not apply" in capsys.readouterr().err


def test_cli_course_resnet_runs(tiny_args):
    results = train.main(["--model", "resnet"] + tiny_args + ["--max-steps", "2", "--eval-every", "2"])
    assert results["steps"] == 2 and 0 <= results["test_acc"] <= 1
    assert results["params"] == course_param_count()
    assert results["fit_seconds"] > 0 and results["test_seconds"] > 0


@pytest.mark.slow
@pytest.mark.parametrize("flags", [["--compile"], ["--precision", "bf16-mixed"]])
def test_compile_and_bf16_on_cpu_work_or_fail_in_one_line(tiny_args, flags):
    try:
        results = train.main(["--model", "resnet"] + tiny_args + ["--max-steps", "2", "--eval-every", "2"] + flags)
    except SystemExit as e:  # allowed: a clear one-line error
        assert str(e.code).startswith("error:") and "\n" not in str(e.code)
    else:
        assert results["steps"] == 2
