"""W&B logging: offline without credentials, real run files (config, metrics, test report, checkpoint
artifacts), a resumed run keeps its id, one run per DDP job, and W&B failing never stops training."""
import contextlib
import csv
import glob
import json
import os
import subprocess
import sys
import types

import pytest
import wandb

from training import loggers
import train
from tests.wandb_records import config_and_history, read_records


def isolate_wandb(mp, tmp):
    """No credentials and no user-level W&B files: what a fresh cluster account sees."""
    for key in ("WANDB_API_KEY", "WANDB_MODE", "WANDB_BASE_URL"):
        mp.delenv(key, raising=False)
    mp.setenv("NETRC", os.path.join(tmp, "no-netrc"))
    for key in ("WANDB_CONFIG_DIR", "WANDB_CACHE_DIR", "WANDB_DATA_DIR"):
        mp.setenv(key, os.path.join(tmp, key.lower()))


def flags(cifar_dir, out, steps=5):
    return ["--data-dir", cifar_dir, "--output-dir", out, "--val-size", "50", "--max-steps", str(steps),
            "--eval-every", "5", "--log-every", "1", "--batch-size", "16", "--eval-batch-size", "64",
            "--accelerator", "cpu", "--logger", "wandb", "--tags", "test", "--group", "g"]


@pytest.fixture(scope="module")
def offline_runs(cifar_dir, tmp_path_factory):
    """One offline run of 5 steps, then the same folder resumed to 8 steps; stdout of each."""
    tmp = str(tmp_path_factory.mktemp("wandb"))
    out = os.path.join(tmp, "run")
    printed = []
    with pytest.MonkeyPatch.context() as mp:
        isolate_wandb(mp, tmp)
        for steps in (5, 8):
            log = os.path.join(tmp, f"stdout-{steps}.txt")
            with open(log, "w") as f, contextlib.redirect_stdout(f):
                train.main(flags(cifar_dir, out, steps) + ["--log-model"])
            printed.append(open(log).read())
    wandb.teardown()  # waits until the W&B service has flushed every run file
    return out, printed


def test_offline_run_prints_sync_command_and_files_hold_config_and_metrics(offline_runs):
    out, printed = offline_runs
    first = sorted(glob.glob(os.path.join(out, "wandb", "offline-run-*")))[0]
    assert f"wandb sync {first}" in printed[0]
    config, history = config_and_history(glob.glob(os.path.join(first, "run-*.wandb"))[0])
    assert json.loads(config["model"]) == "mlp" and json.loads(config["max_steps"]) == 5
    assert json.loads(config["params"]) > 0 and json.loads(config["tags"]) == ["test"]
    logged = {key for row in history for key in row}
    for key in ("train/loss", "train/acc", "val/loss", "val/acc", "test/loss", "test/acc", "lr-SGD",
                "test/examples/_type", "test/confusion_matrix_table/_type"):
        assert key in logged, key
    train_loss = [float(row["train/loss"]) for row in history if "train/loss" in row]
    assert len(train_loss) == 5  # one per step with --log-every 1
    artifacts = [r.artifact for r in read_records(glob.glob(os.path.join(first, "run-*.wandb"))[0])
                 if r.WhichOneof("record_type") == "artifact"]
    assert any(a.type == "model" for a in artifacts)  # --log-model: the checkpoints


def test_resumed_run_continues_the_same_wandb_run(offline_runs):
    out, _ = offline_runs
    run_id = open(os.path.join(out, "wandb_id")).read().strip()
    folders = sorted(glob.glob(os.path.join(out, "wandb", "offline-run-*")))
    # offline-run-<time>-<id>, and W&B appends -1 when both runs start within the same second
    assert len(folders) == 2 and all(f"-{run_id}" in os.path.basename(f) for f in folders)
    _, history = config_and_history(glob.glob(os.path.join(folders[1], "run-*.wandb"))[0])
    steps = [int(row["trainer/global_step"]) for row in history if "train/loss" in row]
    assert steps and min(steps) >= 5  # it went on from the checkpoint, not from step 0


def test_mode_follows_credentials_and_wandb_mode(monkeypatch, tmp_path):
    isolate_wandb(monkeypatch, str(tmp_path))
    assert loggers.wandb_mode() == "offline"
    netrc = tmp_path / "netrc"
    netrc.write_text("machine api.wandb.ai\n  login user\n  password " + "x" * 40 + "\n")
    monkeypatch.setenv("NETRC", str(netrc))
    assert loggers.wandb_mode() == "online"
    monkeypatch.setenv("WANDB_MODE", "offline")
    assert loggers.wandb_mode() == "offline"
    monkeypatch.delenv("WANDB_MODE")
    monkeypatch.setenv("NETRC", str(tmp_path / "none"))
    monkeypatch.setenv("WANDB_API_KEY", "x" * 40)
    assert loggers.wandb_mode() == "online"


def test_wandb_failing_to_start_leaves_csv_and_results(cifar_dir, tmp_path, monkeypatch):
    isolate_wandb(monkeypatch, str(tmp_path))

    def broken_init(**kwargs):
        raise RuntimeError("no W&B today")
    monkeypatch.setattr(wandb, "init", broken_init)
    with pytest.warns(UserWarning, match="W&B logging is off.*no W&B today"):
        train.main(flags(cifar_dir, str(tmp_path / "run")))
    assert json.load(open(tmp_path / "run" / "results.json"))["steps"] == 5
    assert "val/acc" in open(tmp_path / "run" / "metrics.csv").readline()


def test_wandb_failing_to_write_leaves_csv_and_results(cifar_dir, tmp_path, monkeypatch):
    isolate_wandb(monkeypatch, str(tmp_path))
    calls = []

    def log(*args, **kwargs):
        calls.append(args)
        raise OSError("disk full")
    fake = types.SimpleNamespace(config=types.SimpleNamespace(update=lambda *a, **k: None), log=log,
                                 id="fake", name="fake", summary={}, offline=True, finish=lambda: None)
    monkeypatch.setattr(wandb, "init", lambda **kwargs: fake)
    with pytest.warns(UserWarning, match="W&B stopped writing.*disk full"):
        train.main(flags(cifar_dir, str(tmp_path / "run")))
    assert len(calls) == 1  # after the first failure the logger stands down
    assert json.load(open(tmp_path / "run" / "results.json"))["steps"] == 5
    assert len(open(tmp_path / "run" / "metrics.csv").readlines()) > 5


@pytest.mark.slow
def test_ddp_job_makes_one_wandb_run(cifar_dir, tmp_path):
    env = dict(os.environ, WANDB_MODE="offline", WANDB_CONFIG_DIR=str(tmp_path / "cfg"), PYTHONWARNINGS="ignore")
    env.pop("WANDB_API_KEY", None)
    out = tmp_path / "run"
    cmd = [sys.executable, train.__file__, *flags(cifar_dir, str(out)), "--devices", "2"]
    subprocess.run(cmd, env=env, check=True, capture_output=True, timeout=600)
    assert len(glob.glob(str(out / "wandb" / "offline-run-*"))) == 1
    assert os.path.exists(out / "results.json")


def test_metrics_csv_of_a_resumed_run_keeps_the_rows_before_the_restart(cifar_dir, tmp_path):
    args = flags(cifar_dir, str(tmp_path / "run")) + ["--logger", "csv"]
    train.main(args)
    train.main(args[:args.index("--max-steps") + 1] + ["8"] + args[args.index("--max-steps") + 2:])
    with open(tmp_path / "run" / "metrics.csv") as f:
        steps = {int(row["step"]) for row in csv.DictReader(f) if row.get("train/loss")}
    assert steps == set(range(8))
