"""reporting/provenance.py: in what the runs' provenance.json differ."""
from reporting import provenance


def test_differences_lists_only_the_items_that_differ():
    a = dict(torch="2.1", device="CPU: x", git_commit="abc", host="h1")
    b = dict(torch="2.2", device="CPU: x", git_commit="abc", host="h2")
    assert provenance.differences([a, b]) == {"torch": ["2.1", "2.2"]}  # host alone is not a difference in numbers
    assert provenance.differences([a, None, a]) == {}  # a run without a record is not compared
