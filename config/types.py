"""The types a setting may have: in a class's __init__ signature or in config.settings.Run, its annotation
says how a typed or file value is parsed and checked. Stdlib only.

    int, float, str                    a number (finite) or a word
    bool                               --flag / --no-flag, true / false in a file
    Literal["a", "b"]                  one of these (Literal[NAMES] with NAMES a tuple or a dict's keys)
    Optional[T]                        T, or null in a file: off
    list[T]                            --hidden 64 128, --hidden 64,128 or --hidden=[64,128]
    Annotated[T, Range(low, high)]     bounds: > low (>= with low_ok=True), <= high
    Runtime[T]                         where and how a run runs, never what it learns: it may change when
                                       a run continues, and report.py does not split rows by it
    Length[T]                          how long a run is: it may change when a run continues
    Loop[T]                            how the training loop is cut, never what it learns: report.py does not
                                       split rows by it, but a run keeps it for its life
    Auto[T]                            T, or the word auto: the run picks the value at its first start and
                                       saves that in its config.yaml
"""
from dataclasses import dataclass
from typing import Annotated, Literal, Optional  # noqa: F401  (the vocabulary signatures use)


@dataclass(frozen=True)
class Range:
    """A bound on a number: low < x (low <= x with low_ok), x <= high."""
    low: float = None
    high: float = None
    low_ok: bool = False


class _Marker:
    """Runtime[T] / Length[T]: T, annotated with when it may change."""
    def __class_getitem__(cls, kind):
        return Annotated[kind, cls]


class Runtime(_Marker):
    pass


class Length(_Marker):
    pass


class Loop(_Marker):
    pass


AUTO = "auto"  # an Auto[T] setting's word for "the run picks"


class Auto(_Marker):
    pass


Positive = Annotated[float, Range(0)]                   # > 0
NonNegative = Annotated[float, Range(0, low_ok=True)]   # >= 0
Fraction = Annotated[float, Range(0, 1, low_ok=True)]   # 0 <= x <= 1
PositiveInt = Annotated[int, Range(0)]                  # 1, 2, ...
Count = Annotated[int, Range(0, low_ok=True)]           # 0, 1, 2, ...
Sizes = list[PositiveInt]                               # layer widths
