"""Classify your own images with a trained run: the top-k classes and their probabilities per file.

    python predict.py runs/X photo.jpg more/ [--top-k 3] [--json] [--checkpoint best|last|PATH] [--raw-weights]

Any image Pillow opens is read as what it shows (datamodules/images.py: every mode, 16-bit and float
grey scaled from their range, transparency over white, EXIF orientation, an animation's first frame),
or refused in one line; then centre-cropped to a square and resized to 32x32 (a 32x32 image is used as
it is) and normalised as the run was trained. A folder contributes the files in it, sorted, whose
extension Pillow knows. A path that is missing stops the command before anything is classified.

Output: one line per file, `FILE: cat 0.812  dog 0.104  frog 0.041`, or with --json one JSON object
per line, {"file": ..., "top": [{"class": ..., "prob": ...}, ...]}. A file that cannot be read gets
one line on stderr and the others still run; the exit status is 1 when any failed. A run trained with
--ema predicts with its averaged weights unless --raw-weights is given.
"""
import argparse
import json
import os
import sys

from config.checks import FILE_OR_FOLDER, RUN_FOLDER, Parser, checkpoint_arg, command_name, require
from datamodules.files import CLASSES
from inference import add_weights_flag
from runfolder import BadInput, one_line_errors
from training import console

# torch and Pillow are imported in the functions that use them, after the flags are read: --help and a
# bad flag answer at once (tests/test_startup.py).

BATCH = 256  # images per forward pass


def top_k(text):
    k = int(text) if text.isdigit() else 0
    if not 1 <= k <= len(CLASSES):
        raise argparse.ArgumentTypeError(f"expected a whole number from 1 to {len(CLASSES)}, got {text!r}")
    return k


def build_parser(prog="predict.py"):
    p = Parser(prog=prog, description="Classify images with a trained run's model.")
    p.add_argument("run_dir", metavar="RUN_DIR", help="a run folder written by train.py")
    p.add_argument("paths", nargs="+", metavar="IMAGE_OR_FOLDER", help="image files, or folders of them")
    p.add_argument("--top-k", type=top_k, default=3, help="classes to show per image (default 3)")
    p.add_argument("--json", action="store_true", help="one JSON object per line instead of text")
    p.add_argument("--checkpoint", default="best", help="best (default; what results.json's test_acc used), last, or a .ckpt path")
    add_weights_flag(p)
    return p


def expand(paths):
    """The files to classify: files as given, and each folder's image files (by Pillow's extensions), sorted."""
    from PIL import Image

    known = {ext.lower() for ext in Image.registered_extensions()}
    files = []
    for path in paths:
        if os.path.isdir(path):
            files += sorted(os.path.join(path, f) for f in os.listdir(path)
                            if os.path.splitext(f)[1].lower() in known and os.path.isfile(os.path.join(path, f)))
        else:
            files.append(path)
    return files


def classify(model, images):
    """uint8 (N, 3, 32, 32) -> class probabilities (N, C)."""
    import torch

    with torch.inference_mode():
        probs = [model(model.preprocess(batch.to(model.device))).float().softmax(1).cpu() for batch in images.split(BATCH)]
    return torch.cat(probs)


@one_line_errors
def main(argv=None):
    args = build_parser(command_name("predict.py", argv)).parse_args(argv)
    require(("RUN_DIR", args.run_dir, RUN_FOLDER), checkpoint_arg(args.checkpoint),
            *(("IMAGE_OR_FOLDER", path, FILE_OR_FOLDER) for path in args.paths))
    console.quiet()
    import torch
    from PIL import Image, UnidentifiedImageError

    from datamodules.images import read_image
    from inference import load_run

    model, _ = load_run(args.run_dir, args.checkpoint, raw_weights=args.raw_weights)
    files, images, failed = [], [], 0
    for path in expand(args.paths):
        try:
            images.append(read_image(path))
            files.append(path)
        except (BadInput, OSError, ValueError, UnidentifiedImageError, Image.DecompressionBombError) as e:
            reason = str(e).splitlines()[0] if str(e) else type(e).__name__
            print(f"error: {path}: cannot read as an image ({reason})", file=sys.stderr)
            failed += 1
    if not files and not failed:
        sys.exit(f"error: no image files in {', '.join(args.paths)}")
    if images:
        probs = classify(model, torch.stack(images))
        values, indices = probs.topk(args.top_k, dim=1)
        for path, vals, idx in zip(files, values.tolist(), indices.tolist()):
            top = [(CLASSES[i], p) for i, p in zip(idx, vals)]
            if args.json:
                print(json.dumps({"file": path, "top": [{"class": c, "prob": round(p, 6)} for c, p in top]}))
            else:
                print(f"{path}: " + "  ".join(f"{c} {p:.3f}" for c, p in top))
    if failed:
        sys.exit(1)



def cli():
    """The installed command, cifar10-lab-predict: main's return value is for Python callers, not an exit status."""
    main()


if __name__ == "__main__":
    main()
