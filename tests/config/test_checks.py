"""config/checks.py: near-miss suggestions, one-line problem lists, how a hint says to run a command."""
import sys

from config.checks import did_you_mean, how_to_run, one_line


def test_did_you_mean_spells_the_suggestion_as_the_user_did():
    options = ["batch_size", "lr", "max_steps"]
    assert did_you_mean("bach_size", options) == " (did you mean 'batch_size'?)"
    assert did_you_mean("max-step", options) == " (did you mean 'max-steps'?)"
    assert did_you_mean("colour", options) == ""


def test_one_line_joins_every_problem():
    assert one_line("f.yaml", ["a", "b"]) == "f.yaml: a; b"


def test_a_hint_names_the_installed_command_when_that_is_what_runs(monkeypatch):
    monkeypatch.setattr(sys, "argv", ["/venv/bin/cifar10-lab-train", "--max-steps", "9"])
    assert how_to_run("train.py") == "cifar10-lab-train"
    monkeypatch.setattr(sys, "argv", ["train.py", "--max-steps", "9"])
    assert how_to_run("train.py") == "python train.py"
    monkeypatch.setattr(sys, "argv", ["-c"])  # python -c, a pytest-xdist worker: the script's name
    assert how_to_run("train.py") == "python train.py"


def test_trains_help_names_the_command_as_it_is_typed():
    from config.resolve import build_parser
    assert "(cifar10-lab-train --model NAME --help" in build_parser(prog="cifar10-lab-train").format_help()
    assert "(python train.py --model NAME --help" in build_parser(prog="train.py").format_help()
