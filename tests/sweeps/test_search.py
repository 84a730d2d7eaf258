"""sweeps/search.py: an Optuna study over a sweep file, shared by workers through one journal file.

Tiny runs on the fixture data; workers that must die are subprocesses killed with SIGKILL."""
import csv
import glob
import os
import signal
import subprocess
import sys
import time

import optuna
import pytest
import yaml
from optuna.storages.journal import JournalFileBackend, JournalStorage
from optuna.trial import TrialState

from sweeps import search, sweep_file
from sweeps import study as studies
from runfolder import folder as run_folder

SEARCH = os.path.join(sweep_file.ROOT, "sweeps", "search.py")
COMMAND = ["${env}", "${interpreter}", "${program}", "${args_no_boolean_flags}"]


def write_sweep(path, parameters, method="random", **more):
    sweep = dict(program="train.py", method=method, metric=dict(name="val/acc", goal="maximize"),
                 parameters={"model": {"value": "mlp"}, "optimizer": {"value": "adam"}, **parameters},
                 command=COMMAND, **more)
    path.write_text(yaml.safe_dump(sweep, sort_keys=False))
    return str(path)


def flags(cifar_dir, steps, eval_every=5):
    return ["--data-dir", cifar_dir, "--val-size", "50", "--max-steps", str(steps), "--eval-every", str(eval_every),
            "--batch-size", "16", "--eval-batch-size", "64", "--accelerator", "cpu", "--logger", "csv"]


def trials(journal):
    study = optuna.load_study(study_name=None, storage=JournalStorage(JournalFileBackend(journal)))
    return study.get_trials(deepcopy=False)


def steps_logged(folder):
    """Each step with a val/acc row in metrics.csv, in file order (a step twice = trained twice)."""
    with open(os.path.join(folder, run_folder.METRICS_CSV)) as f:
        return [int(r["step"]) for r in csv.DictReader(f) if r.get("val/acc")]


def start_worker(sweep, journal, cifar_dir, steps, log, env=(), grace=None):
    argv = [sys.executable, SEARCH, sweep, "--trials", "1", "--study", journal,
            *(["--grace", str(grace)] if grace else []), "--", *flags(cifar_dir, steps, eval_every=10)]
    env = {**os.environ, "OMP_NUM_THREADS": "1", **dict(env)}
    return subprocess.Popen(argv, stdout=log, stderr=subprocess.STDOUT, env=env, start_new_session=True)


def kill_after_first_checkpoint(proc, folder, timeout=120):
    """SIGKILL the worker (its whole process group) once its trial has a checkpoint to continue from."""
    last = os.path.join(folder, run_folder.CHECKPOINTS, run_folder.LAST)
    deadline = time.monotonic() + timeout
    while not os.path.exists(last):
        assert proc.poll() is None, "the worker ended before its trial saved a checkpoint"
        assert time.monotonic() < deadline, "no checkpoint in time"
        time.sleep(0.02)
    os.killpg(proc.pid, signal.SIGKILL)
    proc.wait()


@pytest.mark.parametrize("spec, message", [
    (dict(method="hyperopt"), "method is 'hyperopt'; use one of grid, random, bayes"),
    (dict(parameters={"widht": {"values": [1, 2]}}), "parameter 'widht' is not a train.py flag"),
    (dict(parameters={"lr": {"distribution": "log_uniform_values", "min": 0.1, "max": 0.01}}),
     "parameter 'lr': min 0.1 is not less than max 0.01"),
    (dict(parameters={"activation": {"values": ["relu", "gelu"]}}), "parameter 'activation': "),
    (dict(early_terminate={"type": "median"}), "early_terminate must be {type: hyperband"),
])
def test_bad_sweep_file_is_one_line_before_anything_runs(tmp_path, capsys, spec, message):
    parameters = spec.pop("parameters", {"lr": {"values": [0.01, 0.02]}})
    path = write_sweep(tmp_path / "bad.yaml", parameters, **spec)
    journal = tmp_path / "runs" / "bad" / "study.log"
    with pytest.raises(SystemExit) as e:
        search.main([path, "--trials", "2", "--study", str(journal), "--", "--data-dir", "nowhere"])
    err = capsys.readouterr().err
    assert e.value.code == 2 and err.count("\n") == 1 and message in err and "Traceback" not in err
    assert not (tmp_path / "runs").exists()


def test_a_flag_after_the_dashes_may_not_set_a_searched_parameter(tmp_path, capsys):
    path = write_sweep(tmp_path / "s.yaml", {"lr": {"values": [0.01, 0.02]}})
    with pytest.raises(SystemExit) as e:
        search.main([path, "--trials", "2", "--study", str(tmp_path / "s" / "study.log"), "--", "--lr", "0.1"])
    assert e.value.code == 2 and "--lr after -- sets a parameter the sweep searches" in capsys.readouterr().err


def test_two_workers_share_one_study_and_run_each_trial_once(tmp_path, cifar_dir):
    # --per-device 2: this one command starts two workers (training/packing.py) that share the journal
    path = write_sweep(tmp_path / "two.yaml", {"hidden": {"values": [[8], [16]]},
                                               "lr": {"distribution": "log_uniform_values", "min": 1e-3, "max": 3e-2}})
    journal = str(tmp_path / "two" / "study.log")
    # --grace 8: a worker with no trial left waits grace / 4 s (at most 30 s) between looks at the other's
    # last trial, so at the default grace the command would outlast its trials by up to 30 s
    argv = [sys.executable, SEARCH, path, "--trials", "6", "--study", journal, "--per-device", "2", "--grace", "8",
            "--", *flags(cifar_dir, 6, 3)]
    proc = subprocess.run(argv, capture_output=True, text=True, timeout=400, env={**os.environ, "CUDA_VISIBLE_DEVICES": ""})
    logs = sorted(glob.glob(str(tmp_path / "two" / "worker-*.log")))
    assert proc.returncode == 0, (proc.stdout, [open(log).read()[-2000:] for log in logs])
    assert len(logs) == 2 and proc.stdout.count("started") == 2
    done = trials(journal)
    assert len(done) == 6 and all(t.state == TrialState.COMPLETE for t in done)
    assert sorted(t.user_attrs["run_dir"] for t in done) == [f"trial-{k:03d}" for k in range(6)]
    assert len({t.user_attrs["worker"]["id"] for t in done}) == 2  # both took trials
    for t in done:
        folder = tmp_path / "two" / t.user_attrs["run_dir"]
        assert steps_logged(folder) == [2, 5]  # validated at steps 3 and 6, once each: trained once
        config = yaml.safe_load((folder / run_folder.CONFIG).read_text())
        assert config["group"] == "two" and config["lr"] == t.params["lr"]


def test_pruning_stops_a_trial_whose_val_acc_is_bad(tmp_path, cifar_dir, capsys):
    # A grid, so the order is known: a learning trial first, then one with a learning rate too small to learn.
    path = write_sweep(tmp_path / "prune.yaml", {"lr": {"values": [0.01, 1e-9]}, "batchnorm": {"value": True}},
                       method="grid", early_terminate={"type": "hyperband", "min_iter": 1, "eta": 2})
    journal = str(tmp_path / "prune" / "study.log")
    assert search.main([path, "--study", journal, "--", *flags(cifar_dir, 30, 10)]) == 0
    good, bad = trials(journal)
    assert good.state == TrialState.COMPLETE and good.params["lr"] == 0.01
    assert bad.state == TrialState.PRUNED and bad.params["lr"] == 1e-9
    assert bad.intermediate_values[1] < good.intermediate_values[1]
    results = run_folder.RunFolder(str(tmp_path / "prune" / "trial-001")).read_results()
    assert results["steps"] == 10 and results["status"] == "completed"  # stopped at its first validation
    assert "trial 1: pruned at step 10" in capsys.readouterr().out


def test_a_killed_workers_trial_is_resumed_by_another_worker(tmp_path, cifar_dir, capsys):
    path = write_sweep(tmp_path / "kill.yaml", {"lr": {"value": 0.01}}, method="grid")
    journal = str(tmp_path / "kill" / "study.log")
    with open(tmp_path / "a.log", "w") as log:
        a = start_worker(path, journal, cifar_dir, 300, log, grace=2)
        kill_after_first_checkpoint(a, tmp_path / "kill" / "trial-000")
    assert search.main([path, "--study", journal, "--", *flags(cifar_dir, 300, eval_every=10)]) == 0
    lost, retry = trials(journal)
    assert lost.state == TrialState.FAIL and lost.user_attrs["status"] == "worker lost"
    assert retry.state == TrialState.COMPLETE and retry.user_attrs["run_dir"] == "trial-000"
    assert retry.system_attrs["failed_trial"] == 0
    assert "continuing from" in capsys.readouterr().out
    folder = tmp_path / "kill" / "trial-000"
    assert run_folder.RunFolder(str(folder)).read_results()["steps"] == 300
    logged = steps_logged(folder)
    assert logged == sorted(set(logged)) and logged[-1] == 299


def test_a_requeued_task_resumes_its_own_trial(tmp_path, cifar_dir, capsys, monkeypatch):
    path = write_sweep(tmp_path / "requeue.yaml", {"lr": {"value": 0.01}}, method="grid")
    journal = str(tmp_path / "requeue" / "study.log")
    task = {"SLURM_ARRAY_JOB_ID": "77", "SLURM_ARRAY_TASK_ID": "3"}
    with open(tmp_path / "a.log", "w") as log:
        a = start_worker(path, journal, cifar_dir, 300, log, env=task)
        kill_after_first_checkpoint(a, tmp_path / "requeue" / "trial-000")
    for k, v in task.items():
        monkeypatch.setenv(k, v)
    assert search.main([path, "--study", journal, "--", *flags(cifar_dir, 300, eval_every=10)]) == 0
    (only,) = trials(journal)  # the same trial, continued in place: no retry
    assert only.state == TrialState.COMPLETE and only.user_attrs["worker"] == {"id": "77_3", "trial": 0}
    assert "trial 0 -> " in (out := capsys.readouterr().out) and "(resumed)" in out and "continuing from" in out


def test_a_late_heartbeat_is_not_taken_over_while_the_run_folder_is_locked(tmp_path):
    """A live worker can miss its heartbeats (a stalled filesystem); its run's lock says it is alive."""
    from runfolder.lock import RunLock

    sweep = sweep_file.load(write_sweep(tmp_path / "late.yaml", {"lr": {"values": [0.01, 0.02]}}, method="grid"))
    study, storage = studies.open_study(str(tmp_path / "late" / "study.log"), sweep, 2, grace=1)
    claimed = studies.claim(study, storage, "w1", str(tmp_path / "late"))
    claimed.stop()
    folder = run_folder.RunFolder(str(tmp_path / "late" / claimed.run_dir))
    os.makedirs(folder.path)
    folder.write_config({"lr": 0.01})
    lock = RunLock(folder)  # the live run's lock
    later = time.time() + 10  # well past the 1 s grace
    assert studies.fail_stale(study, storage, str(tmp_path / "late"), now=later) == []
    lock.release()  # the process holding it is gone
    assert studies.fail_stale(study, storage, str(tmp_path / "late"), now=later) == [claimed.trial.number]
    states = [t.state for t in study.get_trials()]
    assert states == [TrialState.FAIL, TrialState.WAITING, TrialState.WAITING]  # the retry waits for a worker


SEARCH_FILES = sorted(p for p in glob.glob(os.path.join(sweep_file.ROOT, "sweeps", "*.yaml"))
                      if yaml.safe_load(open(p)).get("method") != "grid")


@pytest.mark.parametrize("path", SEARCH_FILES, ids=os.path.basename)
def test_every_search_file_gives_trials_train_accepts(path, tmp_path):
    sweep = sweep_file.load(path)
    search.preflight(sweep, str(tmp_path), ["--data-dir", "data"])
    study = optuna.create_study(sampler=studies.sampler(sweep), pruner=studies.pruner(sweep))
    for _ in range(3):
        values = studies.suggest(study.ask(), sweep)
        cfg = search.resolve_quietly(sweep_file.train_args(sweep, values) + ["--output-dir", str(tmp_path / "t")])
        for key, value in values.items():  # the value the search sampled is the value the run gets
            assert cfg[key.replace("-", "_")] == value, (path, key)


def test_a_diverged_trial_is_recorded_as_failed_not_as_a_success(tmp_path, cifar_dir):
    path = write_sweep(tmp_path / "div.yaml", {"optimizer": {"value": "sgd"}, "lr": {"value": 1e6}}, method="grid")
    journal = str(tmp_path / "div" / "study.log")
    assert search.main([path, "--study", journal, "--", *flags(cifar_dir, 20)]) == 0
    (t,) = trials(journal)
    assert t.state == TrialState.FAIL and t.user_attrs["status"] == "diverged" and "not finite" in t.user_attrs["reason"]
    assert run_folder.RunFolder(str(tmp_path / "div" / "trial-000")).read_results()["status"] == "diverged"
