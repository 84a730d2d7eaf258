"""Every path and file argument of every entry point, in each bad form: one stderr line naming the argument
and what is wrong, a failing exit status, no traceback, and nothing done first.

The bad forms: missing, a file where a folder is wanted and the reverse, a location that cannot be
written (under a regular file: tests run as root, whom permission bits do not stop), a file of the wrong
format or shape, and an output that exists already. Each case runs the command's own main in this process
(an uncaught exception would fail the test, so a pass means no traceback); one case per command also runs
it as a subprocess, to see the real stderr.
"""
import os
import subprocess
import sys

import pytest

import evaluate
import export
import predict
import report
import train
from bench import common, gpu
from sweeps import run_local, search
from tests.conftest import ROOT

MAINS = {"train.py": train.main, "evaluate.py": evaluate.main, "predict.py": predict.main, "export.py": export.main,
         "report.py": report.main, "sweeps/run_local.py": run_local.main, "sweeps/search.py": search.main,
         "bench (common.parser)": lambda argv: common.parser("a benchmark").parse_args(argv),
         "bench/gpu.py": gpu.main}
SWEEP = "program: train.py\nmethod: grid\nparameters:\n  lr: {values: [0.01]}\n"

# (command, argv, what the one line must say). {name} is a path from `places` below.
CASES = [
    # train.py: --config FILE (repeatable), --resume RUN_DIR, --data-dir DIR, --output-dir DIR
    ("train.py", ["--config", "{missing}"], "--config {missing}: no such file"),
    ("train.py", ["--config", "{folder}"], "--config {folder}: is a folder, not a file"),
    ("train.py", ["--config", "{bad_yaml}"], "{bad_yaml}: not valid YAML"),
    ("train.py", ["--config", "{list_yaml}"], "{list_yaml}: expected a mapping of flag: value, found list"),
    ("train.py", ["--config", "{typos_yaml}"],
     "{typos_yaml}: unknown key 'lrr' (did you mean 'lr'?); unknown key 'bach-size' (did you mean 'batch-size'?)"),
    ("train.py", ["--config", "{missing}", "--config", "{folder}"],
     "--config {missing}: no such file; --config {folder}: is a folder, not a file"),
    ("train.py", ["--resume", "{missing}"], "--resume {missing}: no such folder"),
    ("train.py", ["--resume", "{file}"], "--resume {file}: is a file, not a folder"),
    ("train.py", ["--resume", "{folder}"], "{folder}: no config.yaml there, so not a run folder"),
    ("train.py", ["--data-dir", "{file}"], "--data-dir {file}: is a file, not a folder"),
    ("train.py", ["--data-dir", "{under_file}"], "--data-dir {under_file}: cannot be made: {file} is a file"),
    ("train.py", ["--output-dir", "{file}"], "--output-dir {file}: is a file, not a folder"),
    ("train.py", ["--output-dir", "{under_file}"], "--output-dir {under_file}: cannot be made: {file} is a file"),
    ("train.py", ["--config", "{output_in_file_yaml}"], "--output-dir {under_file}: cannot be made: {file} is a file"),
    # evaluate.py: RUN_DIR, --checkpoint best|last|FILE, --data-dir DIR; writes RUN_DIR/eval/
    ("evaluate.py", ["{missing}"], "{missing}: no such folder"),
    ("evaluate.py", ["{file}"], "{file}: is a file, not a run folder"),
    ("evaluate.py", ["{folder}"], "{folder}: no config.yaml there, so not a run folder"),
    ("evaluate.py", ["{run}", "--checkpoint", "{missing}"], "--checkpoint {missing}: no such file"),
    ("evaluate.py", ["{run}", "--checkpoint", "{folder}"], "--checkpoint {folder}: is a folder, not a file"),
    ("evaluate.py", ["{run}", "--checkpoint", "{file}"], "{file}: not a checkpoint"),  # runfolder.checkpoint.read
    ("evaluate.py", ["{run}", "--data-dir", "{missing}"], "--data-dir {missing}: no such folder"),
    ("evaluate.py", ["{run}", "--data-dir", "{file}"], "--data-dir {file}: is a file, not a folder"),
    ("evaluate.py", ["{evaluated_run}"], "output {evaluated_run}/eval/metrics.json: exists already (kept); "
                                         "pass --overwrite to replace it"),
    ("evaluate.py", ["{eval_is_file_run}"], "output {eval_is_file_run}/eval/metrics.json: cannot be made: "
                                            "{eval_is_file_run}/eval is a file"),
    ("evaluate.py", ["{missing}", "--data-dir", "{file}", "--checkpoint", "{folder}"],
     "{missing}: no such folder; --checkpoint {folder}: is a folder, not a file; --data-dir {file}: is a file, not a folder"),
    # predict.py: RUN_DIR, IMAGE_OR_FOLDER..., --checkpoint
    ("predict.py", ["{missing}", "{file}"], "{missing}: no such folder"),
    ("predict.py", ["{file}", "{file}"], "{file}: is a file, not a run folder"),
    ("predict.py", ["{run}", "{missing}"], "IMAGE_OR_FOLDER {missing}: no such file or folder"),
    ("predict.py", ["{run}", "{file}", "--checkpoint", "{folder}"], "--checkpoint {folder}: is a folder, not a file"),
    ("predict.py", ["{run}", "{under_file}"], "IMAGE_OR_FOLDER {under_file}: no such file or folder"),
    # export.py: RUN_DIR, --checkpoint, --data-dir, --out FILE; the default output RUN_DIR/model.<ext>
    ("export.py", ["{missing}", "--format", "onnx"], "{missing}: no such folder"),
    ("export.py", ["{run}", "--format", "onnx", "--checkpoint", "{missing}"], "--checkpoint {missing}: no such file"),
    ("export.py", ["{run}", "--format", "onnx", "--data-dir", "{file}"], "--data-dir {file}: is a file, not a folder"),
    ("export.py", ["{run}", "--format", "onnx", "--out", "{folder}"], "--out {folder}: is a folder, not a file"),
    ("export.py", ["{run}", "--format", "onnx", "--out", "{under_file}"],
     "--out {under_file}: cannot be made: {file} is a file"),
    ("export.py", ["{run}", "--format", "onnx", "--out", "{file}"],
     "--out {file}: exists already (kept); pass --overwrite to replace it"),
    ("export.py", ["{exported_run}", "--format", "onnx"],
     "output {exported_run}/model.onnx: exists already (kept); pass --overwrite to replace it"),
    # report.py: RUNS, --out DIR; writes report.md there
    ("report.py", ["{missing}"], "RUNS {missing}: no such folder"),
    ("report.py", ["{file}"], "RUNS {file}: is a file, not a folder"),
    ("report.py", ["{folder}", "--out", "{file}"], "--out {file}: is a file, not a folder"),
    ("report.py", ["{folder}", "--out", "{under_file}"], "--out {under_file}: cannot be made: {file} is a file"),
    ("report.py", ["{reported}"], "output {reported}/report/report.md: exists already (kept); pass --overwrite"),
    # sweeps/run_local.py: SWEEP, --out DIR, and train.py's flags after --
    ("sweeps/run_local.py", ["{missing}"], "SWEEP {missing}: no such file"),
    ("sweeps/run_local.py", ["{folder}"], "SWEEP {folder}: is a folder, not a file"),
    ("sweeps/run_local.py", ["{bad_yaml}"], "{bad_yaml}: not valid YAML"),
    ("sweeps/run_local.py", ["{shape_sweep}"], "{shape_sweep}: metric must be a mapping like {{name: val/acc, "
                                               "goal: maximize}}, got 5; command must be a list of strings, got 'run'"),
    ("sweeps/run_local.py", ["{typos_sweep}"], "{typos_sweep}: unknown key 'mehtod' (did you mean 'method'?); "
                                               "parameter 'lrr' is not a train.py flag (did you mean 'lr'?)"),
    ("sweeps/run_local.py", ["{sweep}", "--out", "{file}"], "--out {file}: is a file, not a folder"),
    ("sweeps/run_local.py", ["{sweep}", "--out", "{under_file}"], "--out {under_file}: cannot be made: {file} is a file"),
    ("sweeps/run_local.py", ["{sweep}", "--out", "{folder}", "--", "--data-dir", "{file}"],
     "--data-dir {file}: is a file, not a folder"),
    # sweeps/search.py: SWEEP, --study FILE (a journal: an existing one is joined), train.py's flags after --
    ("sweeps/search.py", ["{missing}", "--trials", "1"], "SWEEP {missing}: no such file"),
    ("sweeps/search.py", ["{shape_sweep}", "--trials", "1"], "{shape_sweep}: metric must be a mapping"),
    ("sweeps/search.py", ["{sweep}", "--study", "{folder}"], "--study {folder}: is a folder, not a file"),
    ("sweeps/search.py", ["{sweep}", "--study", "{under_file}"], "--study {under_file}: cannot be made: {file} is a file"),
    ("sweeps/search.py", ["{sweep}", "--study", "{folder}/s/study.log", "--", "--data-dir", "{file}"],
     "--data-dir {file}: is a file, not a folder"),
    # the benchmarks that read data (bench/common.parser: data_pipeline, fast_step, lightning_overhead, memory)
    ("bench (common.parser)", ["--data-dir", "{missing}"], "--data-dir: {missing}: no such folder"),
    ("bench (common.parser)", ["--data-dir", "{file}"], "--data-dir: {file}: is a file, not a folder"),
    # bench/gpu.py: --data-dir DIR, --out DIR, --airbench WHEEL
    ("bench/gpu.py", ["--out", "{folder}", "--data-dir", "{file}"], "--data-dir: {file}: is a file, not a folder"),
    ("bench/gpu.py", ["--out", "{under_file}"], "--out: {under_file}: cannot be made: {file} is a file"),
    ("bench/gpu.py", ["--out", "{folder}", "--airbench", "{missing}"], "--airbench: {missing}: no such file"),
]


@pytest.fixture
def places(tmp_path):
    """Paths of each kind, good and bad, made fresh for each case."""
    p = {name: str(tmp_path / name) for name in ("missing", "file", "folder", "run")}
    (tmp_path / "file").write_text("a regular file, not a checkpoint or a folder\n")
    (tmp_path / "folder").mkdir()
    p["under_file"] = str(tmp_path / "file" / "sub")  # cannot be made, by anyone
    (tmp_path / "run").mkdir()  # enough of a run folder for the checks: its config (no checkpoint)
    (tmp_path / "run" / "config.yaml").write_text("model: mlp\nnormalize: standard\n")

    def write(name, text):
        (tmp_path / name).write_text(text)
        p[name] = str(tmp_path / name)

    write("bad_yaml", "lr: [0.1\n")
    write("list_yaml", "- lr\n")
    write("typos_yaml", "lrr: 0.1\nbach-size: 64\n")
    write("output_in_file_yaml", f"output_dir: {p['under_file']}\n")
    write("sweep", SWEEP)
    write("shape_sweep", SWEEP + "metric: 5\ncommand: run\n")
    write("typos_sweep", SWEEP.replace("method", "mehtod").replace("lr:", "lrr:") + "method: grid\n")
    for name, made in (("evaluated_run", "eval/metrics.json"), ("eval_is_file_run", "eval"),
                       ("exported_run", "model.onnx"), ("reported", "report/report.md")):
        os.makedirs(os.path.dirname(tmp_path / name / made), exist_ok=True)
        (tmp_path / name / "config.yaml").write_text("model: mlp\nnormalize: standard\n")
        (tmp_path / name / made).write_text("from an earlier run\n")
        p[name] = str(tmp_path / name)
    return p


@pytest.mark.parametrize("command, argv, message", CASES,
                         ids=[f"{c}:{' '.join(a)}" for c, a, _ in CASES])
def test_a_bad_path_argument_is_one_line_before_anything_runs(command, argv, message, places, cifar_dir, tmp_path,
                                                              monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)  # a default output (runs/...) would land here, and is checked for below
    argv = [a.format(**places) for a in argv]
    if command == "train.py" and "--data-dir" not in argv:  # real data: no download, were the bad path not refused
        argv = ["--data-dir", cifar_dir, "--max-steps", "1", "--accelerator", "cpu", "--logger", "csv", *argv]
    before = {name: os.path.exists(path) for name, path in places.items()}
    with pytest.raises(SystemExit) as e:
        MAINS[command](argv)
    code, err = e.value.code, capsys.readouterr().err
    lines = err.strip().splitlines() + ([code] if isinstance(code, str) else [])  # sys.exit(str) prints at exit
    assert code not in (0, None) and len(lines) == 1, lines
    assert message.format(**places) in lines[0] and "Traceback" not in err
    assert {name: os.path.exists(path) for name, path in places.items()} == before  # nothing made
    assert not os.path.exists(tmp_path / "runs")  # where a default output would have gone
    assert open(os.path.join(places["file"])).read().startswith("a regular file")  # nothing overwritten


@pytest.mark.parametrize("command, argv", [
    ("train.py", ["--data-dir", "{file}", "--config", "{typos_yaml}"]),
    ("evaluate.py", ["{run}", "--data-dir", "{file}"]),
    ("export.py", ["{run}", "--format", "onnx", "--out", "{folder}"]),
    ("predict.py", ["{run}", "{missing}"]),
    ("report.py", ["{file}"]),
    ("sweeps/run_local.py", ["{typos_sweep}"]),
    ("sweeps/search.py", ["{sweep}", "--study", "{folder}"]),
    ("bench.data_pipeline", ["--data-dir", "{missing}"]),
])
def test_as_a_subprocess_the_one_line_is_all_of_stderr(command, argv, places, tmp_path):
    argv = [a.format(**places) for a in argv]
    program = ["-m", command] if command.startswith("bench.") else [os.path.join(ROOT, command)]
    done = subprocess.run([sys.executable, *program, *argv], cwd=ROOT if command.startswith("bench.") else tmp_path,
                          capture_output=True, text=True, timeout=300)
    assert done.returncode not in (0, None) and len(done.stderr.strip().splitlines()) == 1, done.stderr
    assert "error" in done.stderr and "Traceback" not in done.stderr and done.stdout == ""


def test_overwrite_replaces_an_existing_output(places, capsys):
    with pytest.raises(SystemExit) as e:  # past the output check: the fake run has no checkpoint to load
        export.main([places["exported_run"], "--format", "onnx", "--overwrite"])
    assert "model.onnx" not in str(e.value.code) and "no best checkpoint" in str(e.value.code)
