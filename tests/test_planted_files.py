"""No file in a run folder runs code, in any command. For each command and each file it may read, a
copy of a finished run gets a planted file whose careless reading would create a marker file
(tests/planted.py); the command must refuse it in one line naming the file, with a failing exit status
and no traceback, and the marker must never appear."""
import os
import pickle
import re
import shutil

import numpy as np
import pytest
import torch
import yaml
from PIL import Image

import evaluate
import export
import predict
import report
import train
from sweeps import run_local, search
from runfolder.folder import WANDB_ID
from tests.conftest import ROOT
from tests.planted import plant
from tests.test_loggers import isolate_wandb
from tests.trained_runs import flags, trained_run

# A run folder's files, and what a tampered copy of each is.
LAST, BEST, HPC = "checkpoints/last.ckpt", "checkpoints/best-step5.ckpt", "hpc_ckpt_1.ckpt"
CONFIG, RESULTS = "config.yaml", "results.json"
KIND = {LAST: "ckpt", BEST: "ckpt", HPC: "ckpt", CONFIG: "yaml", RESULTS: "pickle", "other.ckpt": "ckpt"}


def commands(run, cifar_dir, tmp_path):
    """Command name -> (its main, argv) for the run folder `run`."""
    image = tmp_path / "cat.png"
    Image.fromarray(np.zeros((32, 32, 3), np.uint8)).save(image)
    return {
        "train continues": (train.main, [*flags("mlp", cifar_dir, run), "--max-steps", "10"]),
        "train reruns": (train.main, flags("mlp", cifar_dir, run)),  # completed: reads results.json
        "train --resume": (train.main, ["--resume", run, "--max-steps", "10"]),
        "evaluate": (evaluate.main, [run]),
        "evaluate last": (evaluate.main, [run, "--checkpoint", "last"]),
        "evaluate PATH": (evaluate.main, [run, "--checkpoint", str(tmp_path / "other.ckpt")]),
        "predict": (predict.main, [run, str(image)]),
        "export": (export.main, [run, "--format", "onnx", "--out", str(tmp_path / "m.onnx")]),
    }


CASES = [  # (command, file planted in the run folder, or beside it for a PATH argument)
    *[("train continues", f) for f in (LAST, HPC, BEST, CONFIG)],
    *[("train reruns", f) for f in (LAST, RESULTS)],
    *[("train --resume", f) for f in (LAST, CONFIG)],
    *[("evaluate", f) for f in (BEST, CONFIG)],
    ("evaluate last", LAST), ("evaluate PATH", "other.ckpt"),
    *[(c, f) for c in ("predict", "export") for f in (BEST, CONFIG)],
]


@pytest.fixture
def run_copy(cifar_dir, tmp_path_factory, tmp_path):
    """A copy of a finished 5-step MLP run, in tmp_path/runs/run."""
    copy = tmp_path / "runs" / "run"
    shutil.copytree(trained_run("mlp", cifar_dir, tmp_path_factory), copy)
    return str(copy)


def refused(main, argv, planted, marker, capsys):
    """Run a command that must refuse `planted`: (exit status, its one stderr line)."""
    capsys.readouterr()
    with pytest.raises(SystemExit) as stop:
        main(argv)
    out, err = capsys.readouterr()
    code = stop.value.code
    if isinstance(code, str):  # sys.exit("error: ..."): Python prints it to stderr and exits with status 1
        err, code = err + code + "\n", 1
    assert not os.path.exists(marker), "the planted file's code ran"
    assert "Traceback" not in out + err
    lines = err.strip().splitlines()
    assert len(lines) == 1 and planted in lines[0], err
    assert code not in (0, None)
    return code, lines[0]


@pytest.mark.parametrize("command, name", CASES, ids=[f"{c}: {f}" for c, f in CASES])
def test_a_planted_file_is_refused_without_running_it(command, name, run_copy, cifar_dir, tmp_path, capsys):
    marker = tmp_path / "marker"
    target = tmp_path / name if name == "other.ckpt" else os.path.join(run_copy, name)
    planted = plant(target, KIND[name], marker)
    if name == HPC:  # the newest checkpoint is the one a rerun continues from
        os.utime(planted, (os.path.getmtime(planted) + 10,) * 2)
    main, argv = commands(run_copy, cifar_dir, tmp_path)[command]
    before = sorted(os.listdir(run_copy))
    refused(main, argv, planted, marker, capsys)
    assert sorted(os.listdir(run_copy)) == before  # refused before anything was written


def test_a_planted_wandb_id_turns_wandb_off_unread(run_copy, cifar_dir, tmp_path, monkeypatch):
    """A run logging to W&B reads its run id back from the folder when it continues. W&B never stops a
    run: a file that is no run id turns W&B off with a warning naming it, and the run goes on."""
    isolate_wandb(monkeypatch, str(tmp_path))
    marker = tmp_path / "marker"
    planted = plant(os.path.join(run_copy, WANDB_ID), "pickle", marker)
    with pytest.warns(UserWarning, match=re.escape(f"{planted}: not a W&B run id")):
        train.main([*flags("mlp", cifar_dir, run_copy), "--max-steps", "10", "--logger", "wandb"])
    assert not marker.exists()


@pytest.mark.parametrize("kind", ["pickle", "ckpt"])
def test_a_planted_checkpoint_of_either_format_is_refused_by_the_reader(kind, run_copy, cifar_dir, tmp_path, capsys):
    """A bare pickle is no torch.save archive at all; a planted archive's payload is refused unbuilt."""
    marker = tmp_path / "marker"
    planted = plant(os.path.join(run_copy, BEST), kind, marker)
    _, line = refused(evaluate.main, [run_copy], planted, marker, capsys)
    assert ("refused" if kind == "ckpt" else "not a checkpoint") in line


def test_a_bare_pickle_as_last_ckpt_is_set_aside_unread(run_copy, cifar_dir, tmp_path, capsys):
    """Not a zip archive, so unreadable as a checkpoint: kept as last.ckpt.unreadable with a warning and never
    unpickled (the run starts again from step 0, as after a truncated save)."""
    marker = tmp_path / "marker"
    planted = plant(os.path.join(run_copy, LAST), "pickle", marker)
    train.main([*flags("mlp", cifar_dir, run_copy), "--max-steps", "10"])
    assert not marker.exists() and os.path.isfile(planted + ".unreadable")
    assert f"warning: {planted} is unreadable" in capsys.readouterr().err


@pytest.mark.parametrize("name", [CONFIG, RESULTS])
def test_report_lists_a_run_with_a_planted_file_as_broken(name, run_copy, tmp_path, capsys):
    """report.py reads many folders: one it cannot read is a row of the incomplete-runs table, not a failure."""
    marker = tmp_path / "marker"
    planted = plant(os.path.join(run_copy, name), KIND[name], marker)
    report.main([str(tmp_path / "runs"), "--out", str(tmp_path / "report")])
    assert not marker.exists() and "Traceback" not in "".join(capsys.readouterr())
    assert planted in (tmp_path / "report" / "report.md").read_text()


def test_sweep_files_are_refused_without_running_them(cifar_dir, tmp_path, capsys):
    """The sweep file (YAML) of both runners, and search.py's study journal (JSON lines)."""
    marker = tmp_path / "marker"
    sweep = plant(tmp_path / "sweep.yaml", "yaml", marker)
    for main in (run_local.main, search.main):
        code, _ = refused(main, [sweep, "--", "--data-dir", cifar_dir], sweep, marker, capsys)
        assert code == 2
    (tmp_path / "study").mkdir()
    journal = plant(tmp_path / "study" / "study.log", "pickle", marker)
    good = os.path.join(ROOT, "sweeps", "mlp_random.yaml")
    code, _ = refused(search.main, [good, "--trials", "1", "--study", journal, "--", "--data-dir", cifar_dir],
                      journal, marker, capsys)
    assert code == 2


def test_the_plants_would_run_code_if_read_carelessly(tmp_path):
    """The planted files are live: each reader the project avoids would create the marker."""
    careless = {"ckpt": lambda p: torch.load(p, weights_only=False), "pickle": lambda p: pickle.load(open(p, "rb")),
                "yaml": lambda p: yaml.unsafe_load(open(p))}
    for kind, read in careless.items():
        marker = tmp_path / f"marker-{kind}"
        read(plant(tmp_path / f"file-{kind}", kind, marker))
        assert marker.exists()
