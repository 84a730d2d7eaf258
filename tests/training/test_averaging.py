"""--ema (training/averaging.py): the averaged weights are the EMA of the raw ones, come back exactly on a
continue, are what validation, the test and evaluate/predict/export use; the raw ones on request.
CPU, fixture data, in-process, seconds each."""
import json
import os
import signal

import pytest
import pytorch_lightning as pl
import torch

import evaluate
import train
from inference import load_run
from tests.test_resume import SignalAt
from runfolder.folder import RAW_STATE

DECAY = 0.8  # far from 1, so that 24 steps leave the average well apart from the raw weights
# 250 train images / batch 16: 24 steps cross an epoch; dropout and Adam carry state a resume could lose
FLAGS = ["--max-steps", "24", "--eval-every", "8", "--batch-size", "16", "--dropout", "0.2", "--batchnorm",
         "--optimizer", "adam", "--lr", "0.003", "--ema", str(DECAY)]


def args(cifar_dir, run_dir, *more):
    return ["--data-dir", cifar_dir, "--output-dir", run_dir, "--val-size", "50", "--eval-batch-size", "64",
            "--accelerator", "cpu", "--logger", "csv", *FLAGS, *more]


def checkpoint(run_dir, name="last.ckpt"):
    return torch.load(os.path.join(run_dir, "checkpoints", name), map_location="cpu", weights_only=True)


def results(run_dir):
    with open(os.path.join(run_dir, "results.json")) as f:
        return json.load(f)


class RecordRaw(pl.Callback):
    """The raw weights (parameters and buffers) after every optimizer step (run it at --steps-per-call 1: a
    callback sees one batch end per Lightning step)."""

    def __init__(self):
        self.states = []

    def on_train_batch_end(self, trainer, pl_module, *_):
        self.states.append({k: v.detach().clone() for k, v in pl_module.state_dict().items()})


@pytest.fixture(scope="module")
def uninterrupted(cifar_dir, tmp_path_factory):
    run_dir = str(tmp_path_factory.mktemp("ema") / "run")
    raw = RecordRaw()
    train.main(args(cifar_dir, run_dir, "--steps-per-call", "1"), callbacks=[raw])
    return run_dir, raw.states


def test_the_average_is_the_ema_of_the_raw_weights(uninterrupted):
    run_dir, states = uninterrupted
    assert len(states) == 24
    # parameters and float buffers (batch norm's running statistics)
    expected = {k: v.double() for k, v in states[0].items() if v.is_floating_point()}  # the first update copies
    for state in states[1:]:
        for k in expected:
            expected[k] = DECAY * expected[k] + (1 - DECAY) * state[k].double()
    ckpt = checkpoint(run_dir)
    for k, v in expected.items():  # float32 against a float64 recomputation: ~1e-7 relative per update
        assert torch.allclose(ckpt["state_dict"][k].double(), v, rtol=1e-5, atol=1e-6), k
    for k, v in states[-1].items():
        assert torch.equal(ckpt[RAW_STATE][k], v), k  # the raw weights beside them
        if not v.is_floating_point():
            assert torch.equal(ckpt["state_dict"][k], v), k  # batch norm's step counter: copied
    moved = max((ckpt["state_dict"][k] - ckpt[RAW_STATE][k]).abs().max().item() for k in expected)
    assert moved > 1e-3  # the two differ: a test that mixed them up would fail


# after step 12: mid-epoch; after 16: a step with validation (a checkpoint written after it)
@pytest.mark.parametrize("step", [12, 16])
def test_a_continued_run_has_the_averaged_weights_of_the_uninterrupted_one(step, uninterrupted, cifar_dir, tmp_path):
    run_dir = str(tmp_path / "run")
    with pytest.raises(SystemExit) as stop:
        train.main(args(cifar_dir, run_dir), callbacks=[SignalAt(step, signal.SIGTERM)])
    assert stop.value.code == 128 + signal.SIGTERM
    train.main(args(cifar_dir, run_dir))
    ours, theirs = checkpoint(run_dir), checkpoint(uninterrupted[0])
    for key in ("state_dict", RAW_STATE):
        assert ours[key].keys() == theirs[key].keys()
        for k in ours[key]:
            assert torch.equal(ours[key][k], theirs[key][k]), (key, k)
    keep = ("test_acc", "test_loss", "best_val_acc", "steps", "tested_weights")
    assert {k: results(run_dir)[k] for k in keep} == {k: results(uninterrupted[0])[k] for k in keep}


def test_validation_test_and_evaluate_use_the_average_raw_on_request(uninterrupted, cifar_dir):
    run_dir, _ = uninterrupted
    r = results(run_dir)
    assert r["status"] == "completed" and r["tested_weights"] == "ema" and r["tested_checkpoint"] == "best-val"
    ema, _ = load_run(run_dir)
    raw, _ = load_run(run_dir, raw_weights=True)
    assert (ema.weights, raw.weights) == ("ema", "raw")
    best = torch.load(ema.checkpoint_path, map_location="cpu", weights_only=True)
    assert all(torch.equal(v, best["state_dict"][k]) for k, v in ema.state_dict().items())
    assert all(torch.equal(v, best[RAW_STATE][k]) for k, v in raw.state_dict().items())
    report = evaluate.main([run_dir, "--accelerator", "cpu"])  # the run's own test, re-run on the same CPU
    assert report["weights"] == "ema" and report["accuracy"] == pytest.approx(r["test_acc"], abs=1e-6)
    assert report["cross_entropy"] == pytest.approx(r["test_loss"], rel=1e-5)
    raw_report = evaluate.main([run_dir, "--accelerator", "cpu", "--raw-weights", "--overwrite"])
    assert raw_report["weights"] == "raw" and raw_report["cross_entropy"] != pytest.approx(r["test_loss"], rel=1e-5)


def test_ema_needs_a_torch_model(cifar_dir, tmp_path, capsys):
    with pytest.raises(SystemExit) as e:
        train.main(["--model", "numpy_mlp", "--data-dir", cifar_dir, "--output-dir", str(tmp_path / "run"),
                    "--val-size", "50", "--accelerator", "cpu", "--ema", "0.9", "--max-steps", "2"])
    assert e.value.code == "error: --ema needs a torch model; numpy_mlp has none"
    assert not os.path.exists(tmp_path / "run")


def test_the_average_reads_nothing_back_to_the_host(cifar_dir, tmp_path):
    """torch's AveragedModel reads its step count every update (a GPU sync per step); Average does not."""
    from tests.training.test_host_reads import STEPS, fit

    reads, log_every, _ = fit(["--model", "mlp", "--hidden", "8", "--batchnorm", "--logger", "csv", "--ema", "0.99"],
                              cifar_dir, tmp_path)
    assert not reads.unexpected(log_every, STEPS), "\n".join(map(str, reads.unexpected(log_every, STEPS)))
