"""predict.py: a PNG cut from a test image gets the class the model gives that image's tensor; any image
Pillow reads works; unreadable files and bad runs are one stderr line each with a failing exit status."""
import json
import subprocess
import sys

import numpy as np
import pytest
import torch
from PIL import Image

import predict
from datamodules import CIFAR10DataModule
from datamodules.images import read_image
from inference import load_run
from tests.conftest import ROOT
from tests.trained_runs import trained_run


def fixture_images(cifar_dir, n):
    data = CIFAR10DataModule(cifar_dir, val_size=50)
    data.setup()
    idx = data.splits["test"][:n]
    return data.x[idx], data.y[idx]


def save_png(image, path):
    Image.fromarray(image.permute(1, 2, 0).numpy()).save(path)
    return str(path)


@pytest.mark.parametrize("model_name", ["numpy_mlp", "resnet"])
def test_png_of_a_test_image_gets_the_models_class(model_name, cifar_dir, tmp_path_factory, tmp_path, capsys):
    run = trained_run(model_name, cifar_dir, tmp_path_factory)
    images, _ = fixture_images(cifar_dir, 4)
    paths = [save_png(img, tmp_path / f"{i}.png") for i, img in enumerate(images)]
    model, _ = load_run(run)
    with torch.no_grad():
        probs = model(model.preprocess(images)).softmax(1)
    capsys.readouterr()  # what training printed
    predict.main([run, *paths, "--json", "--top-k", "2"])
    lines = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    assert [line["file"] for line in lines] == paths
    from datamodules.cifar10 import CLASSES
    for line, p in zip(lines, probs):
        assert len(line["top"]) == 2 and line["top"][0]["class"] == CLASSES[int(p.argmax())]
        assert line["top"][0]["prob"] == pytest.approx(p.max().item(), abs=1e-5)


def test_a_32px_png_reads_back_as_the_same_pixels(cifar_dir, tmp_path):
    images, _ = fixture_images(cifar_dir, 1)
    assert torch.equal(read_image(save_png(images[0], tmp_path / "a.png")), images[0])


@pytest.mark.parametrize("mode, size, fmt", [("RGBA", (100, 70), "PNG"), ("L", (40, 40), "PNG"),
                                             ("RGB", (64, 48), "JPEG"), ("P", (32, 32), "GIF")])
def test_any_size_and_mode_becomes_rgb_32px(mode, size, fmt, tmp_path):
    path = tmp_path / f"img.{fmt.lower()}"
    Image.fromarray(np.random.default_rng(0).integers(0, 255, (*size[::-1], 3), dtype=np.uint8)).convert(mode).save(path, fmt)
    x = read_image(str(path))
    assert x.shape == (3, 32, 32) and x.dtype == torch.uint8


def test_folder_and_unreadable_file(cifar_dir, tmp_path_factory, tmp_path, capsys):
    run = trained_run("mlp", cifar_dir, tmp_path_factory)
    images, _ = fixture_images(cifar_dir, 2)
    folder = tmp_path / "imgs"
    folder.mkdir()
    for i, img in enumerate(images):
        save_png(img, folder / f"{i}.png")
    (folder / "notes.txt").write_text("not an image, and not an image extension: skipped")
    (folder / "broken.png").write_bytes(b"not a png")
    capsys.readouterr()
    with pytest.raises(SystemExit) as e:
        predict.main([run, str(folder)])
    out, err = capsys.readouterr()
    assert e.value.code == 1
    assert [line.split(":")[0] for line in out.splitlines()] == [str(folder / "0.png"), str(folder / "1.png")]
    errors = err.strip().splitlines()
    assert len(errors) == 1 and "broken.png: cannot read as an image" in errors[0]
    with pytest.raises(SystemExit) as e:  # a path that is not there: refused before anything is classified
        predict.main([run, str(folder), str(tmp_path / "missing.jpg")])
    out, err = capsys.readouterr()
    assert out == "" and e.value.code == f"error: IMAGE_OR_FOLDER {tmp_path / 'missing.jpg'}: no such file or folder"


def test_bad_run_folder_is_one_line_without_traceback(tmp_path):
    done = subprocess.run([sys.executable, "predict.py", str(tmp_path), "x.png"], cwd=ROOT, capture_output=True,
                          text=True, timeout=120)
    assert done.returncode == 1 and done.stderr.strip() == (f"error: RUN_DIR {tmp_path}: no config.yaml there, so not a run folder; "
                                                            "IMAGE_OR_FOLDER x.png: no such file or folder")  # both at once


def test_top_k_out_of_range_is_a_usage_error(capsys):
    with pytest.raises(SystemExit) as e:
        predict.main(["run", "x.png", "--top-k", "0"])
    assert e.value.code == 2 and len(capsys.readouterr().err.strip().splitlines()) == 1
