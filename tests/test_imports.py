"""The packages' imports go one way, downward, and none loops: checked on the source (ast), so an import
hidden inside a function counts as much as one at the top.

    floor 0  runfolder                       the run-folder format, BadInput
    floor 1  config                          settings: read from the classes' source (ast), never imported
    floor 2  datamodules, models             their signatures use config.types
             reporting                       report.py's statistics and comparisons (training/seeds.py's too)
    floor 3  training, inference             training never imports inference; inference only its console, loggers
    floor 4  the commands train.py, evaluate.py, predict.py, export.py; sweeps/
    floor 5  report.py (reads sweeps' studies too), bench/ (times the commands)
"""
import ast
import os

from tests.conftest import ROOT

FLOORS = {"runfolder": 0, "config": 1, "datamodules": 2, "models": 2, "reporting": 2, "training": 3, "inference": 3,
          "train": 4, "evaluate": 4, "predict": 4, "export": 4, "sweeps": 4, "report": 5, "bench": 5}
# Same floor, allowed one way: inference prints and logs as a run does.
SIDEWAYS = {("inference", "training")}
SIDEWAYS_MODULES = {"training.console", "training.loggers"}


def modules():
    """module name -> path, for every .py file of the project's packages and commands."""
    out = {}
    for top in FLOORS:
        path = os.path.join(ROOT, top)
        if os.path.isfile(path + ".py"):
            out[top] = path + ".py"
            continue
        for folder, _, files in os.walk(path):
            for f in files:
                if f.endswith(".py"):
                    rel = os.path.relpath(os.path.join(folder, f), ROOT)[:-3].replace(os.sep, ".")
                    out[rel.removesuffix(".__init__")] = os.path.join(folder, f)
    return out


def imports(name, path, known=None):
    """The project modules `name` imports anywhere in its file (absolute names). `from p import m`
    counts as importing the module p.m when that is one of `known`, else as importing p."""
    package = name if path.endswith("__init__.py") else name.rpartition(".")[0]
    found = set()
    for node in ast.walk(ast.parse(open(path).read())):
        if isinstance(node, ast.Import):
            found |= {a.name for a in node.names}
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                parts = package.split(".")[: len(package.split(".")) - node.level + 1]
                base = ".".join(parts + ([node.module] if node.module else []))
            subs = {f"{base}.{a.name}" for a in node.names} & set(known or ())
            found |= subs if len(subs) == len(node.names) else subs | {base}
    return {m for m in found if m.split(".")[0] in FLOORS}


def test_imports_go_down_never_up():
    mods = modules()
    wrong = []
    for name, path in mods.items():
        top = name.split(".")[0]
        for target in imports(name, path):
            other = target.split(".")[0]
            if other == top:
                continue
            ok = FLOORS[other] < FLOORS[top] or ((top, other) in SIDEWAYS and any(
                target == m or target.startswith(m + ".") for m in SIDEWAYS_MODULES))
            if not ok:
                wrong.append(f"{name} -> {target}")
    assert not wrong, "imports that go up or sideways: " + ", ".join(sorted(wrong))


def test_no_import_loop_between_modules():
    mods = modules()
    graph = {name: {t for t in imports(name, path, mods) if t in mods and t != name} for name, path in mods.items()}
    seen, stack, loops = set(), [], []

    def visit(node):
        if node in stack:
            loops.append(stack[stack.index(node):] + [node])
            return
        if node in seen:
            return
        seen.add(node)
        stack.append(node)
        for t in sorted(graph[node]):
            visit(t)
        stack.pop()

    for node in sorted(graph):
        visit(node)
    assert not loops, "import loops: " + "; ".join(" -> ".join(loop) for loop in loops)
