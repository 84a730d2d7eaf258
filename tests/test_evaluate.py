"""evaluate.py: re-testing a run reproduces its test accuracy exactly, writes eval/ and nothing else, logs
to the run's own W&B run when it has one, and fails in one line on bad input."""
import glob
import hashlib
import json
import os
import shutil
import subprocess
import sys

import pytest
import wandb

import evaluate
from datamodules.cifar10 import CLASSES
from tests.conftest import ROOT
from tests.test_loggers import flags as wandb_flags, isolate_wandb
from tests.trained_runs import MODELS, trained_run
from tests.wandb_records import config_and_history

import train


def strict(text):
    def refuse(name):
        raise ValueError(f"non-strict JSON: {name}")
    return json.loads(text, parse_constant=refuse)


def fingerprint(folder):
    """Every file outside eval/ and its content hash."""
    found = {}
    for root, _, files in os.walk(folder):
        if os.path.relpath(root, folder).split(os.sep)[0] == "eval":
            continue
        for f in files:
            path = os.path.join(root, f)
            found[os.path.relpath(path, folder)] = hashlib.sha256(open(path, "rb").read()).hexdigest()
    return found


@pytest.fixture
def run_copy(request, cifar_dir, tmp_path_factory, tmp_path):
    """A private copy of a trained run (evaluate writes eval/ into it)."""
    return str(shutil.copytree(trained_run(request.param, cifar_dir, tmp_path_factory), tmp_path / "run"))


@pytest.mark.parametrize("run_copy", MODELS, indirect=True)
def test_accuracy_equals_the_runs_and_only_eval_is_written(run_copy, capsys):
    before = fingerprint(run_copy)
    results = json.load(open(os.path.join(run_copy, "results.json")))
    capsys.readouterr()
    evaluate.main([run_copy])
    out = capsys.readouterr().out.splitlines()
    assert len(out) == 1 and out[0].startswith(f"accuracy {results['test_acc']:.4f}  loss {results['test_loss']:.4f}")
    assert fingerprint(run_copy) == before  # results.json, metrics.csv, checkpoints untouched
    eval_dir = os.path.join(run_copy, "eval")
    assert sorted(os.listdir(eval_dir)) == ["calibration.png", "confusion.png", "metrics.json", "mistakes.png"]
    for png in ("calibration.png", "confusion.png", "mistakes.png"):
        assert open(os.path.join(eval_dir, png), "rb").read(8) == b"\x89PNG\r\n\x1a\n"
    m = strict(open(os.path.join(eval_dir, "metrics.json")).read())
    assert m["accuracy"] == results["test_acc"] and m["cross_entropy"] == results["test_loss"]
    tested = "best-step" if results["tested_checkpoint"] == "best-val" else "last.ckpt"  # fast_resnet: the final weights
    assert m["checkpoint_choice"] == "best" and os.path.basename(m["checkpoint"]).startswith(tested)
    assert m["data"]["images"] == 100 and sum(map(sum, m["confusion"])) == 100
    assert list(m["per_class"]) == list(CLASSES) and m["ece_bins"] == 15
    diag = sum(m["confusion"][i][i] for i in range(len(CLASSES)))
    assert diag / 100 == pytest.approx(m["accuracy"])
    for i, name in enumerate(CLASSES):
        row = m["per_class"][name]
        assert row["images"] == sum(m["confusion"][i]) and row["accuracy"] == pytest.approx(row["recall"])
        if row["images"]:
            assert row["accuracy"] == pytest.approx(m["confusion"][i][i] / row["images"])
    assert m["accuracy"] <= m["top2_accuracy"] <= 1 and 0 <= m["ece"] <= 1


@pytest.mark.parametrize("run_copy", ["resnet"], indirect=True)
def test_tta_override_and_last_checkpoint(run_copy, capsys):
    report = evaluate.main([run_copy, "--tta", "0", "--checkpoint", "last"])
    assert report["tta"] == 0 and report["checkpoint"].endswith("last.ckpt")
    assert json.load(open(os.path.join(run_copy, "eval", "metrics.json")))["tta"] == 0


@pytest.mark.parametrize("run_copy", ["mlp"], indirect=True)
def test_tta_for_a_model_without_it_is_one_line(run_copy):
    with pytest.raises(SystemExit) as e:
        evaluate.main([run_copy, "--tta", "1"])
    assert e.value.code == "error: --tta: mlp has no test-time augmentation"


@pytest.mark.parametrize("run_copy", ["mlp"], indirect=True)
def test_missing_checkpoint_is_one_line(run_copy):
    with pytest.raises(SystemExit) as e:
        evaluate.main([run_copy, "--checkpoint", "nope.ckpt"])
    assert e.value.code == "error: --checkpoint nope.ckpt: no such file"
    assert not os.path.exists(os.path.join(run_copy, "eval"))


@pytest.mark.parametrize("args, message", [
    (["no/such/run"], "error: RUN_DIR no/such/run: no such folder"),
    ([ROOT], f"error: RUN_DIR {ROOT}: no config.yaml there, so not a run folder"),
])
def test_bad_folder_in_a_subprocess_is_one_stderr_line(args, message):
    done = subprocess.run([sys.executable, "evaluate.py", *args], cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert done.returncode == 1 and done.stderr.strip() == message and done.stdout == ""


def test_wandb_run_gets_the_evaluation_under_eval(cifar_dir, tmp_path, monkeypatch, capsys):
    isolate_wandb(monkeypatch, str(tmp_path))
    out = str(tmp_path / "run")
    train.main(wandb_flags(cifar_dir, out))
    wandb.teardown()
    run_id = open(os.path.join(out, "wandb_id")).read().strip()
    capsys.readouterr()
    evaluate.main([out])
    wandb.teardown()  # flushes the run file
    assert len(capsys.readouterr().out.splitlines()) == 1
    folders = sorted(glob.glob(os.path.join(out, "wandb", "offline-run-*")))
    assert len(folders) == 2 and all(f"-{run_id}" in os.path.basename(f) for f in folders)  # the same W&B run
    _, history = config_and_history(glob.glob(os.path.join(folders[1], "run-*.wandb"))[0])
    logged = {key: value for row in history for key, value in row.items()}
    metrics = json.load(open(os.path.join(out, "eval", "metrics.json")))
    assert json.loads(logged["eval/accuracy"]) == metrics["accuracy"]
    assert json.loads(logged["eval/precision/cat"]) == metrics["per_class"]["cat"]["precision"]
    for image in ("confusion", "calibration", "mistakes"):
        assert json.loads(logged[f"eval/{image}/_type"]) == "image-file"
