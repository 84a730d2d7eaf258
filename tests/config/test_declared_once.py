"""Each setting and its default are declared once, in a signature or config/settings.py; the parser, its
help and the checks come from there. The ast reading of the signatures agrees with Python's own."""
import argparse
import ast
import importlib
import inspect
import os

import pytest

from config import resolve, signatures
from config.parser import unwrap

MODELS = list(signatures.models())


@pytest.mark.parametrize("model", MODELS)
def test_every_flag_is_a_setting_and_shows_its_resolved_default(model):
    parser = resolve.build_parser(model)
    settings, defaults = resolve.settings_of(model), resolve.defaults(model)
    flags = {a.dest: a for a in parser._actions if a.option_strings and a.dest != "help"}
    assert set(flags) - set(resolve.INVOCATION) == set(settings)  # no flag without a setting, none dropped
    for name, action in flags.items():
        assert action.default is argparse.SUPPRESS  # the parser holds no default of its own
        if name in settings and name not in ("model", "preset") and defaults[name] is not None:  # those two: the model's own choice
            assert action.help.endswith(f"(default: {resolve._show(defaults[name])})"), name


def test_the_parser_code_says_no_default():
    calls = []
    for module in ("config/parser.py", "config/resolve.py"):
        tree = ast.parse(open(os.path.join(signatures.ROOT, module)).read())
        calls += [n for n in ast.walk(tree) if isinstance(n, ast.Call) and getattr(n.func, "attr", "") == "add_argument"]
    assert calls and not [k.arg for c in calls for k in c.keywords if k.arg == "default"]


@pytest.mark.parametrize("model", MODELS)
def test_every_setting_is_typed_and_documented(model):
    for name, s in resolve.settings_of(model).items():
        assert s.help, f"{s.owner}.{name} has no `{name}: help` line in its docstring"
        assert unwrap(s.type)[0] is not None


@pytest.mark.parametrize("model", MODELS)
def test_the_source_reading_agrees_with_python(model):
    module, name = signatures.models()[model].target.split(":")
    cls = getattr(importlib.import_module(module), name)
    for setting in signatures.models()[model].settings.values():
        owner = next(k for k in cls.__mro__ if k.__name__ == setting.owner)
        default = inspect.signature(owner.__init__).parameters[setting.name].default
        assert (list(default) if isinstance(default, tuple) else default) == setting.default, setting.name
    fixed = getattr(cls, "fixed_params", ())
    assert not set(fixed) & set(signatures.models()[model].settings)
