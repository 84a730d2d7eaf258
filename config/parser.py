"""Flags made from settings: a setting's type (config/types.py) becomes the flag's parsing and checks.

    flag_of    a Setting -> add_argument's keywords
    Raising    argparse raising BadInput, for checking a file's values (commands use config.checks.Parser)
"""
import argparse
import math
import typing
from typing import Annotated, Literal, Union

from runfolder import BadInput

from .types import AUTO, Auto, Length, Loop, Range, Runtime


class Raising(argparse.ArgumentParser):
    """The same flags, raising BadInput instead of exiting: for checking a file's values one key at a time."""

    def error(self, message):
        raise BadInput(message)


def number(kind, low=None, low_ok=False, high=None):
    """An argparse type: a finite number of `kind`, > low (>= low with low_ok), <= high."""
    def parse(text):
        try:
            value = kind(text)
        except (TypeError, ValueError):
            raise argparse.ArgumentTypeError(f"expected {article(kind.__name__)}, got {text!r}") from None
        if not math.isfinite(value):
            raise argparse.ArgumentTypeError(f"must be a finite number, got {text}")
        if low is not None and (value < low or value == low and not low_ok):
            raise argparse.ArgumentTypeError(f"must be {'>=' if low_ok else '>'} {low}, got {text}")
        if high is not None and value > high:
            raise argparse.ArgumentTypeError(f"must be <= {high}, got {text}")
        return value
    parse.__name__ = kind.__name__  # argparse names the type in its messages
    return parse


def article(word):
    return f"{'an' if word[0] in 'aeiou' else 'a'} {word}"


def items(parse):
    """`64`, `64,128` or `[64, 128]` (a W&B sweep's ${args} form) -> a list, each item parsed."""
    def split(text):
        return [parse(t) for t in text.strip("[]").replace(",", " ").split()]
    return split


class Flatten(argparse.Action):
    """--hidden 64 128, --hidden 64,128 and --hidden=[64, 128] all give [64, 128]; --hidden alone gives []."""

    def __call__(self, parser, namespace, values, option_string=None):
        setattr(namespace, self.dest, [n for v in values for n in v])


def _walk(kind):
    """A setting's type -> (base type, the Annotated metadata met on the way in, outermost first), through
    Annotated and Optional."""
    meta = []
    while True:
        if typing.get_origin(kind) is Annotated:
            kind, *more = typing.get_args(kind)
            meta += more
        elif typing.get_origin(kind) is Union:
            kind = next(a for a in typing.get_args(kind) if a is not type(None))
        else:
            return kind, meta


def unwrap(kind):
    """A setting's type -> (base type, Range or None, marker (Runtime, Length, Loop) or None), through Annotated
    and Optional; the innermost Range and marker win."""
    base, meta = _walk(kind)
    bound = next((m for m in reversed(meta) if isinstance(m, Range)), None)
    marker = next((m for m in reversed(meta) if m in (Runtime, Length, Loop)), None)
    return base, bound, marker


def takes_auto(kind):
    """Whether a setting's type is Auto[...]: the word auto is a value too."""
    return Auto in _walk(kind)[1]


def parse_of(kind):
    """The argparse type for a base type and its bound (and the word auto, for Auto[...])."""
    base, bound, _ = unwrap(kind)
    parse = base if base is not str else None
    if base in (int, float):
        parse = number(base, *(bound.low, bound.low_ok, bound.high) if bound else ())
    if parse and takes_auto(kind):
        def parse_or_auto(text, parse=parse):
            if text == AUTO:
                return AUTO
            try:
                return parse(text)
            except argparse.ArgumentTypeError as e:  # not a number: say auto is a value too
                said = str(e) if not str(e).startswith("expected") else \
                    f"expected {article(parse.__name__)} or {AUTO}, got {text!r}"
                raise argparse.ArgumentTypeError(said) from None
        parse_or_auto.__name__ = f"{parse.__name__} or {AUTO}"
        return parse_or_auto
    return parse


def flag_of(setting, default_text=None):
    """add_argument's keywords for a Setting (its default shown in the help when given)."""
    base, _, _ = unwrap(setting.type)
    help_text = setting.help + (f" (default: {default_text})" if default_text is not None else "")
    kw = dict(help=help_text or None)
    if base is bool:
        kw["action"] = argparse.BooleanOptionalAction
    elif typing.get_origin(base) is Literal:
        choices = list(typing.get_args(base))
        kw["choices"] = choices
        if not isinstance(choices[0], str):
            kw["type"] = type(choices[0])
    elif typing.get_origin(base) is list:
        (item,) = typing.get_args(base)
        kw.update(type=items(parse_of(item) or str), nargs="*", action=Flatten,
                  metavar="N" if unwrap(item)[0] in (int, float) else None)
    elif parse_of(setting.type):
        kw["type"] = parse_of(setting.type)
    if setting.metavar and "choices" not in kw and kw.get("action") is not argparse.BooleanOptionalAction:
        kw["metavar"] = setting.metavar  # the docstring's `name PX: help`
    return kw


def flag_name(name):
    return "--" + name.replace("_", "-")
