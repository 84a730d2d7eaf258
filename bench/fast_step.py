"""The fast recipe's step: train.py's `--preset fast` against a plain PyTorch loop over the same net.

Ours is train.py's path up to the end of fit (bench.timed_fit.fit_like_train_py: config layering,
loggers, the Trainer with its callbacks and the divergence guard). The baseline is the loop a user would
write for the same training: FastResNet as a plain nn.Module with its own optimizer and schedule
(make_optimizer), its dtypes (cast_net), the whitening init from clean images, the scaled loss, the
whitening-bias freeze, lookahead, the same batches from the same data module; nothing else. Both are
timed over the same steady-state steps (the first WARMUP steps and the set-up are not counted), so the
ratio is the per-step cost Lightning and our callbacks add, which on a GPU is host time the GPU may
wait for. On the CPU the clock is this process's CPU seconds (see bench.lightning_overhead.compare).

    python -m bench.fast_step --data-dir data [--quick]

rows(device="cuda") runs the same comparison on a GPU at the recipe's batch size (bench.gpu uses it).
"""
import contextlib
import tempfile

import pytorch_lightning as pl
import torch
import torch.nn.functional as F

from models.fast_resnet import HYP

from . import common
from .timed_fit import Clock, StepClock, config, data_module, fit_like_train_py, quiet

GOAL = 0.9  # of the plain loop's steps per second (issue 15)
# steps: counted steps after `warmup` uncounted ones; repeats: alternating pairs after one warm-up pair.
FULL = dict(batch_size=64, warmup=3, steps=20, repeats=3)  # ~0.3 CPU-s a step here: ~1 min in all
QUICK = dict(batch_size=64, warmup=1, steps=2, repeats=1)
GPU = dict(batch_size=1024, warmup=5, steps=100, repeats=3)  # the recipe's own batch


def flags(sizes, device):
    return ["--preset", "fast", "--batch-size", str(sizes["batch_size"]), "--accelerator", device.type,
            "--max-steps", str(sizes["warmup"] + sizes["steps"]), "--logger", "csv"]


def ours(sizes, data_dir, dm, device):
    """train.py's fit of the counted steps: a function returning their seconds."""
    def run():
        clock = Clock(sizes["warmup"], device)
        with tempfile.TemporaryDirectory() as run_dir, quiet():
            cfg, cls, kwargs = config(flags(sizes, device), data_dir, run_dir)
            fit_like_train_py(cfg, cls, kwargs, dm, run_dir, callbacks=[StepClock(clock)])
        return clock.seconds
    return run


def plain(sizes, data_dir, dm, device):
    """The same training as a plain loop: a function returning the counted steps' seconds."""
    cfg, cls, kwargs = config(flags(sizes, device), data_dir)
    total = cfg["max_steps"]

    def run():
        pl.seed_everything(cfg["seed"], workers=True, verbose=False)
        model = cls(**kwargs)
        model.cast_net(device)
        model = model.to(device).train()
        opt, sched = model.make_optimizer(total)
        clock, step, epoch = Clock(sizes["warmup"], device), 0, 0
        batches = dm.train_dataloader()
        model.net.init_whitening(batches.clean(HYP["whiten_images"]))
        while step < total:
            for x, y in batches:
                clock.begin(step)
                loss = F.cross_entropy(model(x), y, label_smoothing=cfg["label_smoothing"]) * HYP["loss_scale"]
                opt.zero_grad(set_to_none=True)
                loss.backward()
                if epoch >= HYP["whiten_bias_epochs"]:
                    model.net.whiten.bias.grad = None
                opt.step()
                sched.step()
                step += 1
                model.lookahead_step(step, total)
                if step == total:
                    break
            epoch += 1
        clock.end()
        return clock.seconds
    return run


def rows(quick=False, data_dir="data", device="cpu", sizes=None):
    device = torch.device(device)
    sizes = sizes or (GPU if device.type == "cuda" else QUICK if quick else FULL)
    cfg = config(flags(sizes, device), data_dir)[0]
    dm = data_module(cfg)  # on the GPU when cfg's accelerator is one
    sides = (ours(sizes, data_dir, dm, device), plain(sizes, data_dir, dm, device))
    with common.torch_threads(1) if device.type == "cpu" else contextlib.nullcontext():
        for side in sides:  # warm-up: first-call costs (imports, allocator, cuDNN autotuning)
            side()
        times = ([], [])
        for _ in range(sizes["repeats"]):  # alternating, as common.measure_pair does
            for side, out in zip(sides, times):
                out.append(side())
    unit = "steps/CPU-s" if device.type == "cpu" else "steps/s"
    what = (f"--preset fast step vs plain PyTorch loop, batch {sizes['batch_size']}, {device.type}, "
            f"{sizes['steps']} steps after {sizes['warmup']}")
    per = lambda t: common.per_second(common.summary(t), sizes["steps"])  # noqa: E731
    return [common.row(what, unit, per(times[0]), per(times[1]), higher_is_better=True, goal=GOAL)]


if __name__ == "__main__":
    p = common.parser(__doc__)
    args = p.parse_args()
    common.print_table(rows(args.quick, args.data_dir), "The fast recipe's step")
