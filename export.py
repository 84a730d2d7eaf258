"""Export a trained run's model as one self-contained file: uint8 images in, logits out, normalisation inside.

    python export.py runs/X --format onnx|torchscript|npz [--out FILE] [--checkpoint best|last|PATH] [--raw-weights]
                     [--data-dir DIR] [--overwrite]

    onnx         RUN_DIR/model.onnx: input "images" uint8 (N, 3, 32, 32), output "logits" float32 (N, 10);
                 any N. Checked by running the file in onnxruntime.
    torchscript  RUN_DIR/model.pt: torch.jit.load(FILE)(images) -> logits; no project code needed.
    npz          RUN_DIR/model.npz, the NumPy MLP's only format: its arrays, for `npz_logits` below
                 (NumPy only; copy the function). Keys: mean, std (3, 1, 1) in pixel units, and w0, b0,
                 w1, b1, ... for the Linear layers, ELU between them.

Images are RGB, channels first, 0..255, as CIFAR-10 stores them. An existing output file is kept, and
the command refused, unless --overwrite. After writing, the file is loaded back and compared with the
PyTorch model on the first 512 test images: the largest absolute logit difference must be under 1e-4
(relative to the largest logit when that is above 1, see TOLERANCE) and every argmax the same, else the
command fails (status 1) and says by how much. The ResNet's test-time augmentation (config `tta`) is
part of the exported model.
A run trained with --ema exports its averaged weights unless --raw-weights is given.
"""
import os
import sys
import warnings

import numpy as np

from config.checks import FOLDER, NEW_FILE, RUN_FOLDER, Parser, checkpoint_arg, command_name, require
from inference import add_weights_flag
from runfolder import BadInput, one_line_errors
from training import console

# torch, onnxruntime and the model classes are imported in the functions that use them, after the flags
# are read: --help and a bad flag answer at once (tests/test_startup.py).

FORMATS = {"onnx": ".onnx", "torchscript": ".pt", "npz": ".npz"}
DEFAULT_NAME = "model"  # RUN_DIR/model.<extension> unless --out says otherwise
CHECK_IMAGES = 512      # test images the export is compared on
# Largest allowed |logit difference| against the PyTorch model: 1e-4, times the largest |logit| when that is
# above 1. float32 carries ~7 digits, so reordered sums (onnxruntime's kernels) differ by ~1e-7 of the
# values summed; an MLP on pixel-unit inputs can have logits in the hundreds (2.4e-4 apart at 880).
TOLERANCE = 1e-4


def build_parser(prog="export.py"):
    p = Parser(prog=prog, description="Export a trained run's model (uint8 images in, logits out) and check it.")
    p.add_argument("run_dir", metavar="RUN_DIR", help="a run folder written by train.py")
    p.add_argument("--format", required=True, choices=list(FORMATS), help="onnx, torchscript, or npz (numpy_mlp)")
    p.add_argument("--out", metavar="FILE", help="where to write (default RUN_DIR/model.onnx, .pt or .npz)")
    p.add_argument("--checkpoint", default="best", help="best (default; what results.json's test_acc used), last, or a .ckpt path")
    add_weights_flag(p)
    p.add_argument("--data-dir", metavar="DIR", help="CIFAR-10 for the check (default: the run's own data_dir)")
    p.add_argument("--overwrite", action="store_true", help="replace the output file if it exists (default: keep it, refuse)")
    return p


def exported_program(model, example):
    """torch.export's graph of uint8 images -> logits: the run's preprocessing, then its model (with its
    test-time augmentation); any batch size. Plain aten ops, which both formats take (TorchScript cannot
    trace the LayerNorm MLP's custom autograd.Function, torch.export inlines it)."""
    import torch

    class Exported(torch.nn.Module):
        def __init__(self, model):
            super().__init__()
            self.preprocess, self.model = model.preprocess, model

        def forward(self, images):
            return self.model(self.preprocess(images))

    return torch.export.export(Exported(model).eval(), (example,), dynamic_shapes=({0: torch.export.Dim("batch")},))


def npz_logits(params, images):
    """params: np.load("model.npz"); images: uint8 (N, 3, 32, 32) -> logits float32 (N, 10). NumPy only."""
    h = ((images.astype(np.float32) - params["mean"]) / params["std"]).reshape(len(images), -1)
    n_layers = sum(k.startswith("w") for k in params)
    for i in range(n_layers):
        h = h @ params[f"w{i}"].T + params[f"b{i}"]
        if i < n_layers - 1:
            h = np.where(h > 0, h, np.expm1(np.minimum(h, 0)))  # ELU with alpha 1
    return h


def write_npz(model, path):
    import torch

    linears = [m for m in model.mlp.modules if "weight" in m.params]
    arrays = {"mean": model.preprocess.mean.cpu().numpy()[0], "std": model.preprocess.std.cpu().numpy()[0]}
    for i, m in enumerate(linears):
        arrays[f"w{i}"], arrays[f"b{i}"] = m.params["weight"], m.params["bias"]
    with open(path, "wb") as f:  # a file object, so numpy keeps the name as given (no .npz appended)
        np.savez(f, **arrays)
    with np.load(path, allow_pickle=False) as f:
        params = dict(f)  # read back from the file, as a consumer would (arrays only, never pickled objects)
    return lambda images: torch.from_numpy(npz_logits(params, images.numpy()))


def write_onnx(model, path, example):
    import onnxruntime
    import torch

    torch.onnx.export(exported_program(model, example), f=path, input_names=["images"], output_names=["logits"],
                      external_data=False, verbose=False)  # one file: the weights inside
    session = onnxruntime.InferenceSession(path, providers=["CPUExecutionProvider"])
    return lambda images: torch.from_numpy(session.run(None, {"images": images.numpy()})[0])


def write_torchscript(model, path, example):
    import torch

    with warnings.catch_warnings():
        warnings.simplefilter("ignore", FutureWarning)  # PyTorch marks TorchScript deprecated; it is what was asked for
        warnings.simplefilter("ignore", torch.jit.TracerWarning)  # the graph's batch-size guard, true when traced
        torch.jit.save(torch.jit.trace(exported_program(model, example).module(), example), path)
        return torch.jit.load(path)


@one_line_errors
def main(argv=None):
    args = build_parser(command_name("export.py", argv)).parse_args(argv)
    out = args.out or os.path.join(args.run_dir, DEFAULT_NAME + FORMATS[args.format])
    require(("RUN_DIR", args.run_dir, RUN_FOLDER), checkpoint_arg(args.checkpoint), ("--data-dir", args.data_dir, FOLDER),
            ("--out" if args.out else "output", out, NEW_FILE, args.overwrite))
    console.quiet()
    import torch

    from inference import load_run
    from inference.data import test_data, test_images
    from models.numpy_classifier import NumpyMLPClassifier

    model, cfg = load_run(args.run_dir, args.checkpoint, raw_weights=args.raw_weights)
    is_numpy = isinstance(model, NumpyMLPClassifier)
    if is_numpy != (args.format == "npz"):
        raise BadInput(f"{cfg['model']} exports with --format npz only" if is_numpy
                         else f"--format npz is for numpy_mlp runs; {cfg['model']} exports to onnx or torchscript")
    if os.path.dirname(out):
        os.makedirs(os.path.dirname(out), exist_ok=True)
    images, _ = test_images(test_data(cfg, args.data_dir), CHECK_IMAGES)
    with torch.inference_mode():
        expected = model(model.preprocess(images)).float()
    if args.format == "npz":
        exported = write_npz(model, out)
    elif args.format == "onnx":
        exported = write_onnx(model, out, images[:2])
    else:
        exported = write_torchscript(model, out, images[:2])
    with torch.inference_mode():
        got = exported(images).float()
    diff = (got - expected).abs().max().item()
    allowed = TOLERANCE * max(1.0, expected.abs().max().item())
    same = int((got.argmax(1) == expected.argmax(1)).sum())
    check = f"max |logit diff| {diff:.1e} (allowed {allowed:.0e}), same argmax on {same}/{len(images)} test images"
    if not (diff < allowed and same == len(images)):
        sys.exit(f"error: {out} differs from the PyTorch model ({check})")
    print(f"wrote {out} ({args.format}, {model.weights} weights, {os.path.getsize(out) / 2**20:.1f} MiB): matches the PyTorch model, {check}")



def cli():
    """The installed command, cifar10-lab-export: main's return value is for Python callers, not an exit status."""
    main()


if __name__ == "__main__":
    main()
