"""config/checks.py: near-miss suggestions and one-line problem lists."""
from config.checks import did_you_mean, one_line


def test_did_you_mean_spells_the_suggestion_as_the_user_did():
    options = ["batch_size", "lr", "max_steps"]
    assert did_you_mean("bach_size", options) == " (did you mean 'batch_size'?)"
    assert did_you_mean("max-step", options) == " (did you mean 'max-steps'?)"
    assert did_you_mean("colour", options) == ""


def test_one_line_joins_every_problem():
    assert one_line("f.yaml", ["a", "b"]) == "f.yaml: a; b"
