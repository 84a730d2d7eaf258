"""Your own image files -> what a CIFAR-10 model takes: uint8 RGB (3, 32, 32), as the picture shows.

Every mode Pillow opens is read as what a viewer shows, or refused with one line (BadInput):

    1, L, P, RGB, CMYK, YCbCr, LAB, HSV   Pillow's own conversion to RGB
    RGBA, LA, PA, RGBa, La, and any image with a transparent colour (PNG tRNS, GIF)
                    composited over white (BACKGROUND), as a page or a browser shows it
    I;16, I;16B, I  grey, 16-bit range 0..65535 (what Pillow reads 16-bit PNG, TIFF and PGM into):
                    round(v / 257), so a 16-bit copy of an 8-bit image (v * 257) reads back exactly;
                    values outside 0..65535 (a 32-bit integer TIFF) are refused, not guessed at
    F               grey, float 0.0..1.0 (the float-image convention): round(v * 255); values
                    outside 0..1 or not finite are refused, not guessed at

First the picture is turned upright by its EXIF orientation, and an animation gives its first
frame; last it is centre-cropped to a square and resized to 32x32 (bicubic). A 32x32 image is
used as it is, so a PNG cut from a test image gives back its exact pixels.
"""
import numpy as np
import torch
from PIL import Image, ImageOps

from runfolder import BadInput

SIDE = 32  # CIFAR-10's image side, in pixels
RESAMPLE = Image.Resampling.BICUBIC
BACKGROUND = 255  # what shows through transparent pixels: white, per channel (0..255)
ALPHA_MODES = ("RGBA", "LA", "PA", "RGBa", "La")
SIXTEEN_BIT = 65535  # I;16* and I: the full scale of a 16-bit sample


def read_image(path):
    """An image file -> uint8 tensor (3, 32, 32), as the module docstring describes.
    BadInput (a mode or range it cannot show), OSError (unreadable, not an image) or
    Image.DecompressionBombError otherwise."""
    with Image.open(path) as img:
        img.seek(0)  # an animation's first frame (Image.open starts there; say so)
        rgb = to_rgb(ImageOps.exif_transpose(img))
    if rgb.size != (SIDE, SIDE):
        rgb = ImageOps.fit(rgb, (SIDE, SIDE), RESAMPLE)  # centre crop to a square, then resize
    return torch.from_numpy(np.asarray(rgb).copy()).permute(2, 0, 1)


def to_rgb(img):
    """A PIL image of any mode -> an 8-bit RGB image of what it shows."""
    if img.mode.startswith("I") or img.mode == "F":
        return Image.fromarray(_grey8(img)).convert("RGB")
    if img.mode in ALPHA_MODES or "transparency" in img.info:
        rgba = np.asarray(img.convert("RGBA"), dtype=np.float64)
        alpha = rgba[..., 3:] / 255
        return Image.fromarray(np.rint(rgba[..., :3] * alpha + BACKGROUND * (1 - alpha)).astype(np.uint8))
    try:
        return img.convert("RGB")
    except ValueError as e:
        raise BadInput(f"mode {img.mode} cannot be shown as RGB ({e}); save it as an 8-bit RGB image") from None


def _grey8(img):
    """A 16-bit or 32-bit grey image -> uint8 (H, W), scaled from its range (module docstring)."""
    values = np.asarray(img).astype(np.float64)
    if img.mode == "F":
        scale, top, what = 255, 1.0, "a float image must lie in 0..1"
    else:
        scale, top, what = 255 / SIXTEEN_BIT, SIXTEEN_BIT, f"mode {img.mode} is read as 16-bit grey, 0..{SIXTEEN_BIT}"
    if not np.isfinite(values).all():
        raise BadInput(f"mode {img.mode} holds NaN or infinite values; save it as an 8-bit image")
    if values.size and not (values.min() >= 0 and values.max() <= top):
        raise BadInput(f"mode {img.mode} values span {values.min():g}..{values.max():g}, but {what}; "
                         f"save it as an 8-bit image")
    return np.rint(values * scale).astype(np.uint8)
