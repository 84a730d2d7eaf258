"""load_run: every model's run folder loads with its own class, weights and normalisation, also when moved."""
import os
import shutil
import subprocess
import sys

import pytest
import torch

from datamodules import CIFAR10DataModule
from inference import load_run
from tests.conftest import ROOT
from tests.trained_runs import MODELS, trained_run
from runfolder import BadInput
from runfolder.folder import RunFolder


@pytest.fixture(scope="module", params=MODELS)
def run(request, cifar_dir, tmp_path_factory):
    return trained_run(request.param, cifar_dir, tmp_path_factory)


def test_best_checkpoint_reproduces_the_runs_test_accuracy(run, cifar_dir):
    model, cfg = load_run(run, checkpoint="best")
    assert not model.training and cfg["model"] in MODELS
    assert not any(k.startswith("preprocess") for k in model.state_dict())  # the checkpoint's weights only
    data = CIFAR10DataModule(cifar_dir, val_size=cfg["val_size"], normalize=cfg["normalize"])
    data.setup()
    images, labels = data.x[data.splits["test"]], data.y[data.splits["test"]]
    x, _ = next(iter(data.test_dataloader()))
    assert torch.allclose(model.preprocess(images[:len(x)]), x)  # the same inputs the run was tested on
    with torch.no_grad():
        acc = (model(model.preprocess(images)).argmax(1) == labels).float().mean().item()
    # A run tested in bf16 or fp16 may differ from this float32 forward on a few images.
    tolerance = 1e-6 if str(cfg["precision"]).startswith("32") else 0.05
    assert acc == pytest.approx(RunFolder(run).read_results()["test_acc"], abs=tolerance)


def test_moved_folder_loads_its_own_checkpoints(run, tmp_path):
    moved = shutil.copytree(run, tmp_path / "moved")
    model, _ = load_run(str(moved), checkpoint="last")
    assert model.checkpoint_path.startswith(str(moved))
    original, _ = load_run(run, checkpoint="last")
    for (k, a), (_, b) in zip(original.state_dict().items(), model.state_dict().items()):
        assert torch.equal(a, b), k
    path = os.path.join(run, "checkpoints", "last.ckpt")
    assert load_run(str(moved), checkpoint=path)[0].checkpoint_path == path  # an explicit path is used as given


def test_loading_leaves_the_callers_random_state_alone(run):
    before = torch.random.get_rng_state()
    load_run(run)
    assert torch.equal(before, torch.random.get_rng_state())


@pytest.fixture
def mlp_copy(cifar_dir, tmp_path_factory, tmp_path):
    return shutil.copytree(trained_run("mlp", cifar_dir, tmp_path_factory), tmp_path / "copy")


def test_not_a_run_folder(tmp_path):
    with pytest.raises(BadInput, match="not a run folder"):
        load_run(str(tmp_path))


def test_missing_checkpoint(mlp_copy):
    with pytest.raises(BadInput, match="no such file"):
        load_run(str(mlp_copy), checkpoint=str(mlp_copy / "nope.ckpt"))
    for f in (mlp_copy / "checkpoints").iterdir():
        f.unlink()
    with pytest.raises(BadInput, match="no best checkpoint"):
        load_run(str(mlp_copy))


def test_corrupt_checkpoint_is_one_line(mlp_copy):
    (mlp_copy / "checkpoints" / "last.ckpt").write_bytes(b"not a checkpoint")
    with pytest.raises(BadInput) as e:
        load_run(str(mlp_copy), checkpoint="last")
    assert "last.ckpt: not a checkpoint" in str(e.value) and "\n" not in str(e.value)


def test_unknown_model_in_config(mlp_copy):
    config = (mlp_copy / "config.yaml").read_text().replace("model: mlp", "model: vgg")
    (mlp_copy / "config.yaml").write_text(config)
    with pytest.raises(BadInput, match="model 'vgg' is none of"):
        load_run(str(mlp_copy))


def test_weights_of_another_shape(mlp_copy):
    config = (mlp_copy / "config.yaml").read_text().replace("- 100", "- 50")
    (mlp_copy / "config.yaml").write_text(config)
    with pytest.raises(BadInput, match="cannot load as a mlp checkpoint .RuntimeError"):
        load_run(str(mlp_copy))


def test_models_package_imports_no_torch():
    code = "import sys, models; assert 'torch' not in sys.modules"
    subprocess.run([sys.executable, "-c", code], cwd=ROOT, check=True)
