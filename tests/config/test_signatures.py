"""config/signatures.py's docstring lines: `name: help`, and `name PX: help` naming the flag's value."""
from config import signatures
from config.resolve import build_parser


def test_a_help_line_may_name_the_value():
    doc = """What it is.

    width: units per layer
    cutout PX: blank a PX x PX square
    two words: prose, not a setting
    drop lower: a lower-case second word is prose too
    """
    assert signatures.help_lines(doc) == {"width": ("units per layer", None), "cutout": ("blank a PX x PX square", "PX")}


def test_the_named_values_are_the_flags_metavars():
    actions = {a.dest: a for a in build_parser("mlp")._actions}
    assert (actions["cutout"].metavar, actions["mixup"].metavar, actions["eval_every"].metavar) == ("PX", "ALPHA", "N")
    assert actions["lr"].metavar is None  # no name in its line: argparse's LR
    assert all(a.metavar is None for a in actions.values() if a.choices)  # a choice list shows its choices
