"""The settings the classes declare, read from their source with ast: listing them imports no torch.

A model is a class in a file models/*.py whose body names it: `name = "mlp"`; the first line of its
docstring says what it is. Its settings are its __init__'s parameters before any `*` (keyword-only
ones, such as n_inputs, are what code passes, not settings), then, when it passes **kwargs up, its
parent's, less the names in `fixed_params` (what the class sets itself). Each setting's type is its
annotation (config/types.py; without one, its default's type), its default the signature's, and its
help the line `name: help` in the __init__ docstring; `name PX: help` also names the value in --help
(`--cutout PX`; else argparse's NAME). The data module's settings are read the same way.
"""
import ast
import builtins
import functools
import os
import typing
from dataclasses import dataclass

from runfolder import BadInput

from . import types

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
MODELS_DIR = "models"
DATA = ("datamodules.cifar10", "CIFAR10DataModule")  # the data module: module, class

_SAFE = {k: getattr(builtins, k) for k in ("tuple", "list", "dict", "str", "int", "float", "bool", "len",
                                          "sorted", "zip", "range", "min", "max", "round", "abs")}
_VOCABULARY = {**{k: v for k, v in vars(types).items() if not k.startswith("_")},
               **{k: getattr(typing, k) for k in ("Literal", "Optional", "Annotated", "Union")}}


@dataclass(frozen=True)
class Setting:
    name: str
    type: object      # the annotation, evaluated (int, Literal[...], Annotated[...], ...)
    default: object
    help: str
    owner: str        # the class that declares it
    metavar: str = None  # what --help calls the value (`name PX: help`); None: argparse's NAME


@dataclass(frozen=True)
class Model:
    name: str         # what --model takes
    target: str       # "models.mlp:MLP"
    help: str         # the class docstring's first line
    settings: dict    # name -> Setting, in declaration order


class _Source:
    """One module's source: the names whose values can be computed without importing it, and its classes."""

    def __init__(self, module):
        self.module = module
        self.path = os.path.join(ROOT, *module.split(".")) + ".py"
        if not os.path.isfile(self.path):
            self.path = os.path.join(ROOT, *module.split("."), "__init__.py")
        with open(self.path) as f:
            self.tree = ast.parse(f.read(), self.path)
        self.names = dict(_VOCABULARY)
        self.classes = {}  # name -> (_Source, ClassDef), its own and imported ones
        for node in self.tree.body:
            if isinstance(node, ast.ImportFrom):
                self._import(node)
            elif isinstance(node, ast.Assign) and len(node.targets) == 1 and isinstance(node.targets[0], ast.Name):
                self._assign(node.targets[0].id, node.value)
            elif isinstance(node, ast.ClassDef):
                self.classes[node.name] = (self, node)

    def _import(self, node):
        package = self.module.rpartition(".")[0] if not self.path.endswith("__init__.py") else self.module
        if node.level:
            base = ".".join(package.split(".")[: len(package.split(".")) - node.level + 1] + [node.module or ""]).strip(".")
        else:
            base = node.module or ""
        if base.split(".")[0] not in ("models", "datamodules") or base in _reading:
            return  # the vocabulary, typing, torch, ... (the names it needs are here already); a loop
        source = _source(base)
        for alias in node.names:
            if alias.name in source.names:
                self.names[alias.asname or alias.name] = source.names[alias.name]
            if alias.name in source.classes:
                self.classes[alias.asname or alias.name] = source.classes[alias.name]

    def _assign(self, name, value):
        try:
            self.names[name] = self.eval(value)
        except Exception:
            if isinstance(value, ast.Dict) and all(k is not None for k in value.keys):
                try:  # {"elu": nn.ELU, ...}: the keys are what Literal[tuple(ACTIVATIONS)] needs
                    self.names[name] = dict.fromkeys(self.eval(k) for k in value.keys)
                except Exception:
                    pass

    def eval(self, node):
        return eval(compile(ast.Expression(node), self.path, "eval"), {"__builtins__": _SAFE}, self.names)


_reading = set()  # modules being read: an import back into one of them is not followed


@functools.cache
def _source(module):
    _reading.add(module)
    try:
        return _Source(module)
    finally:
        _reading.discard(module)


def _class_attr(source, cls, name):
    """A literal class attribute, looked up along the bases; None when no class sets it."""
    for node in cls.body:
        if isinstance(node, ast.Assign) and any(isinstance(t, ast.Name) and t.id == name for t in node.targets):
            return source.eval(node.value)
    parent = _parent(source, cls)
    return _class_attr(*parent, name) if parent else None


def _parent(source, cls):
    for base in cls.bases:
        if isinstance(base, ast.Name) and base.id in source.classes:
            return source.classes[base.id]
    return None


def help_lines(doc):
    """`name: help` and `name METAVAR: help` lines of a docstring -> {name: (help, metavar or None)}.
    METAVAR is one upper-case word (PX, ALPHA, N) naming the value the way the help text does."""
    out = {}
    for line in (doc or "").splitlines():
        head, sep, text = line.strip().partition(":")
        words = head.split()
        if not (sep and text.strip() and 1 <= len(words) <= 2 and words[0].isidentifier()):
            continue
        metavar = words[1] if len(words) == 2 else None
        if metavar is None or metavar.isupper() and metavar.replace("_", "").isalnum():
            out[words[0]] = (text.strip(), metavar)
    return out


def class_settings(source, cls):
    """name -> Setting of a class, its parents' included when it passes **kwargs up (see the module docstring)."""
    init = next((n for n in cls.body if isinstance(n, ast.FunctionDef) and n.name == "__init__"), None)
    parent = _parent(source, cls)
    if init is None:
        out = class_settings(*parent) if parent else {}
    else:
        args = init.args.posonlyargs + init.args.args
        args = args[1:]  # self
        defaults = [None] * (len(args) - len(init.args.defaults)) + init.args.defaults
        helps = help_lines(ast.get_docstring(init))
        out = {}
        for arg, default in zip(args, defaults):
            where = f"{os.path.relpath(source.path, ROOT)}: {cls.name}.__init__: {arg.arg}"
            if default is None:
                raise BadInput(f"{where} needs a default to be a setting (or make it keyword-only: after *)")
            try:
                value = source.eval(default)
                kind = source.eval(arg.annotation) if arg.annotation is not None else _type_of(value)
            except Exception as e:
                raise BadInput(f"{where}: its default and annotation must be plain values and config.types "
                               f"({type(e).__name__}: {e})") from None
            text, metavar = helps.get(arg.arg, ("", None))
            out[arg.arg] = Setting(arg.arg, kind, list(value) if isinstance(value, tuple) else value, text, cls.name,
                                   metavar)
        if init.args.kwarg and parent:
            out.update({k: v for k, v in class_settings(*parent).items() if k not in out})
    fixed = _class_attr(source, cls, "fixed_params") or ()
    return {k: v for k, v in out.items() if k not in fixed}


def _type_of(value):
    if isinstance(value, (list, tuple)):
        return list[type(value[0])] if value else list[int]
    return type(value) if value is not None else str


@functools.cache
def models():
    """name -> Model for every model in models/*.py, in file then class order."""
    out = {}
    folder = os.path.join(ROOT, MODELS_DIR)
    for file in sorted(os.listdir(folder)):
        if not file.endswith(".py") or file.startswith("_"):
            continue
        source = _source(f"{MODELS_DIR}.{file[:-3]}")
        for node in source.tree.body:
            if not isinstance(node, ast.ClassDef):
                continue
            name = next((source.eval(n.value) for n in node.body if isinstance(n, ast.Assign)
                         and any(isinstance(t, ast.Name) and t.id == "name" for t in n.targets)), None)
            if name is None:
                continue
            if name in out:
                raise BadInput(f"models/{file}: model name {name!r} is taken by {out[name].target}")
            doc = (ast.get_docstring(node) or "").strip().splitlines()
            out[name] = Model(name, f"{source.module}:{node.name}", doc[0] if doc else "",
                              class_settings(source, node))
    return out


@functools.cache
def data_settings():
    """name -> Setting of the data module's __init__."""
    module, name = DATA
    source = _source(module)
    return class_settings(*source.classes[name])
