"""report.py: run folders on fixture data -> a markdown table (seeds pooled) and loss/accuracy PNGs."""
import os

import pytest

import report
import train


@pytest.fixture(scope="module")
def runs(cifar_dir, tmp_path_factory):
    """Three real run folders: hidden 8 with seeds 1 and 2, hidden 16 with seed 1."""
    root = tmp_path_factory.mktemp("runs")
    for name, hidden, seed in (("a-s1", "8", "1"), ("a-s2", "8", "2"), ("b-s1", "16", "1")):
        train.main(["--data-dir", cifar_dir, "--output-dir", str(root / name), "--val-size", "50",
                    "--max-steps", "6", "--eval-every", "2", "--log-every", "1", "--batch-size", "16",
                    "--eval-batch-size", "64", "--accelerator", "cpu", "--logger", "csv",
                    "--hidden", hidden, "--seed", seed])
    return str(root)


def test_report_writes_table_and_pngs(runs, capsys):
    out = report.main([runs])
    text = open(os.path.join(out, "report.md")).read()
    rows = [line for line in text.splitlines() if line.startswith("| ") and line[2].isdigit()]
    assert len(rows) == 2  # seeds 1 and 2 of hidden 8 pool into one row
    assert "(baseline)" in rows[0] and "| 2 |" in rows[0] and "±" in rows[0]
    assert "hidden=[16]" in rows[1] and "| 1 |" in rows[1]
    for png in ("loss.png", "accuracy.png"):
        with open(os.path.join(out, png), "rb") as f:
            assert f.read(8) == b"\x89PNG\r\n\x1a\n"
        assert os.path.getsize(os.path.join(out, png)) > 10_000


def test_mean_and_std_over_seeds():
    assert report.mean_std([0.5, 0.7]) == "0.6000 ± 0.1414"
    assert report.mean_std([0.5]) == "0.5000" and report.mean_std([None]) == "-"


def test_report_on_an_empty_folder_is_one_line(tmp_path):
    with pytest.raises(SystemExit, match="no run folders"):
        report.main([str(tmp_path)])
