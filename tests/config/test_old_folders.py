"""A run folder written before the settings came from the signatures still continues, and one from a
version with settings since removed is refused in one line."""
import json

import pytest

import train

# config.yaml as the earlier train.py wrote it for `--model mlp` (its key order), with tiny-run values.
OLD = """model: mlp
preset: null
seed: 42
data_dir: {data}
batch_size: 16
eval_batch_size: 64
val_size: 50
augment: false
crop_padding: 4
normalize: center
max_steps: 4
eval_every: 2
log_every: 10
grad_clip: null
accumulate: 1
accelerator: cpu
devices: 1
num_nodes: 1
precision: 32-true
compile: false
checkpoint: auto
matmul_precision: high
output_dir: {run}
run_name: old
logger: csv
wandb_project: cifar10-lab
wandb_entity: null
group: null
tags: []
log_model: false
hidden:
- 100
activation: elu
batchnorm: false
dropout: 0.0
init: small-first
optimizer: sgd
lr: 0.001
momentum: 0.0
nesterov: false
weight_decay: 0.0
schedule: constant
warmup_steps: 0
label_smoothing: 0.0
"""


@pytest.fixture
def old_run(cifar_dir, tmp_path):
    run = tmp_path / "old"
    text = OLD.format(data=cifar_dir, run=run)
    (tmp_path / "old.yaml").write_text(text)
    train.main(["--config", str(tmp_path / "old.yaml"), "--steps-per-call", "1"])  # as the earlier version ran
    (run / "config.yaml").write_text(text)  # the folder as the earlier version left it
    return run


def test_an_old_run_folder_continues(old_run, capsys):
    results = train.main(["--resume", str(old_run), "--max-steps", "6"])
    assert results["steps"] == 6 and json.loads((old_run / "results.json").read_text())["steps"] == 6
    # one optimizer step per Lightning step, as it ran: what --steps-per-call auto would pick (2) is not
    assert "steps per Lightning step" not in capsys.readouterr().out
    assert "steps_per_call: 1\n" in (old_run / "config.yaml").read_text()


def test_an_old_run_folder_continues_under_its_command_too(old_run, cifar_dir):
    """A rerun of the same command (a SLURM requeue), not --resume: the folder's K, not auto's."""
    results = train.main(["--config", str(old_run.parent / "old.yaml"), "--max-steps", "6"])
    assert results["steps"] == 6 and "steps_per_call: 1\n" in (old_run / "config.yaml").read_text()


def test_an_old_folder_with_a_removed_setting_is_refused_in_one_line(old_run, capsys):
    (old_run / "config.yaml").write_text((old_run / "config.yaml").read_text() + "arch: preact\n")
    with pytest.raises(SystemExit) as e:
        train.main(["--resume", str(old_run), "--max-steps", "6"])
    err = capsys.readouterr().err.strip().splitlines()
    assert e.value.code == 2 and len(err) == 1 and "config.yaml: unknown key 'arch'" in err[0]
