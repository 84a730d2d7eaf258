"""Every command answers --help, a bad flag and a missing path without importing torch or Lightning: it
reads and checks its arguments first and imports the heavy modules after (bench/startup.py times it).
Usage and errors name the command as invoked, and Ctrl-C while torch imports is one line and status 130.

`python -X importtime` lists every module a process imports, on stderr; the list is checked, not a time.
"""
import os
import signal
import subprocess
import sys

import pytest

from runfolder import INTERRUPTED, RunFolder
from tests.conftest import ROOT

HEAVY = ("torch", "pytorch_lightning", "lightning", "lightning_fabric", "torchmetrics", "torchvision", "onnxruntime")

# (command line, exit status): --help, an unknown flag (argparse), a missing path (config.checks.require)
CASES = [
    *((["train.py", *argv], code) for argv, code in
      ((["--help"], 0), (["--model", "resnet", "--help"], 0), (["--no-such-flag"], 2), (["--config", "missing.yaml"], 2))),
    *(([command, *argv], code) for command in ("evaluate.py", "predict.py", "export.py", "report.py")
      for argv, code in ((["--help"], 0), (["--no-such-flag"], 2))),
    (["evaluate.py", "missing"], 1),
    (["predict.py", "missing", "x.png"], 1),
    (["export.py", "missing", "--format", "onnx"], 1),
    (["report.py", "missing"], 1),
]


def imports(argv):
    """(the finished process, the names of the modules it imported)."""
    done = subprocess.run([sys.executable, "-X", "importtime", *argv], cwd=ROOT, capture_output=True, text=True,
                          timeout=300)
    names = {line.rsplit("|", 1)[1].strip() for line in done.stderr.splitlines() if line.startswith("import time:")}
    return done, names


@pytest.mark.parametrize("argv, code", CASES, ids=[" ".join(argv) for argv, _ in CASES])
def test_arguments_are_answered_before_torch_is_imported(argv, code):
    done, names = imports(argv)
    said = [line for line in done.stderr.splitlines() if not line.startswith("import time:")]
    assert done.returncode == code, said
    assert "runfolder" in names and "config.checks" in names  # the list is read right: the command's own modules
    assert not {n.split(".")[0] for n in names} & set(HEAVY), sorted(n for n in names if n.split(".")[0] in HEAVY)[:5]
    if code:
        assert len(said) == 1 and "error" in said[0], said  # one line, no traceback


@pytest.mark.parametrize("module", ["train", "evaluate", "predict", "export", "report"])
def test_the_installed_command_names_itself(module):
    """pip's wrapper sets sys.argv[0] to the command's path and calls cli(): usage and errors say its name."""
    name = f"cifar10-lab-{module}"
    code = f"import sys; sys.argv[0] = {'/venv/bin/' + name!r}; import {module}; {module}.cli()"
    done = subprocess.run([sys.executable, "-c", code, "--no-such-flag"], cwd=ROOT, capture_output=True, text=True,
                          timeout=300)
    assert done.returncode == 2 and done.stderr.startswith(f"{name}: error: "), done.stderr
    script = subprocess.run([sys.executable, f"{module}.py", "--no-such-flag"], cwd=ROOT, capture_output=True, text=True,
                            timeout=300)
    assert script.stderr.startswith(f"{module}.py: error: "), script.stderr


def run_folder(path):
    """A completed run folder written by hand: what the commands check before they import torch."""
    folder = RunFolder(str(path))
    os.makedirs(folder.path)
    folder.write_config({"model": "mlp", "seed": 42})
    folder.write_results({"status": "completed", "test_acc": 0.5, "test_loss": 1.0, "steps": 10, "params": 5,
                          "wall_seconds": 1.0, "best_val_acc": 0.5})
    return folder.path


# Ctrl-C lands as KeyboardInterrupt in whatever Python runs then; here, exactly as the first heavy module imports
STOP_AT_IMPORT = """import sys
class Stop:
    def find_spec(self, name, path=None, target=None):
        if name.split(".")[0] == {heavy!r}:
            raise KeyboardInterrupt
sys.meta_path.insert(0, Stop())
sys.argv[0] = {script!r}
import {module}
{module}.cli()
"""


@pytest.mark.parametrize("module, heavy", [("train", "torch"), ("evaluate", "torch"), ("predict", "torch"),
                                           ("export", "torch"), ("report", "matplotlib")])
def test_ctrl_c_while_the_heavy_modules_import_is_one_line(module, heavy, tmp_path):
    run = run_folder(tmp_path / "run")
    (tmp_path / "x.png").write_bytes(b"not read before torch")
    argv = {"train": ["--data-dir", str(tmp_path / "data"), "--output-dir", str(tmp_path / "new")],
            "evaluate": [run], "predict": [run, str(tmp_path / "x.png")], "export": [run, "--format", "onnx"],
            "report": [str(tmp_path)]}[module]
    code = STOP_AT_IMPORT.format(heavy=heavy, script=f"{module}.py", module=module)
    done = subprocess.run([sys.executable, "-c", code, *argv], cwd=ROOT, capture_output=True, text=True, timeout=300)
    assert done.returncode == INTERRUPTED and len(done.stderr.splitlines()) == 1, done.stderr
    assert done.stderr.startswith("interrupted"), done.stderr


def test_a_real_ctrl_c_while_torch_imports(tmp_path):
    """SIGINT sent once the process is inside `import torch` (-X importtime has listed a torch submodule)."""
    proc = subprocess.Popen([sys.executable, "-X", "importtime", "train.py", "--data-dir", str(tmp_path / "data"),
                             "--output-dir", str(tmp_path / "run")], cwd=ROOT, stderr=subprocess.PIPE, text=True)
    for line in proc.stderr:
        if line.startswith("import time:") and line.rsplit("|", 1)[1].strip().startswith("torch."):
            proc.send_signal(signal.SIGINT)
            break
    rest = proc.stderr.read()
    assert proc.wait(timeout=300) == INTERRUPTED
    said = [line for line in rest.splitlines() if not line.startswith("import time:")]
    assert said == ["interrupted before training began, nothing trained or saved: run the same command again"]
    assert not os.path.exists(tmp_path / "run")
