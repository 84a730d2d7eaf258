"""training/run.py: every run ends in a truthful run folder. Fixture data, CPU, in-process, seconds each.

Each case asserts the exit status, the one line the user sees, and the folder's files before and after.
"""
import csv
import json
import os
import shutil
import signal
import subprocess
import sys

import pytest

import train
from tests.conftest import ROOT
from runfolder.lock import RunLock
from runfolder.folder import HPC, PARTIAL, RunFolder


def strict(path):
    """results.json parsed the way strict parsers do: NaN and Infinity are errors."""
    def refuse(name):
        raise ValueError(f"non-strict JSON constant {name}")
    with open(path) as f:
        return json.load(f, parse_constant=refuse)


def snapshot(path):
    """Every file below path with its bytes: a folder 'untouched' compares equal before and after."""
    out = {}
    for d, _, files in os.walk(path):
        for name in files:
            with open(os.path.join(d, name), "rb") as f:
                out[os.path.relpath(os.path.join(d, name), path)] = f.read()
    return out


def exits(argv, capsys):
    """Run train.main expecting an exit: (status, stderr lines)."""
    with pytest.raises(SystemExit) as e:
        train.main(argv)
    code = e.value.code
    err = capsys.readouterr().err.strip().splitlines()
    if isinstance(code, str):  # sys.exit("error: ..."): Python prints it and exits 1
        return 1, [code]
    return code, err


def with_flag(args, flag, value):
    i = args.index(flag)
    return args[:i + 1] + [value] + args[i + 2:]


def test_a_run_shorter_than_eval_every_validates_at_its_end(tiny_args, tmp_path):
    results = train.main(["--model", "mlp", *with_flag(tiny_args, "--eval-every", "100"), "--max-steps", "3"])
    assert results["status"] == "completed" and results["steps"] == 3
    assert results["tested_checkpoint"] == "best-val" and results["best_val_acc"] is not None
    assert strict(tmp_path / "run" / "results.json") == results


def test_a_diverged_run_stops_at_once_and_says_so(tiny_args, tmp_path, capsys):
    code, err = exits(["--model", "mlp", *tiny_args, "--lr", "1e6", "--max-steps", "50"], capsys)
    results = strict(tmp_path / "run" / "results.json")
    assert code == 3 and len(err) == 1 and err[0].startswith("diverged: training loss is not finite at step")
    assert results["status"] == "diverged" and results["test_acc"] is None and results["steps"] < 50
    assert "--lr" in results["reason"]


@pytest.mark.parametrize("flag, value", [("--lr", "nan"), ("--lr", "inf"), ("--momentum", "inf"),
                                         ("--weight-decay", "-inf"), ("--dropout", "nan")])
def test_non_finite_float_flags_are_usage_errors(flag, value, capsys):
    code, err = exits([flag, value], capsys)
    assert code == 2 and len(err) == 1 and f"argument {flag}:" in err[0]


def test_a_folder_of_other_settings_is_refused_untouched(tiny_args, tmp_path, capsys):
    train.main(["--model", "mlp", *tiny_args])
    before = snapshot(tmp_path / "run")
    code, err = exits(["--model", "mlp", *tiny_args, "--hidden", "50", "--lr", "0.01"], capsys)
    assert code == 1 and len(err) == 1 and "holds a run with other settings" in err[0]
    assert "hidden [100] -> [50]" in err[0] and "lr 0.001 -> 0.01" in err[0]
    assert snapshot(tmp_path / "run") == before


def test_a_folder_continues_with_more_steps(tiny_args, tmp_path, capsys):
    train.main(["--model", "mlp", *tiny_args])  # --steps-per-call auto: 5 steps per Lightning step
    results = train.main(["--model", "mlp", *with_flag(tiny_args, "--max-steps", "10"), "--log-every", "5"])
    assert results["steps"] == 10 and results["status"] == "completed"
    assert "continuing from" in capsys.readouterr().out


def test_a_continue_its_k_cannot_divide_is_refused_in_one_line(tiny_args, tmp_path):
    train.main(["--model", "mlp", *tiny_args])  # auto: 5 steps per Lightning step, which the run keeps
    with pytest.raises(SystemExit) as e:
        train.main(["--model", "mlp", *with_flag(tiny_args, "--max-steps", "8"), "--log-every", "1"])
    said = str(e.value.code)
    assert said.startswith("error: --steps-per-call 5 must divide --max-steps 8, --log-every 1: ") and "\n" not in said
    assert "a run keeps its --steps-per-call" in said and "steps_per_call: 5\n" in (tmp_path / "run" / "config.yaml").read_text()


def test_a_second_run_into_a_busy_folder_is_refused(tiny_args, tmp_path, capsys):
    train.main(["--model", "mlp", *tiny_args])
    lock = RunLock(RunFolder(str(tmp_path / "run")))  # another run holds it
    try:
        before = snapshot(tmp_path / "run")
        code, err = exits(["--model", "mlp", *tiny_args], capsys)
        assert code == 1 and len(err) == 1 and "is in use by another run" in err[0]
        assert f"pid {os.getpid()}" in err[0]
        assert snapshot(tmp_path / "run") == before
    finally:
        lock.release()


def test_the_lock_dies_with_its_process(tmp_path):
    folder = RunFolder(str(tmp_path / "run"))
    holder = subprocess.Popen([sys.executable, "-c", "import sys, time; sys.path.insert(0, '.');"
                               "from runfolder.lock import RunLock; from runfolder.folder import RunFolder;"
                               f"RunLock(RunFolder({folder.path!r})); print('held', flush=True); time.sleep(60)"],
                              cwd=ROOT, stdout=subprocess.PIPE, text=True)
    assert holder.stdout.readline().strip() == "held"
    holder.send_signal(signal.SIGKILL)
    holder.wait()
    RunLock(folder).release()  # no error: the kernel dropped the dead process's lock


def test_a_moved_folder_continues_and_tests_its_own_checkpoints(tiny_args, tmp_path):
    train.main(["--model", "mlp", *tiny_args])
    moved = tmp_path / "moved"
    shutil.move(tmp_path / "run", moved)
    results = train.main(["--resume", str(moved), "--max-steps", "10"])
    assert results["status"] == "completed" and results["tested_checkpoint"] == "best-val"
    assert not (tmp_path / "run").exists()  # nothing written to, or read from, the old place
    assert RunFolder(str(moved)).best_checkpoint().startswith(str(moved))


def test_an_unreadable_last_checkpoint_falls_back_and_is_kept(tiny_args, tmp_path, capsys):
    train.main(["--model", "mlp", *tiny_args])
    folder = RunFolder(str(tmp_path / "run"))
    older = folder.file("hpc_ckpt_1.ckpt")
    shutil.copy(folder.last_path, older)
    os.utime(older, (1, 1))
    whole = open(folder.last_path, "rb").read()
    os.remove(folder.last_path)  # a partial copy: a new file (last.ckpt may share the best checkpoint's)
    with open(folder.last_path, "wb") as f:
        f.write(whole[:1000])
    capsys.readouterr()
    results = train.main(["--model", "mlp", *with_flag(tiny_args, "--max-steps", "10")])
    captured = capsys.readouterr()
    warning = [line for line in captured.err.splitlines() if "unreadable" in line]
    assert len(warning) == 1 and warning[0].startswith(f"warning: {folder.last_path} is unreadable")
    assert f"continuing from {older}" in captured.out
    assert os.path.getsize(folder.last_path + ".unreadable") == 1000 and results["steps"] == 10


def test_partial_checkpoints_a_killed_run_left_are_removed_at_the_next_start(tiny_args, tmp_path, capsys):
    train.main(["--model", "mlp", *tiny_args])
    folder = RunFolder(str(tmp_path / "run"))
    left = [os.path.join(folder.checkpoint_dir, PARTIAL.format(name=os.path.basename(folder.last_path), pid=1)),
            folder.file(PARTIAL.format(name=HPC.replace("*", "1"), pid=2))]  # SLURM's, in the folder itself
    for path in left:
        with open(path, "wb") as f:
            f.write(b"PK\x03\x04 half a zip archive")
    assert folder.partial_checkpoints() == sorted(left)
    train.main(["--model", "mlp", *with_flag(tiny_args, "--max-steps", "10")])
    notes = [line for line in capsys.readouterr().err.splitlines() if "left unfinished" in line]
    assert folder.partial_checkpoints() == [] and len(notes) == 2 and all(p in "\n".join(notes) for p in left)


def test_rows_a_killed_run_logged_after_its_checkpoint_are_dropped(tiny_args, tmp_path):
    args = ["--model", "mlp", *tiny_args, "--log-every", "1"]
    train.main(with_flag(args, "--max-steps", "8"))
    metrics = tmp_path / "run" / "metrics.csv"
    with open(metrics, newline="") as f:
        rows = list(csv.DictReader(f))
    with open(metrics, "a", newline="") as f:  # what a SIGKILLed run flushed past its last checkpoint
        writer = csv.DictWriter(f, fieldnames=list(rows[0]))
        for step in range(8, 12):
            writer.writerow({**rows[-1], "step": step, "train/loss": "99"})
    train.main(with_flag(args, "--max-steps", "12"))
    with open(metrics, newline="") as f:
        logged = [(r["step"], k) for r in csv.DictReader(f) for k, v in r.items() if v and k not in ("step", "epoch")]
    assert len(logged) == len(set(logged))  # each value of each step once
    with open(metrics, newline="") as f:
        assert "99" not in {r["train/loss"] for r in csv.DictReader(f)}


def test_seconds_are_counted_once(tiny_args):
    results = train.main(["--model", "mlp", *with_flag(tiny_args, "--max-steps", "30"), "--eval-every", "10"])
    assert results["tested_checkpoint"] == "best-val"  # the test restored a checkpoint, Timer state with it
    assert 0 < results["fit_seconds"] and 0 < results["test_seconds"]
    assert results["fit_seconds"] + results["test_seconds"] <= results["wall_seconds"]


@pytest.mark.parametrize("flags, message", [
    (["--batch-size", "100000"], "--batch-size 100000 is larger than the training split (250 images"),
    (["--val-size", "299"], "--batch-size 16 is larger than the training split (1 images"),
    (["--val-size", "300"], "val_size must be in [0, 300)"),
])
def test_sizes_the_data_cannot_give_are_one_line(flags, message, tiny_args, tmp_path, capsys):
    code, err = exits(["--model", "mlp", *tiny_args, *flags], capsys)
    assert code == 1 and len(err) == 1 and message in err[0]
    assert not (tmp_path / "run").exists()


def test_an_output_dir_that_cannot_be_a_folder_is_one_line(tiny_args, tmp_path, capsys):
    (tmp_path / "file").write_text("x")
    code, err = exits(["--model", "mlp", *with_flag(tiny_args, "--output-dir", str(tmp_path / "file"))], capsys)
    assert code == 2 and err == [f"train.py: error: --output-dir {tmp_path / 'file'}: is a file, not a folder"]
    code, err = exits(["--model", "mlp", *with_flag(tiny_args, "--output-dir", str(tmp_path / "file" / "run"))], capsys)
    assert code == 2 and len(err) == 1 and f"cannot be made: {tmp_path / 'file'} is a file" in err[0]
    (tmp_path / "other").mkdir()
    (tmp_path / "other" / "notes.txt").write_text("mine")
    code, err = exits(["--model", "mlp", *with_flag(tiny_args, "--output-dir", str(tmp_path / "other"))], capsys)
    assert code == 1 and "is not empty and holds no run" in err[0] and os.listdir(tmp_path / "other") == ["notes.txt"]


@pytest.mark.parametrize("text, message", [("model: [mlp\n", "not valid YAML"), ("- mlp\n", "expected a mapping")])
def test_resume_on_a_broken_config_is_one_line(text, message, tmp_path, capsys):
    (tmp_path / "config.yaml").write_text(text)
    code, err = exits(["--resume", str(tmp_path)], capsys)
    assert code == 2 and len(err) == 1 and message in err[0]


def test_bad_data_leaves_no_folder(tiny_args, tmp_path, capsys):
    data = tmp_path / "data" / "cifar-10-batches-py"
    shutil.copytree(os.path.join(tiny_args[tiny_args.index("--data-dir") + 1], "cifar-10-batches-py"), data)
    (data / "data_batch_3").write_bytes(b"\x80\x02truncated")
    code, err = exits(["--model", "mlp", *with_flag(tiny_args, "--data-dir", str(tmp_path / "data"))], capsys)
    assert code == 1 and len(err) == 1 and "data_batch_3" in err[0]
    assert not (tmp_path / "run").exists()
