"""config/: config files, presets as files, layering, validation, --print-config, --smoke."""
import csv
import os
import subprocess
import sys

import pytest
import pytorch_lightning as pl
import yaml

import train
from tests.conftest import ROOT
from config.resolve import COURSE, CONFIG_DIR, continue_keys, presets, resolve, runtime_keys


def config_of(argv):
    return resolve(argv)[0]


def write(path, text):
    path.write_text(text)
    return str(path)


def test_layers_preset_then_files_in_order_then_flags(tmp_path):
    a = write(tmp_path / "a.yaml", "lr: 0.01\nhidden: [32, 16]\nbatch-size: 64\n")
    b = write(tmp_path / "b.yaml", "lr: 0.02\n")
    cfg = config_of(["--preset", "seed-best", "--config", a, "--config", b, "--batch-size", "8"])
    assert cfg["optimizer"] == "adam" and cfg["max_steps"] == 10000  # the preset
    assert cfg["hidden"] == [32, 16] and cfg["lr"] == 0.02           # files, the later one winning
    assert cfg["batch_size"] == 8                                    # typed flags win over everything
    assert cfg["normalize"] == "center"                              # the model's course default below all


@pytest.mark.parametrize("text, message", [
    ("foo: 1\n", "unknown key 'foo'"),
    ("lr: fast\n", "lr: expected a float, got 'fast'"),
    ("steps_per_call: some\n", "steps_per_call: expected an int or auto, got 'some'"),
    ("steps_per_call: 0\n", "steps_per_call: must be > 0"),
    ("lr: .nan\n", "lr: must be a finite number"),
    ("batchnorm: 3\n", "batchnorm: expected true or false"),
    ("activation: swish\n", "activation: invalid choice: 'swish'"),
    ("norm_impl: torch\n", "--norm-impl does not apply to --model mlp"),
    ("config: other.yaml\n", "unknown key 'config'"),
    ("- lr\n", "expected a mapping"),
    ("lr: [0.1\n", "not valid YAML"),
])
def test_a_bad_config_file_is_one_line_naming_file_and_key(text, message, tmp_path, capsys):
    path = write(tmp_path / "exp.yaml", text)
    with pytest.raises(SystemExit) as e:
        resolve(["--config", path])
    err = capsys.readouterr().err.strip().splitlines()
    assert e.value.code == 2 and len(err) == 1 and path in err[0] and message in err[0]


def test_every_bad_key_of_a_config_file_in_one_line_with_suggestions(tmp_path, capsys):
    path = write(tmp_path / "exp.yaml", "lrr: 0.1\nbach-size: 64\ndropout: 2\nhidden: [32]\nzzz: 1\n")
    with pytest.raises(SystemExit) as e:
        resolve(["--config", path])
    err = capsys.readouterr().err.strip().splitlines()
    assert e.value.code == 2 and len(err) == 1 and path in err[0]
    for part in ("unknown key 'lrr' (did you mean 'lr'?)", "unknown key 'bach-size' (did you mean 'batch-size'?)",
                 "dropout: must be <= 1", "unknown key 'zzz'"):
        assert part in err[0]
    assert "'zzz' (did you mean" not in err[0]  # nothing near: no suggestion


def test_every_flag_a_model_lacks_in_one_line(tmp_path, capsys):
    path = write(tmp_path / "exp.yaml", "norm_impl: torch\ntta: 1\n")
    with pytest.raises(SystemExit):
        resolve(["--config", path, "--model", "mlp"])
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "--norm-impl, --tta do not apply to --model mlp" in err[0]


def test_presets_are_the_config_files_in_configs(capsys):
    assert set(presets()) == {os.path.splitext(f)[0] for f in os.listdir(CONFIG_DIR)
                              if f.endswith(".yaml") and f != os.path.basename(COURSE)}
    with pytest.raises(SystemExit):
        train.main(["--help"])
    out = capsys.readouterr().out
    for name, (path, help_line) in presets().items():
        assert name in out and help_line in out and help_line  # each file's first-line comment is its help
        assert config_of(["--config", path])  # and each one is a valid --config


def test_print_config_prints_yaml_and_touches_nothing(tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    cfg = train.main(["--preset", "fast", "--print-config", "--data-dir", str(tmp_path / "nowhere")])
    printed = yaml.safe_load(capsys.readouterr().out)
    assert printed == cfg and printed["model"] == "fast_resnet" and printed["batch_size"] == 1024
    assert os.listdir(tmp_path) == []  # no runs/, no data/


def test_a_runs_config_yaml_reproduces_it(tiny_args, tmp_path):
    first = train.main(["--model", "mlp", *tiny_args, "--hidden", "32", "--augment", "--dropout", "0.1"])
    again = train.main(["--config", str(tmp_path / "run" / "config.yaml"), "--output-dir", str(tmp_path / "again")])
    assert (first["test_acc"], first["test_loss"]) == (again["test_acc"], again["test_loss"])

    def values(run):
        with open(tmp_path / run / "metrics.csv") as f:
            return list(csv.DictReader(f))
    assert values("run") == values("again")


# a few steps: three, or one Lightning step of K (--steps-per-call auto gives 5 for the tiny run's settings)
@pytest.mark.parametrize("k, steps", [("1", 3), ("auto", 5)])
def test_smoke_runs_a_few_steps_and_writes_nothing(k, steps, tiny_args, tmp_path, capsys):
    results = train.main(["--model", "mlp", *tiny_args, "--smoke", "--max-steps", "1000", "--steps-per-call", k])
    assert results["steps"] == steps and not (tmp_path / "run").exists()
    assert "nothing written" in capsys.readouterr().out.strip().splitlines()[-1]


def test_grad_clip_and_accumulate_reach_the_trainer(tiny_args):
    seen = {}

    class Spy(pl.Callback):
        def setup(self, trainer, pl_module, stage):
            seen.update(clip=trainer.gradient_clip_val, accumulate=trainer.accumulate_grad_batches)

    results = train.main(["--model", "mlp", *tiny_args, "--grad-clip", "0.5", "--accumulate", "2"], callbacks=[Spy()])
    assert seen == {"clip": 0.5, "accumulate": 2} and results["steps"] == 5


def test_runtime_keys_are_where_and_how_a_run_ran():
    assert {"data_dir", "output_dir", "logger", "devices", "eval_every", "steps_per_call"} <= runtime_keys()
    assert not {"lr", "hidden", "seed", "max_steps", "batch_size"} & runtime_keys()
    assert "steps_per_call" not in continue_keys()  # Loop[...]: pooled by report.py, kept for a run's life


def test_auto_is_a_value_typed_or_in_a_file(tmp_path):
    assert config_of([])["steps_per_call"] == "auto"
    assert config_of(["--steps-per-call", "3"])["steps_per_call"] == 3
    assert config_of(["--config", write(tmp_path / "a.yaml", "steps_per_call: 3\n"), "--steps-per-call", "auto"]
                     )["steps_per_call"] == "auto"
    assert config_of(["--config", write(tmp_path / "b.yaml", "steps-per-call: auto\n")])["steps_per_call"] == "auto"


def test_models_numpy_mlp_imports_no_torch():
    code = "import sys, models.numpy_mlp; assert 'torch' not in sys.modules, 'torch was imported'"
    subprocess.run([sys.executable, "-c", code], cwd=ROOT, check=True)


@pytest.mark.parametrize("argv", [["--help"], ["--model", "resnet", "--help"], ["--preset", "fast", "--print-config"],
                                  ["--lr", "fast"], ["--norm-impl", "torch"]])
def test_help_print_config_and_errors_import_nothing_heavy(argv):
    code = ("import sys, train\ntry: train.main(%r)\nexcept SystemExit: pass\n"
            "heavy = [m for m in ('torch', 'pytorch_lightning', 'lightning', 'wandb') if m in sys.modules]\n"
            "assert not heavy, heavy" % argv)
    done = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
