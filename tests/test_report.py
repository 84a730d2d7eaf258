"""report.py: run folders on fixture data -> a markdown table (seeds pooled), loss/accuracy PNGs, the runs that did
not complete apart, and a search's best trial and parameter importances."""
import json
import os

import numpy as np
import pytest
import yaml

import report
import train
from runfolder import folder as run_folder


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


def tiny_run(cifar_dir, folder, *more):
    """A run on the fixture data; returns its exit status (a diverged run exits non-zero)."""
    try:
        train.main(["--data-dir", cifar_dir, "--output-dir", str(folder), "--val-size", "50", "--max-steps", "6",
                    "--eval-every", "3", "--batch-size", "16", "--eval-batch-size", "64", "--accelerator", "cpu",
                    "--logger", "csv", "--hidden", "8", *more])
    except SystemExit as e:
        return e.code
    return 0


def test_runs_that_did_not_complete_are_listed_apart_with_the_reason(cifar_dir, tmp_path):
    assert tiny_run(cifar_dir, tmp_path / "a-ok") == 0
    assert tiny_run(cifar_dir, tmp_path / "b-diverged", "--lr", "1e6") != 0
    assert tiny_run(cifar_dir, tmp_path / "c-killed") == 0
    os.remove(tmp_path / "c-killed" / run_folder.RESULTS)  # as a run killed before its end leaves it
    out = report.main([str(tmp_path)])
    text = open(os.path.join(out, "report.md")).read()
    rows = [line for line in text.splitlines() if line.startswith("| ") and line[2].isdigit()]
    assert len(rows) == 1 and "(baseline)" in rows[0]
    apart = text.split("## Runs that did not complete", 1)[1]
    assert "| b-diverged |" in apart and "diverged: " in apart
    assert "| c-killed | 6 | no results.json" in apart


def test_the_table_says_which_weights_were_tested_and_which_runs_stopped_early(runs, tmp_path):
    """A copy of a run edited to read as --ema with an early stop: a tested-weights column appears."""
    import shutil

    for name in ("a-s1", "b-s1"):
        shutil.copytree(os.path.join(runs, name), tmp_path / name)
    folder = run_folder.RunFolder(str(tmp_path / "b-s1"))
    folder.write_config(dict(folder.read_config(), ema=0.99, early_stop=2))
    results = folder.read_results()
    folder.write_results(dict(results, tested_weights="ema", steps=4, stopped_early=dict(
        step=4, metric="val/acc", best=results["best_val_acc"], best_step=2, patience=2)))
    text = open(os.path.join(report.main([str(tmp_path)]), "report.md")).read()
    header, *rows = [line for line in text.splitlines() if line.startswith("| ")]
    assert "| test acc 95% interval | tested weights | best val acc | steps |" in header
    assert "| raw | " in rows[0] and "| 6 | " in rows[0]
    assert "| ema | " in rows[1] and "| 4 (stopped early) | " in rows[1] and "ema=0.99" in rows[1]


def test_long_changes_get_short_legend_labels():
    base = dict(lr=0.1, hidden=[8])
    long_cfg = dict(lr=0.123456789, hidden=[1024, 1024, 1024], dropout=0.3333333, weight_decay=0.0123456,
                    batch_size=256, optimizer="adamw", schedule="cosine")
    texts = report.describe([(base, []), (dict(lr=0.2, hidden=[8]), []), (long_cfg, []),
                             (dict(lr=0.123456789, hidden=[1024, 1024]), [])])
    assert texts[0].startswith("(baseline) lr=0.1 hidden=[8]")  # its values of what the other rows change
    assert report.label(2, texts[1], [dict(folder="runs/x/trial-001")]) == "2: lr=0.2"
    assert report.label(3, texts[2], [dict(folder="runs/x/trial-002")]) == "3: trial-002 (row 3 of the table)"
    wrapped = report.label(4, texts[3], [dict(folder="f")] * 2)
    assert all(len(line) <= report.LABEL_WIDTH for line in wrapped.splitlines()) and "0.1235" in wrapped
    assert wrapped.splitlines()[-1].strip() == "mean ± std of 2 seeds"


def test_the_loss_axis_is_clipped_when_the_first_steps_dwarf_the_rest():
    steps = np.arange(100)
    spike = np.r_[[50.0, 20.0, 8.0], np.linspace(2.0, 1.0, 97)]
    top = report.clip_top([(steps, spike)], marks=[1.1])
    assert top == pytest.approx(spike[10:].max() * 1.05)  # the curve after its first 10%, not the 50 at step 0
    assert report.clip_top([(steps, np.linspace(2.3, 1.0, 100))], marks=[1.1]) is None  # nothing to clip


def test_a_study_folder_gets_its_best_trial_and_importances(cifar_dir, tmp_path):
    """A search on the fixture data: lr 1e-9 learns nothing, so the third trial is pruned behind the second."""
    from sweeps import search

    sweep = dict(program="train.py", method="grid", metric=dict(name="val/acc", goal="maximize"),
                 early_terminate=dict(type="hyperband", min_iter=1, eta=2),
                 parameters={"model": {"value": "mlp"}, "optimizer": {"value": "adam"}, "batchnorm": {"value": True},
                             "hidden": {"values": [[8], [16]]}, "lr": {"values": [1e-9, 0.01]}},
                 command=["${env}", "${interpreter}", "${program}", "${args_no_boolean_flags}"])
    (tmp_path / "s.yaml").write_text(yaml.safe_dump(sweep))
    study = tmp_path / "study"
    assert search.main([str(tmp_path / "s.yaml"), "--study", str(study / "study.log"), "--", "--data-dir", cifar_dir,
                        "--val-size", "50", "--max-steps", "20", "--eval-every", "10", "--batch-size", "16",
                        "--eval-batch-size", "64", "--accelerator", "cpu", "--logger", "csv"]) == 0
    text = open(os.path.join(report.main([str(study)]), "report.md")).read()
    apart, search_part = text.split("## Runs that did not complete", 1)[1].split("## Search: study study", 1)
    assert "| trial-002 | 10 | pruned at step 10 (val/acc " in apart  # a row only where it completed
    assert "4 trials: " in search_part and " pruned." in search_part and "Best trial: 1 (trial-001)" in search_part
    importances = search_part.split("Parameter importances", 1)[1]
    assert "| hidden | " in importances and "| lr | " in importances


def fake_group(root, name, accs, torch_version="2.0"):
    """A seed group of run folders written by hand: config.yaml, results.json, provenance.json."""
    for i, acc in enumerate(accs):
        folder = run_folder.RunFolder(str(root / name / f"s{42 + i}"))
        os.makedirs(folder.path)
        folder.write_config({"model": "mlp", "activation": name, "seed": 42 + i})
        folder.write_results({"status": "completed", "test_acc": acc, "test_loss": 1.0, "steps": 10, "params": 5,
                              "wall_seconds": 1.0, "best_val_acc": acc})
        folder.write_provenance({"torch": torch_version, "device": "CPU: x", "git_commit": "abc"})
    return str(root / name)


def test_runs_that_differ_only_in_steps_per_call_share_a_row(tmp_path, capsys):
    """--steps-per-call trains what 1 trains (config: Loop[...]): K = 1, K = 10 and a folder saved before the
    setting existed are one row of three seeds."""
    group = fake_group(tmp_path, "elu", [0.48, 0.47, 0.49])
    for seed, k in ((42, 1), (43, 10)):
        folder = run_folder.RunFolder(os.path.join(group, f"s{seed}"))
        folder.write_config({**folder.read_config(), "steps_per_call": k})
    report.main([str(tmp_path), "--json"])
    rows = strict_load(capsys.readouterr().out)["rows"]
    assert len(rows) == 1 and rows[0]["test_acc_summary"]["n"] == 3


def strict_load(text):
    def refuse(name):
        raise ValueError(name)
    return json.loads(text, parse_constant=refuse)


def test_compare_says_beyond_noise_with_its_test_and_effect_size(tmp_path, capsys):
    a = fake_group(tmp_path, "elu", [0.48, 0.47, 0.49, 0.485, 0.475])
    b = fake_group(tmp_path, "tanh", [0.39, 0.40, 0.38, 0.395, 0.385], torch_version="2.1")
    out = report.main(["--compare", a, b, "--json"])
    result = strict_load(capsys.readouterr().out)
    assert result["test"]["verdict"].startswith("beyond seed noise") and result["test"]["p"] < 0.001
    assert abs(result["test"]["diff"] - (-0.09)) < 1e-9 and result["test"]["hedges_g"] < -3
    assert result["a"]["summary"]["n"] == 5 and result["a"]["seeds"] == [42, 43, 44, 45, 46]
    assert result["provenance_differs"] == ["torch"]
    with open(os.path.join(out, "compare.png"), "rb") as f:
        assert f.read(8) == b"\x89PNG\r\n\x1a\n"
    report.main(["--compare", a, b, "--overwrite"])  # the first call's compare.md is kept without it
    text = capsys.readouterr().out
    assert "Welch's t-test" in text and "Hedges' g" in text and "differ in torch" in text


def test_compare_says_within_noise_when_the_seeds_overlap(tmp_path, capsys):
    a = fake_group(tmp_path, "a", [0.48, 0.46, 0.50])
    b = fake_group(tmp_path, "b", [0.47, 0.49, 0.51])
    report.main(["--compare", a, b, "--json"])
    result = strict_load(capsys.readouterr().out)
    assert result["test"]["verdict"].startswith("within seed noise") and result["test"]["p"] > 0.05
    assert result["provenance_differs"] == []


def test_pooled_rows_have_an_interval_and_json(tmp_path, capsys):
    fake_group(tmp_path, "elu", [0.48, 0.47, 0.49])
    fake_group(tmp_path, "tanh", [0.39], torch_version="2.1")
    report.main([str(tmp_path), "--json"])
    got = strict_load(capsys.readouterr().out)
    first = got["rows"][0]["test_acc_summary"]
    assert first["n"] == 3 and first["ci_low"] < 0.48 < first["ci_high"]
    assert got["rows"][1]["test_acc_summary"]["ci_low"] is None  # one seed: no interval
    assert list(got["provenance_differs"]) == ["torch"]
    report.main([str(tmp_path), "--overwrite"])  # the first call's report.md is kept without it
    text = capsys.readouterr().out
    assert "95% interval" in text and "differ in provenance: torch" in text
