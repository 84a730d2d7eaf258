"""pyproject.toml: `pip install .` installs every package, the presets and sweep files, and commands that run
from any folder. The fast tests read pyproject.toml and the tree; the slow one builds, installs and runs."""
import importlib.util
import os
import shutil
import subprocess
import sys

import pytest

from config.checks import INSTALLED_PREFIX

from tests.conftest import ROOT

tomllib = pytest.importorskip("tomllib")  # Python 3.11+
with open(os.path.join(ROOT, "pyproject.toml"), "rb") as f:
    PROJECT = tomllib.load(f)
SETUPTOOLS = PROJECT["tool"]["setuptools"]
SKIP = {"tests", "data", "runs", "docs", "slurm", "build", "dist", "wandb"}  # never installed


def code_folders():
    """Folders below the repository root holding .py files, outside the ones never installed."""
    out = set()
    for folder, dirs, files in os.walk(ROOT):
        rel = os.path.relpath(folder, ROOT)
        dirs[:] = [d for d in dirs if not d.startswith((".", "__")) and (rel != "." or d not in SKIP)]
        if rel != "." and any(f.endswith(".py") for f in files):
            out.add(rel)
    return out


def test_every_code_folder_is_a_package_the_install_finds():
    """setuptools finds packages by their __init__.py (namespaces off): a folder of code without one would
    be left out of `pip install .` without a word."""
    assert SETUPTOOLS["packages"]["find"] == {"exclude": ["tests", "tests.*"], "namespaces": False}
    missing = sorted(d for d in code_folders() if not os.path.isfile(os.path.join(ROOT, d, "__init__.py")))
    assert not missing, f"folders of code without __init__.py, so not installed: {missing}"


def test_the_commands_and_their_data_are_declared():
    modules = SETUPTOOLS["py-modules"]
    assert all(os.path.isfile(os.path.join(ROOT, m + ".py")) for m in modules)
    for name, target in PROJECT["project"]["scripts"].items():
        module, function = target.split(":")
        assert module in modules and name == f"{INSTALLED_PREFIX}{module}"  # what hints name (config.checks)
        assert f"\ndef {function}():" in open(os.path.join(ROOT, module + ".py")).read()
    for package, patterns in SETUPTOOLS["package-data"].items():
        assert os.path.isfile(os.path.join(ROOT, package, "__init__.py"))
        assert patterns == ["*.yaml"] and any(f.endswith(".yaml") for f in os.listdir(os.path.join(ROOT, package)))


@pytest.mark.slow
def test_the_installed_command_trains_from_another_folder(cifar_dir, tmp_path):
    """Build the wheel from a copy of the tree, install it (no dependencies: this environment has them) into
    a folder of its own, and run cifar10-lab-train with a preset from a folder that is not the checkout."""
    source = tmp_path / "source"
    shutil.copytree(ROOT, source, ignore=shutil.ignore_patterns(".git", "data", "runs", "wandb", "build", "dist",
                                                                 "*.egg-info", "__pycache__", ".venv", "gpu-carry"))
    # setuptools from this environment when it has it, else pip fetches it into an isolated build
    isolation = ["--no-build-isolation"] if importlib.util.find_spec("setuptools") else []
    pip = [sys.executable, "-m", "pip", "-q", "--disable-pip-version-check"]
    subprocess.run([*pip, "wheel", "--no-deps", *isolation, str(source), "-w", str(tmp_path / "dist")], check=True)
    wheel = next((tmp_path / "dist").glob("cifar10_lab-*.whl"))
    subprocess.run([*pip, "install", "--no-deps", "--target", str(tmp_path / "site"), str(wheel)], check=True)
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    env = dict(os.environ, PYTHONPATH=str(tmp_path / "site"))
    out = subprocess.run([str(tmp_path / "site" / "bin" / "cifar10-lab-train"), "--preset", "mlp-best", "--smoke",
                          "--data-dir", cifar_dir, "--val-size", "50", "--batch-size", "16", "--accelerator", "cpu",
                          "--logger", "csv"], cwd=elsewhere, env=env, capture_output=True, text=True)
    assert out.returncode == 0, out.stderr[-2000:]
    assert out.stdout.strip().splitlines()[-1].endswith("smoke test passed, nothing written")
    assert os.listdir(elsewhere) == []  # a smoke run writes nothing, in the checkout or here
    for command in ("evaluate", "predict", "export", "report"):
        shown = subprocess.run([str(tmp_path / "site" / "bin" / f"cifar10-lab-{command}"), "--help"], cwd=elsewhere,
                              env=env, capture_output=True, text=True)
        assert shown.returncode == 0 and "usage:" in shown.stdout, shown.stderr[-2000:]
