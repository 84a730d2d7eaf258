"""datamodules/images.py: every image mode Pillow opens reads as what it shows.

Each case saves one picture (a fixture test image, 48x40 so the crop and resize run too) twice: as an
8-bit RGB PNG of what it shows, and in another mode or form. Both must read back to the same pixels and
get the same top class from a trained model. The tolerance is 0, argued per case: each other-mode file
holds values the documented mapping sends exactly onto the 8-bit ones (16-bit v = 257 g + d with
|d| <= 128, so round(v / 257) = g; float g / 255 + e with |e| < 0.5 / 255; alpha over white is the
rational (c a + 255 (255 - a)) / 255, whose fraction k / 255 is never a rounding tie; CMYK from RGB
has K = 0 and C = 255 - R, Pillow's inverse is exact).
"""
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
from runfolder import BadInput
from tests.conftest import ROOT
from tests.trained_runs import trained_run

W, H = 48, 40  # not CIFAR's 32x32: read_image's crop and resize run, and a wrong rotation would show


@pytest.fixture(scope="module")
def picture(cifar_dir):
    """A fixture test image as uint8 (H, W, 3), nearest-upscaled so it is still what the model saw."""
    data = CIFAR10DataModule(cifar_dir, val_size=50)
    data.setup()
    image = data.x[data.splits["test"][0]].permute(1, 2, 0).numpy()
    return np.asarray(Image.fromarray(image).resize((W, H), Image.Resampling.NEAREST))


def grey(rgb):
    return np.asarray(Image.fromarray(rgb).convert("L"))


def rgb_of(g):
    return np.repeat(g[..., None], 3, axis=2)


def alpha_ramp():
    return np.linspace(0, 255, H * W).round().astype(np.uint8).reshape(H, W)


def over_white(rgb, alpha):
    """Integer compositing, rounded half up (never a tie: see the module docstring)."""
    c, a = rgb.astype(np.int64), alpha.astype(np.int64)[..., None]
    return ((c * a + 255 * (255 - a) + 127) // 255).astype(np.uint8)


def noise(size, high):
    return np.random.default_rng(1).integers(-high, high + 1, size)


# Each maker: (picture, folder) -> (the 8-bit RGB array it shows, the other file, the mode it must open as).
def mode_1(p, d):
    b = grey(p) > 127
    Image.fromarray(b).save(d / "x.png")
    return rgb_of(np.where(b, 255, 0).astype(np.uint8)), d / "x.png", "1"


def mode_L(p, d):
    Image.fromarray(grey(p)).save(d / "x.png")
    return rgb_of(grey(p)), d / "x.png", "L"


def mode_P(p, d):
    q = Image.fromarray(p).quantize(64)
    q.save(d / "x.png")
    palette = np.array(q.getpalette()[:768], dtype=np.uint8).reshape(-1, 3)
    return palette[np.asarray(q)], d / "x.png", "P"


def mode_P_transparent(p, d):
    q = Image.fromarray(p).quantize(64)
    q.save(d / "x.png", transparency=0)  # palette entry 0 is see-through
    palette = np.array(q.getpalette()[:768], dtype=np.uint8).reshape(-1, 3)
    shown = palette[np.asarray(q)]
    shown[np.asarray(q) == 0] = 255
    return shown, d / "x.png", "P"


def mode_RGBA(p, d):
    Image.fromarray(np.dstack([p, alpha_ramp()])).save(d / "x.png")
    return over_white(p, alpha_ramp()), d / "x.png", "RGBA"


def mode_LA(p, d):
    Image.fromarray(np.dstack([grey(p), alpha_ramp()]), "LA").save(d / "x.png")
    return rgb_of(over_white(grey(p)[..., None], alpha_ramp())[..., 0]), d / "x.png", "LA"


def mode_CMYK(p, d):
    Image.fromarray(p).convert("CMYK").save(d / "x.tif")
    return p, d / "x.tif", "CMYK"


def mode_I16(p, d):
    v = np.clip(grey(p).astype(np.int64) * 257 + noise((H, W), 128), 0, 65535).astype(np.uint16)
    Image.fromarray(v).save(d / "x.png")  # the case: a 16-bit greyscale PNG
    return rgb_of(grey(p)), d / "x.png", "I;16"


def mode_I(p, d):
    v = np.clip(grey(p).astype(np.int64) * 257 + noise((H, W), 128), 0, 65535)
    Image.fromarray(v.astype(np.int32), "I").save(d / "x.tif")
    return rgb_of(grey(p)), d / "x.tif", "I"


def mode_F(p, d):
    v = (grey(p) + noise((H, W), 40) / 100) / 255  # within 0.4 / 255 of each 8-bit value
    Image.fromarray(np.clip(v, 0, 1).astype(np.float32), "F").save(d / "x.tif")
    return rgb_of(grey(p)), d / "x.tif", "F"


def exif_rotated(orientation, stored):
    def make(p, d):
        exif = Image.Exif()
        exif[0x0112] = orientation  # Orientation: how to turn the stored pixels to show them upright
        Image.fromarray(np.ascontiguousarray(stored(p))).save(d / "x.jpg", quality=100, subsampling=0, exif=exif)
        Image.fromarray(np.ascontiguousarray(stored(p))).save(d / "y.png", exif=exif)
        return p, d / "y.png", "RGB"
    return make


def gif_first_frame(p, d):
    first = Image.fromarray(p).quantize(64)
    first.save(d / "x.gif", save_all=True, append_images=[Image.fromarray(255 - p).quantize(64)], duration=100)
    return np.asarray(first.convert("RGB")), d / "x.gif", "P"


def apng_first_frame(p, d):
    Image.fromarray(p).save(d / "x.png", save_all=True, append_images=[Image.fromarray(255 - p)], duration=100)
    return p, d / "x.png", "RGB"


CASES = {"1": mode_1, "L": mode_L, "P": mode_P, "P-transparent": mode_P_transparent, "RGBA": mode_RGBA,
         "LA": mode_LA, "CMYK": mode_CMYK, "I;16": mode_I16, "I": mode_I, "F": mode_F,
         "exif-mirror": exif_rotated(2, np.fliplr), "exif-180": exif_rotated(3, lambda p: np.rot90(p, 2)),
         "exif-90cw": exif_rotated(6, lambda p: np.rot90(p, 1)), "exif-90ccw": exif_rotated(8, lambda p: np.rot90(p, -1)),
         "gif-animation": gif_first_frame, "apng-animation": apng_first_frame}


@pytest.mark.parametrize("case", list(CASES))
def test_other_mode_reads_as_its_8bit_rgb_version(case, picture, cifar_dir, tmp_path_factory, tmp_path):
    shown, other, mode = CASES[case](picture, tmp_path)
    with Image.open(other) as img:
        assert img.mode == mode  # the file really is in the mode the case is named for
    reference = tmp_path / "reference.png"
    Image.fromarray(shown).save(reference)
    expected, got = read_image(str(reference)), read_image(str(other))
    assert got.shape == (3, 32, 32) and got.dtype == torch.uint8
    assert torch.equal(got, expected), f"max difference {(got.int() - expected.int()).abs().max()}"
    model, _ = load_run(trained_run("mlp", cifar_dir, tmp_path_factory))
    assert predict.classify(model, torch.stack([expected, got])).argmax(1).unique().numel() == 1


def test_exif_rotation_reads_upright_from_jpeg_too(picture, tmp_path):
    exif_rotated(6, lambda p: np.rot90(p, 1))(picture, tmp_path)
    Image.fromarray(picture).save(tmp_path / "upright.jpg", quality=100, subsampling=0)
    a, b = read_image(str(tmp_path / "x.jpg")), read_image(str(tmp_path / "upright.jpg"))
    # JPEG is lossy, and the two files compress differently oriented blocks: close, not equal.
    # A wrong rotation differs by tens of levels on this picture; 8 levels covers quality-100 JPEG noise.
    assert (a.int() - b.int()).abs().float().mean() < 8


@pytest.mark.parametrize("values, mode, fmt, message", [
    (np.full((8, 8), 200.0), "F", "tif", "mode F values span 200..200, but a float image must lie in 0..1"),
    (np.full((8, 8), np.nan), "F", "tif", "mode F holds NaN or infinite values"),
    (np.full((8, 8), 70000), "I", "tif", "mode I values span 70000..70000, but mode I is read as 16-bit grey"),
    (np.full((8, 8), -5), "I", "tif", "mode I values span -5..-5"),
])
def test_values_outside_the_modes_range_are_refused_in_one_line(values, mode, fmt, message, tmp_path):
    path = tmp_path / f"x.{fmt}"
    Image.fromarray(values.astype(np.float32 if mode == "F" else np.int32), mode).save(path)
    with pytest.raises(BadInput, match=message.replace("(", r"\(").replace(".", r"\.")):
        read_image(str(path))


def test_predict_refuses_such_a_file_in_one_line_and_classifies_the_rest(cifar_dir, tmp_path_factory, tmp_path,
                                                                         picture):
    run = trained_run("mlp", cifar_dir, tmp_path_factory)
    Image.fromarray(np.full((8, 8), 200.0, np.float32), "F").save(tmp_path / "bad.tif")
    Image.fromarray(picture).save(tmp_path / "good.png")
    done = subprocess.run([sys.executable, "predict.py", run, str(tmp_path / "bad.tif"), str(tmp_path / "good.png")],
                          cwd=ROOT, capture_output=True, text=True, timeout=300)
    assert done.returncode == 1 and "Traceback" not in done.stderr
    assert done.stderr.strip().splitlines() == [f"error: {tmp_path / 'bad.tif'}: cannot read as an image "
                                                f"(mode F values span 200..200, but a float image must lie in 0..1; "
                                                f"save it as an 8-bit image)"]
    assert done.stdout.startswith(f"{tmp_path / 'good.png'}: ") and len(done.stdout.splitlines()) == 1
