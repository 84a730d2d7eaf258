"""Speed on a GPU: `train.py --preset fast` (Lightning, logging, checkpoint) against airbench94, same data.

    pip install airbench                                  # 0.1.8: KellerJordan/cifar10-airbench as a package
    python -m bench.speed_gpu --data-dir /work/data [--quick]

Both train from the same cifar-10-batches-py folder: airbench's cached tensors (cifar10/train.pt,
test.pt) are written from it first, so no download happens and both see the same images. Timing
follows airbench: data loading and compile/cuDNN warm-up are excluded (each side does one short
warm-up run first, in this process), training and the final evaluation with its TTA are included.
  ours:     results.json's fit_seconds + test_seconds (Lightning's Timer, from after the data is on the GPU)
  airbench: wall time of train94() + evaluate(tta_level=2), synchronised (it also loads its 30 MB test
            tensor inside train94, which we cannot take out; that is a few ms, in its disfavour)
The rows: seconds (ratio = airbench / ours, goal >= 1/3: within 3x) and test accuracy.
Without a CUDA GPU it says so and measures nothing (rows() returns []).
"""
import argparse
import contextlib
import io
import logging
import os
import statistics
import tempfile
import time
import warnings

import torch

import train
from datamodules import files

from . import common

FULL = dict(runs=3, variants=([], ["--compile"]))  # eager, and torch.compile on top
QUICK = dict(runs=1, variants=([],))
TIME_GOAL = 1 / 3  # issue 5: time-to-94% within 3x of airbench94 on the same GPU


def write_airbench_tensors(data_dir, root):
    """root/cifar10/{train,test}.pt in airbench's format: uint8 (N, 32, 32, 3) HWC images, int64 labels."""
    folder = files.locate(data_dir, download=False)
    os.makedirs(os.path.join(root, "cifar10"), exist_ok=True)
    for split, name in (("train", "train.pt"), ("test", "test.pt")):
        x, y = files.read_split(folder, split)
        torch.save({"images": torch.from_numpy(x).permute(0, 2, 3, 1).contiguous(), "labels": torch.from_numpy(y),
                    "classes": [str(i) for i in range(10)]}, os.path.join(root, "cifar10", name))


def airbench_run(root, epochs=None):
    """One airbench94 run -> (seconds, TTA test accuracy); epochs=None is its full 9.9-epoch recipe."""
    import airbench
    with contextlib.chdir(root):  # airbench.train94 opens its test set at the relative path "cifar10"
        loader = airbench.CifarLoader("cifar10", train=True, batch_size=1024, aug=dict(flip=True, translate=2),
                                      altflip=True)
        test = airbench.CifarLoader("cifar10", train=False, batch_size=2000)
        kwargs = {} if epochs is None else dict(epochs=epochs)
        torch.cuda.synchronize()
        start = time.perf_counter()
        model = airbench.train94(loader, verbose=False, **kwargs)
        acc = airbench.evaluate(model, test, tta_level=2)  # .item(): synchronises
        return time.perf_counter() - start, acc


def ours_run(data_dir, tmp, flags, max_steps=None):
    """One `train.py --preset fast` run -> (seconds as airbench counts them, test accuracy).

    Each run gets a new folder: train.py continues a run folder that holds a checkpoint."""
    out = tempfile.mkdtemp(dir=tmp)
    argv = ["--preset", "fast", "--data-dir", data_dir, "--output-dir", out, "--logger", "csv", *flags]
    if max_steps:
        argv += ["--max-steps", str(max_steps)]
    with contextlib.redirect_stdout(io.StringIO()):
        results = train.main(argv)
    return results["fit_seconds"] + results["test_seconds"], results["test_acc"]


def rows(quick=False, data_dir="data"):
    if not torch.cuda.is_available():
        return []
    sizes = QUICK if quick else FULL
    logging.getLogger("pytorch_lightning").setLevel(logging.ERROR)
    warnings.filterwarnings("ignore")
    out = []
    with tempfile.TemporaryDirectory() as tmp:
        write_airbench_tensors(data_dir, tmp)
        airbench_run(tmp, epochs=1)  # warm-up: CUDA context, cuDNN autotuning
        base = [airbench_run(tmp) for _ in range(sizes["runs"])]
        for flags in sizes["variants"]:
            ours_run(data_dir, tmp, flags, max_steps=10)  # warm-up, and compile
            ours = [ours_run(data_dir, tmp, flags) for _ in range(sizes["runs"])]
            name = "--preset fast" + "".join(f" {f}" for f in flags)
            out.append(common.row(f"{name} vs airbench94: seconds to train + test", "s",
                                  common.summary([t for t, _ in ours]), common.summary([t for t, _ in base]),
                                  higher_is_better=False, goal=TIME_GOAL))
            out.append(common.row(f"{name} vs airbench94: test accuracy (TTA)", "acc",
                                  common.summary([a for _, a in ours]), common.summary([a for _, a in base]),
                                  higher_is_better=True))
            print(f"{name}: acc {statistics.mean(a for _, a in ours):.4f} in {statistics.median(t for t, _ in ours):.2f} s"
                  f" | airbench94: acc {statistics.mean(a for _, a in base):.4f} in "
                  f"{statistics.median(t for t, _ in base):.2f} s", flush=True)
    return out


def main():
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--data-dir", default="data", help="holds cifar-10-batches-py/")
    p.add_argument("--quick", action="store_true", help="one run each, eager only")
    args = p.parse_args()
    if not torch.cuda.is_available():
        print("bench.speed_gpu needs a CUDA GPU; there is none here, so nothing was measured.")
        return
    try:
        import airbench  # noqa: F401
    except ImportError:
        print("bench.speed_gpu needs airbench for its baseline: pip install airbench")
        return
    common.print_table(rows(args.quick, args.data_dir), "Speed on a GPU: --preset fast vs airbench94")


if __name__ == "__main__":
    main()
