"""Every command answers --help, a bad flag and a missing path without importing torch or Lightning: it
reads and checks its arguments first and imports the heavy modules after (bench/startup.py times it).

`python -X importtime` lists every module a process imports, on stderr; the list is checked, not a time.
"""
import subprocess
import sys

import pytest

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
