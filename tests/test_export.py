"""export.py: each format loads back without project code and matches the PyTorch model; wrong formats
and bad runs are one-line errors."""
import numpy as np
import pytest
import torch

import export
from datamodules import CIFAR10DataModule
from inference import load_run
from tests.trained_runs import trained_run


def fixture_images(cifar_dir, n=7):
    """n test images: a batch size other than the one the export was traced with."""
    data = CIFAR10DataModule(cifar_dir, val_size=50)
    data.setup()
    return data.x[data.splits["test"][:n]]


def reload(path, fmt):
    """The exported file as a consumer would run it: onnxruntime, torch.jit, or NumPy alone."""
    if fmt == "onnx":
        import onnxruntime
        session = onnxruntime.InferenceSession(path, providers=["CPUExecutionProvider"])
        return lambda x: torch.from_numpy(session.run(["logits"], {"images": x.numpy()})[0])
    if fmt == "torchscript":
        return torch.jit.load(path)
    params = dict(np.load(path))
    return lambda x: torch.from_numpy(export.npz_logits(params, x.numpy()))


@pytest.mark.parametrize("model_name, fmt", [
    ("resnet", "onnx"),          # TTA 2 (flips, reflect-padded shifts) inside the graph
    ("resnet", "torchscript"),
    ("layernorm_mlp", "torchscript"),  # its LayerNorm is a custom autograd.Function
    ("mlp", "onnx"),
    ("numpy_mlp", "npz"),
    ("fast_resnet", "onnx"),     # fp16 weights on a GPU; the export is float32, compared with the float32 model
])
def test_export_round_trips(model_name, fmt, cifar_dir, tmp_path_factory, tmp_path, capsys):
    run = trained_run(model_name, cifar_dir, tmp_path_factory)
    out = str(tmp_path / f"model.{fmt}")
    capsys.readouterr()
    export.main([run, "--format", fmt, "--out", out])
    line = capsys.readouterr().out.strip()
    assert line.startswith(f"wrote {out} ({fmt}") and "same argmax on 100/100 test images" in line
    model, _ = load_run(run)
    images = fixture_images(cifar_dir)
    with torch.no_grad():
        expected, got = model(model.preprocess(images)), reload(out, fmt)(images)
    assert got.shape == (7, 10) and torch.equal(got.argmax(1), expected.argmax(1))
    assert (got - expected).abs().max() < export.TOLERANCE * max(1.0, expected.abs().max().item())


@pytest.mark.parametrize("model_name, fmt, message", [
    ("numpy_mlp", "onnx", "numpy_mlp exports with --format npz only"),
    ("mlp", "npz", "--format npz is for numpy_mlp runs"),
])
def test_format_the_model_cannot_take(model_name, fmt, message, cifar_dir, tmp_path_factory, tmp_path, capsys):
    run = trained_run(model_name, cifar_dir, tmp_path_factory)
    capsys.readouterr()
    with pytest.raises(SystemExit) as e:
        export.main([run, "--format", fmt, "--out", str(tmp_path / "x")])
    assert message in str(e.value.code) and not (tmp_path / "x").exists()


def test_missing_checkpoint_and_missing_data(cifar_dir, tmp_path_factory, tmp_path):
    run = trained_run("mlp", cifar_dir, tmp_path_factory)
    with pytest.raises(SystemExit) as e:
        export.main([run, "--format", "onnx", "--checkpoint", str(tmp_path / "no.ckpt")])
    assert e.value.code == f"error: --checkpoint {tmp_path / 'no.ckpt'}: no such file"
    with pytest.raises(SystemExit) as e:
        export.main([run, "--format", "onnx", "--data-dir", str(tmp_path), "--out", str(tmp_path / "m.onnx")])
    assert str(e.value.code).startswith(f"error: no CIFAR-10 in {tmp_path}")
