"""Lightning overhead: train.py's step against a plain PyTorch loop doing the same training, for every model.

Ours is train.py's own path (training/): its config layering (`resolve`), `build_loggers`, `build_trainer`
(with its checkpointing, validation, logging and callbacks), the divergence guard `training.run.train` adds,
and `trainer.fit` (`fit_like_train_py`). The baseline is the loop a user would write: the same LightningModule
used as a plain nn.Module, its own optimizer (configure_optimizers), the same batches from the same data
module, the same precision; forward, cross-entropy, backward, step, and the same validation at the same
steps over the same images (loss and accuracy read back), so like is compared with like. Data loading is
done once, before both.

Both sides are timed over the same steady-state steps: from the start of step `warmup` to the end of the
run (its last validation included), so what is compared is the per-step cost, set-up excluded; seconds
of CPU on a CPU (see compare), of wall time on a GPU (bench.timed_fit's Clock). fast_resnet's row is bench.fast_step's (its plain
loop also does the recipe's whitening, lookahead and schedule).

    python -m bench.lightning_overhead --data-dir data [--quick] [--ablate]

--ablate times train.py with one feature changed at a time, to show what the gap is made of.
"""
import tempfile

import pytorch_lightning as pl
import torch
import torch.nn.functional as F

from . import common, fast_step
from .timed_fit import Clock, StepClock, config, data_module, fit_like_train_py, quiet

# (label, train.py flags, warm-up steps not counted): each model at its course defaults (log every 10,
# validate every --eval-every on 5000 images; W&B offline and CSV; --steps-per-call auto: 10 optimizer steps
# per Lightning step in each of these rows), long enough for a few validations; the MLP again without W&B
# (CSV only), and both MLPs at one step per Lightning step (what Lightning's loop costs without --steps-per-call).
# The course ResNet (~0.5 CPU-s a step here) validates every 10 steps on 500 images, so validation is not
# most of its time. Warm-up steps: a multiple of 10, where Lightning's steps begin.
FULL = dict(repeats=3, warmup=1, runs=[
    ("mlp", ["--model", "mlp", "--max-steps", "420"], 20),
    ("mlp --logger csv", ["--model", "mlp", "--max-steps", "420", "--logger", "csv"], 20),  # what W&B adds
    ("layernorm_mlp", ["--model", "layernorm_mlp", "--max-steps", "420"], 20),
    ("mlp --steps-per-call 1", ["--model", "mlp", "--max-steps", "420", "--steps-per-call", "1"], 20),
    ("layernorm_mlp --steps-per-call 1", ["--model", "layernorm_mlp", "--max-steps", "420", "--steps-per-call", "1"],
     20),
    ("resnet", ["--model", "resnet", "--max-steps", "30", "--eval-every", "10", "--val-size", "500"], 10),
    # like with like: the plain loop writes no checkpoint, so ours writes only last.ckpt at the end (a real
    # run's best and last checkpoints come every --eval-every 500 steps, this row's every 10)
    ("resnet --checkpoint end", ["--model", "resnet", "--max-steps", "30", "--eval-every", "10", "--val-size", "500",
                                 "--checkpoint", "end"], 10)])
TINY = ["--val-size", "50", "--eval-batch-size", "25"]  # the test fixture has 300 training images
QUICK = dict(repeats=1, warmup=0, runs=[
    ("mlp", ["--model", "mlp", "--max-steps", "4", "--eval-every", "2", "--log-every", "1", "--batch-size", "8"]
     + TINY, 1),
    ("resnet", ["--model", "resnet", "--max-steps", "3", "--eval-every", "2", "--batch-size", "4"] + TINY, 1)])
GOAL = 0.9  # of the plain loop's steps/s (issue 18)
# One change each against train.py's defaults (run with --ablate): what each part of the gap costs.
# (what, extra flags, options): terminal = stdout is a terminal (progress bar instead of log lines),
# step_logging = "none": the model's training_step logs nothing (no train/loss, no train/acc metric);
# "log steps": it logs only on the steps the logger writes (every log_every), the rest compute the loss only.
BARE = ["--logger", "none", "--eval-every", "1000000", "--checkpoint", "end"]
ABLATIONS = [
    ("train.py defaults", [], {}),
    ("CSV logger, no W&B", ["--logger", "csv"], {}),
    ("no logger", ["--logger", "none"], {}),
    ("log every 50 steps, not 10", ["--log-every", "50"], {}),
    ("no validation", ["--eval-every", "1000000"], {}),
    ("checkpoint at the end only", ["--checkpoint", "end"], {}),
    ("progress bar (a terminal)", [], dict(terminal=True)),
    ("model logs nothing per step", [], dict(step_logging="none")),
    ("model logs on logged steps only", [], dict(step_logging="log steps")),
    ("bare: no logger, validation, per-step logging; end checkpoint", BARE, dict(step_logging="none")),
]
ABLATE = dict(repeats=2, warmup=0)  # CPU time varies ~2% between runs; a warm-up pair runs first


def with_step_logging(cls, step_logging):
    """cls whose training_step logs on no step ("none") or only on the steps the logger writes ("log steps")."""
    class Variant(cls):
        def training_step(self, batch, batch_idx):
            if step_logging == "log steps" and self.global_step % self.trainer.log_every_n_steps == 0:
                return super().training_step(batch, batch_idx)
            x, y = batch
            return F.cross_entropy(self(x), y, label_smoothing=self.hparams.label_smoothing)
    return Variant


def train_py(flags, data_dir, dm, warmup, terminal=False, step_logging="every step"):
    """One train.py fit (no test): a function returning the seconds of its steps from step `warmup` on."""
    def fit():
        with tempfile.TemporaryDirectory() as run_dir, quiet(terminal):
            cfg, cls, kwargs = config(flags, data_dir, run_dir)
            cls = cls if step_logging == "every step" else with_step_logging(cls, step_logging)
            clock = Clock(warmup, dm.x.device)
            fit_like_train_py(cfg, cls, kwargs, dm, run_dir, callbacks=[StepClock(clock)])
        return clock.seconds
    return fit


def evaluate(model, batches, autocast):
    """What a plain loop's validation does: loss and accuracy over the batches, read back to the host."""
    model.eval()
    loss = correct = total = 0
    with torch.no_grad(), autocast:
        for x, y in batches:
            logits = model(x)
            loss = loss + F.cross_entropy(logits, y, reduction="sum")
            correct, total = correct + (logits.argmax(1) == y).sum(), total + len(y)
    model.train()
    return (loss / total).item(), (correct / total).item()


def plain_loop(flags, data_dir, dm, warmup):
    """The same training as train_py, as a plain PyTorch loop: a function returning the same steps' seconds.

    It validates where train.py does: every --eval-every steps, and at the end of a shorter run."""
    cfg, cls, kwargs = config(flags, data_dir)
    device = dm.x.device
    autocast = torch.autocast(device.type, dtype=torch.bfloat16, enabled=cfg["precision"].startswith("bf16"))
    if cfg["precision"] not in ("32-true", "32", "bf16-mixed"):
        raise ValueError(f"the plain loop does {cfg['precision']!r} precision no justice; use 32-true or bf16-mixed")
    total, every = cfg["max_steps"], min(cfg["eval_every"], cfg["max_steps"]) if cfg["val_size"] else None

    def fit():
        pl.seed_everything(cfg["seed"], verbose=False)
        model = cls(**kwargs).to(device).train()
        opt = model.configure_optimizers()
        if not isinstance(opt, torch.optim.Optimizer):
            raise ValueError("the plain loop takes a constant learning rate only (a bare optimizer)")
        clock, steps = Clock(warmup, device), 0
        while steps < total:
            for x, y in (b for item in dm.train_dataloader() for b in (item if isinstance(item, list) else [item])):
                clock.begin(steps)  # (--steps-per-call's lists of batches, one at a time)
                with autocast:
                    loss = F.cross_entropy(model(x), y, label_smoothing=cfg.get("label_smoothing", 0.0))
                opt.zero_grad(set_to_none=True)
                loss.backward()
                opt.step()
                steps += 1
                if every and steps % every == 0:
                    evaluate(model, dm.val_dataloader(), autocast)
                if steps == total:
                    break
        clock.end()
        return clock.seconds
    return fit


def compare(what, flags, data_dir, sizes, warmup, dm=None, **options):
    cfg = config(flags, data_dir)[0]
    dm = dm or data_module(cfg)
    # On the CPU: CPU seconds of this process (timed_fit.Clock). With one torch thread and no worker processes
    # that is the work each side does, while wall time on this shared machine swings 30% with the neighbours'
    # load. (W&B's writer is a process of its own, running beside training; it is not counted.)
    sides = (train_py(flags, data_dir, dm, warmup, **options), plain_loop(flags, data_dir, dm, warmup))
    for _ in range(sizes["warmup"]):
        sides[0](), sides[1]()
    times = ([], [])
    for _ in range(sizes["repeats"]):  # alternating: a busy moment of the machine falls on both sides
        for side, out in zip(sides, times):
            out.append(side())
    steps = cfg["max_steps"] - warmup
    unit = "steps/CPU-s" if dm.x.device.type == "cpu" else "steps/s"
    per = lambda t: common.per_second(common.summary(t), steps)  # noqa: E731
    return common.row(what, unit, per(times[0]), per(times[1]), higher_is_better=True, goal=GOAL)


def rows(quick=False, data_dir="data"):
    sizes = QUICK if quick else FULL
    out = []
    with common.torch_threads(1):
        for label, flags, warmup in sizes["runs"]:
            cfg = config(flags, data_dir)[0]
            what = (f"lightning: train.py {label} vs plain PyTorch loop, steps {warmup}-{cfg['max_steps']} "
                    f"(batch {cfg['batch_size']}, validation every {min(cfg['eval_every'], cfg['max_steps'])})")
            out.append(compare(what, flags, data_dir, sizes, warmup))
    return out + fast_step.rows(quick, data_dir)


def ablation_rows(quick=False, data_dir="data"):
    """The MLP run at one optimizer step per Lightning step, with one change at a time, each against the plain
    loop: what Lightning's loop costs is made of."""
    label, flags, warmup = (QUICK if quick else FULL)["runs"][0]
    label, flags = f"{label} --steps-per-call 1", flags + ["--steps-per-call", "1"]
    dm = data_module(config(flags, data_dir)[0])
    with common.torch_threads(1):
        train_py(flags, data_dir, dm, warmup)(), plain_loop(flags, data_dir, dm, warmup)()  # warm-up
        return [compare(f"lightning ablation, {label}: {what}", flags + extra, data_dir, ABLATE, warmup, dm, **options)
                for what, extra, options in ABLATIONS]


if __name__ == "__main__":
    p = common.parser(__doc__)
    p.add_argument("--ablate", action="store_true", help="also time train.py with one feature changed at a time")
    args = p.parse_args()
    table = rows(args.quick, args.data_dir)
    if args.ablate:
        table += ablation_rows(args.quick, args.data_dir)
    common.print_table(table, "Lightning overhead")
