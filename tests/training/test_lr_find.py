"""--find-lr (training/lr_find.py): Lightning's range test on the run's config writes its plot and curve
into the run folder, prints the suggestion, trains nothing; the folder can then take the run.
CPU, fixture data, in-process, seconds."""
import json
import math
import os

import pytest

import train
from training import lr_find
from runfolder.folder import LR_FIND_DATA, LR_FIND_PLOT

STEPS = 30  # enough points for a suggestion (Lightning skips the first 10 and the last one)


def args(cifar_dir, run_dir, *more):
    return ["--data-dir", cifar_dir, "--output-dir", run_dir, "--val-size", "50", "--batch-size", "16",
            "--eval-batch-size", "64", "--accelerator", "cpu", "--logger", "csv", "--optimizer", "adam", *more]


def strict(path):
    def refuse(name):
        raise ValueError(f"non-strict JSON constant {name}")
    with open(path) as f:
        return json.load(f, parse_constant=refuse)


def test_find_lr_writes_plot_and_curve_and_trains_nothing(cifar_dir, tmp_path, monkeypatch, capsys):
    monkeypatch.setattr(lr_find, "STEPS", STEPS)
    run_dir = tmp_path / "run"
    lr = train.main(args(cifar_dir, str(run_dir), "--find-lr"))
    assert sorted(os.listdir(run_dir)) == sorted([LR_FIND_DATA, LR_FIND_PLOT])  # no config, checkpoint or metrics
    record = strict(run_dir / LR_FIND_DATA)
    # the test ends early once the loss passes 4x its best, which a rising lr reaches on this data
    assert record["suggestion"] == lr and 12 < record["steps"] == len(record["lr"]) == len(record["loss"]) <= STEPS
    assert capsys.readouterr().out.strip().splitlines()[-1] == (
        f"lr_find: suggested --lr {lr:.3g} (steepest loss descent over {record['steps']} steps, "
        f"lr {lr_find.MIN_LR:g} to {record['lr'][-1]:.3g}); plot {run_dir / LR_FIND_PLOT}")
    assert record["lr"][0] == pytest.approx(lr_find.MIN_LR) and lr in record["lr"]
    assert all(a < b for a, b in zip(record["lr"], record["lr"][1:]))  # exponentially rising
    assert all(loss is None or math.isfinite(loss) for loss in record["loss"])
    assert (run_dir / LR_FIND_PLOT).read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"

    # the folder then takes the run trained with the lr chosen, and keeps the plot that chose it
    results = train.main(args(cifar_dir, str(run_dir), "--lr", f"{lr:.3g}", "--max-steps", "2", "--eval-every", "2"))
    assert results["status"] == "completed" and (run_dir / LR_FIND_PLOT).is_file()


def test_find_lr_refuses_a_run_folder_and_smoke_writes_nothing(cifar_dir, tmp_path, capsys):
    run_dir = tmp_path / "run"
    train.main(args(cifar_dir, str(run_dir), "--max-steps", "2", "--eval-every", "2"))
    before = sorted(os.listdir(run_dir))
    with pytest.raises(SystemExit) as e:
        train.main(args(cifar_dir, str(run_dir), "--find-lr"))
    assert e.value.code == f"error: --output-dir {run_dir} holds a run already: --find-lr writes into a new folder"
    assert sorted(os.listdir(run_dir)) == before

    train.main(args(cifar_dir, str(tmp_path / "smoke"), "--find-lr", "--smoke"))
    assert capsys.readouterr().out.strip().endswith("smoke test, nothing written")
    assert not (tmp_path / "smoke").exists()


def test_the_curve_of_a_constant_loss_is_flat():
    """Lightning's own loss recorder, fed a constant loss, then lr_find.unbias: every point is that loss
    (Lightning's own first point is about half of it; should Lightning fix that, this fails: drop unbias)."""
    from types import SimpleNamespace

    import torch
    from pytorch_lightning.tuner.lr_finder import _LRCallback

    recorder = _LRCallback(num_training=60, early_stop_threshold=None)
    trainer = SimpleNamespace(fit_loop=SimpleNamespace(batch_idx=0), accumulate_grad_batches=1, global_step=0,
                              should_stop=False, strategy=SimpleNamespace(broadcast=lambda x: x))
    for step in range(1, 61):
        trainer.fit_loop.batch_idx, trainer.global_step = step - 1, step  # after the step's optimizer update
        recorder.on_train_batch_end(trainer, None, {"loss": torch.tensor(2.0)}, None, step - 1)
    assert recorder.losses[0] < 1.1  # Lightning's: half the loss
    assert lr_find.unbias(recorder.losses) == pytest.approx([2.0] * 60, rel=1e-6)


def test_the_suggestion_is_the_steepest_fall_per_decade():
    """A loss that falls as a logistic in log10(lr) centred on 1e-3 (steepest there, per decade), plus a
    rise after 1e-1: the suggestion is the point nearest 1e-3. Per unit of lr instead (Lightning's
    suggestion()), the steepest fall sits at the small-lr end of the slope."""
    lrs = [10 ** (-6 + 6 * i / 99) for i in range(100)]
    losses = [2.3 - 1.0 / (1 + math.exp(-3 * (math.log10(lr) + 3))) + (5 * (lr - 0.1) if lr > 0.1 else 0)
              for lr in lrs]
    assert lr_find.suggest(lrs, losses) == min(lrs, key=lambda lr: abs(math.log10(lr) + 3))
    from pytorch_lightning.tuner.lr_finder import _LRFinder

    lightning = _LRFinder("exponential", lrs[0], lrs[-1], len(lrs))
    lightning.results = {"lr": lrs, "loss": losses}
    assert lightning.suggestion() < 10 ** -3.5  # half a decade low; should Lightning move to per decade, this fails: use it
    assert lr_find.suggest(lrs, [float("nan")] * 98 + losses[-2:]) is None


def test_find_lr_tries_an_lr_per_batch_under_steps_per_call(cifar_dir, tmp_path, monkeypatch):
    """--steps-per-call changes how a run is stepped, not the range test: the same curve either way."""
    monkeypatch.setattr(lr_find, "STEPS", STEPS)
    curves = []
    for k in ("1", "4"):
        train.main(args(cifar_dir, str(tmp_path / k), "--find-lr", "--steps-per-call", k))
        curves.append(strict(tmp_path / k / LR_FIND_DATA))
    assert curves[0] == curves[1]
