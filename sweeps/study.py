"""One Optuna study shared by many workers through a journal file: the sweep file's space, sampler and
pruner, and how a worker claims, keeps and hands back trials.

The journal (Optuna's JournalStorage with a file backend) is one append-only file plus a lock file beside
it, on any shared filesystem: no database server. A trial's life:

    WAITING    the worker that creates the study enqueues all --trials of them at once, so however many
               workers start, no more than N trials ever run (Optuna's pop of a waiting trial is atomic)
    RUNNING    popped by one worker; user attrs: worker {id, trial}, run_dir, heartbeat (unix seconds,
               renewed every grace / 4 s while it trains)
    COMPLETE   the value is the run's metric;  PRUNED: the pruner stopped it early;
    FAIL       it diverged or crashed (user attrs status and reason say which), or its worker vanished

A requeued SLURM task (the same array job and task id) first finds its own RUNNING trial and resumes it
in place. A RUNNING trial whose heartbeat is older than the study's grace period, and whose run folder
no live process locks, has lost its worker (killed, node gone): the next worker marks it FAIL (Optuna rejects a second worker's attempt, so only
one does) and enqueues a copy with the same params and run folder (Optuna's
RetryHeartbeatStaleTrialCallback; JournalStorage has no heartbeat of its own), which continues from
the folder's last checkpoint.
"""
import json
import os
import socket
import threading
import time
import warnings

import optuna
from optuna.storages import RetryHeartbeatStaleTrialCallback
from optuna.storages.journal import JournalFileBackend, JournalFileSymlinkLock, JournalStorage
from optuna.trial import TrialState

from runfolder import BadInput
from sweeps.sweep_file import grid, params

STUDY_FILE = "study.log"   # the journal's default name inside the study folder (runs/<study>/)
TRIAL_DIR = "trial-{:03d}"  # a trial's run folder inside the study folder, by its slot (0..N-1)
GRACE_S = 600              # default: seconds without a heartbeat after which a trial's worker counts as gone
LOCK_GRACE_S = 30          # seconds after which a journal lock left by a killed worker is broken
READY_WAIT_S = 60          # how long a worker waits for the study's creator to finish enqueueing
# Metric name -> (results.json key the trial's value is read from, the val metric the pruner watches).
# val/acc is the run's best validation accuracy: the checkpoint it tests is chosen by it, too.
OBJECTIVES = {"val/acc": ("best_val_acc", "val/acc"), "test/acc": ("test_acc", "val/acc"),
           "test/loss": ("test_loss", "val/loss")}


def worker_id():
    """Who this worker is, the same after a SLURM requeue: the array job and task, the job, or host:pid."""
    env = os.environ
    if env.get("SLURM_ARRAY_JOB_ID"):
        return f"{env['SLURM_ARRAY_JOB_ID']}_{env.get('SLURM_ARRAY_TASK_ID', '0')}"
    if env.get("SLURM_JOB_ID"):
        return env["SLURM_JOB_ID"]
    return f"{socket.gethostname()}:{os.getpid()}"


def metric(sweep):
    """(results.json key, watched val metric, direction) of the sweep's metric."""
    name = sweep["metric"]["name"]
    if name not in OBJECTIVES:
        raise BadInput(f"{sweep['name']}: metric {name!r}: search.py optimises one of {', '.join(OBJECTIVES)}")
    return (*OBJECTIVES[name], sweep["metric"]["goal"])


def sampler(sweep):
    """random: independent draws. bayes: TPE (W&B's bayes is a Gaussian process; TPE is Optuna's default
    model-based sampler), with constant_liar so parallel workers do not all sample the same point.
    grid: every trial's params are enqueued, nothing is sampled."""
    if sweep["method"] == "bayes":
        return optuna.samplers.TPESampler(constant_liar=True)
    return optuna.samplers.RandomSampler()


def pruner(sweep):
    """early_terminate (W&B's hyperband) -> Optuna's successive halving on the watched val metric.

    W&B's hyperband checks each run at its brackets (min_iter, min_iter * eta, ...: here an iteration is one
    validation) and stops it unless it is in the top 1/eta of the runs at that bracket: asynchronous
    successive halving, which SuccessiveHalvingPruner is. (HyperbandPruner would split tens of trials
    over several brackets of such pruners, each then with too few trials to compare.)"""
    et = sweep.get("early_terminate")
    if not et:
        return optuna.pruners.NopPruner()
    eta = et.get("eta", 3)
    first = et["min_iter"] if "min_iter" in et else max(1, round(et["max_iter"] / eta ** et["s"]))
    return optuna.pruners.SuccessiveHalvingPruner(min_resource=first, reduction_factor=eta)


def _encode(v):
    """Optuna's categorical choices hold None, bool, int, float or str: a list (hidden sizes) goes in as JSON."""
    return json.dumps(v) if isinstance(v, (list, dict)) else v


def suggest(trial, sweep):
    """The trial's value of every parameter (fixed ones included), sampled now or, for a resumed or
    retried trial, the ones it already has."""
    out = {}
    for p in params(sweep):
        if p.values is not None and len(p.values) == 1:
            out[p.name] = p.values[0]
        elif p.values is not None:
            choices = [_encode(v) for v in p.values]
            out[p.name] = p.values[choices.index(trial.suggest_categorical(p.name, choices))]
        elif p.is_int and (p.q is None or p.distribution == "q_uniform"):
            out[p.name] = p.value(trial.suggest_int(p.name, int(p.low), int(p.high), step=int(p.q or 1), log=p.log))
        else:  # q_log_uniform_values: Optuna has no stepped log range; sampled on the log range, rounded to q
            step = p.q if p.distribution == "q_uniform" else None
            out[p.name] = p.value(trial.suggest_float(p.name, p.low, p.high, step=step, log=p.log))
    return out


def storage_of(journal):
    """The journal's storage. BadInput naming the file when it exists and is no Optuna journal: lines of
    JSON objects in ASCII (json.dumps), of which Optuna never unpickles anything. A last line without its
    newline may still be being written; it must begin like one."""
    if os.path.isfile(journal):
        with open(journal, "rb") as f:
            for n, line in enumerate(f, 1):
                try:
                    line.decode("ascii")
                    if not line.startswith(b"{"):
                        raise ValueError("not a JSON object")
                    if line.endswith(b"\n"):
                        json.loads(line)
                except ValueError as e:  # UnicodeDecodeError and JSONDecodeError are ValueErrors
                    raise BadInput(f"{journal}: line {n} is not an Optuna journal entry ({e})") from None
    return JournalStorage(JournalFileBackend(journal, lock_obj=JournalFileSymlinkLock(journal, LOCK_GRACE_S)))


def load(journal):
    """The study in a journal file, to read (report.py)."""
    return optuna.load_study(study_name=None, storage=storage_of(journal))


def open_study(journal, sweep, n_trials, grace=GRACE_S):
    """The study in `journal`, created with its N waiting trials by whichever worker comes first.
    Later workers check that it is the same sweep; --trials and --grace are the creator's."""
    folder = os.path.dirname(os.path.abspath(journal))
    os.makedirs(folder, exist_ok=True)
    storage = storage_of(journal)
    name = os.path.basename(folder)
    _, _, direction = metric(sweep)
    spec = {k: sweep.get(k) for k in ("method", "metric", "parameters", "early_terminate")}
    try:
        study = optuna.create_study(storage=storage, study_name=name, direction=direction,
                                    sampler=sampler(sweep), pruner=pruner(sweep))
    except optuna.exceptions.DuplicatedStudyError:
        study = optuna.load_study(study_name=name, storage=storage, sampler=sampler(sweep), pruner=pruner(sweep))
        deadline = time.monotonic() + READY_WAIT_S
        while "trials" not in study.user_attrs:  # its creator is still enqueueing
            if time.monotonic() > deadline:
                raise BadInput(f"{journal}: the study's creator never finished setting it up; start a new --study")
            time.sleep(0.5)
        if study.user_attrs["sweep"] != spec:
            raise BadInput(f"{journal} holds a study of another sweep (method, metric, parameters or "
                             "early_terminate differ); use a new --study")
        return study, storage
    study.set_user_attr("sweep", spec)
    study.set_user_attr("grace", grace)
    if sweep["method"] == "grid":  # each config once, in the file's order
        searched = {p.name for p in params(sweep) if len(p.values) > 1}
        for k, values in enumerate(grid(sweep)[:n_trials]):
            study.enqueue_trial({n: _encode(v) for n, v in values.items() if n in searched}, user_attrs={"slot": k})
    else:
        for k in range(n_trials):
            study.enqueue_trial({}, user_attrs={"slot": k})
    study.set_user_attr("trials", n_trials)  # last: the study is ready
    return study, storage


class Claimed:
    """A trial this worker holds: the Optuna Trial, its run folder's name, and a heartbeat while it trains."""

    def __init__(self, study, storage, trial_id, me, resumed):
        self.study, self.storage, self.trial_id, self.resumed = study, storage, trial_id, resumed
        self.trial = trial = optuna.Trial(study, trial_id)
        attrs = trial.user_attrs
        self.run_dir = attrs.get("run_dir") or TRIAL_DIR.format(attrs["slot"])
        trial.set_user_attr("worker", {"id": me, "trial": trial.number})
        trial.set_user_attr("run_dir", self.run_dir)
        self.interval = study.user_attrs.get("grace", GRACE_S) / 4
        self._stop = threading.Event()
        self.beat()
        self._thread = threading.Thread(target=self._beat_until_stopped, daemon=True)
        self._thread.start()

    def beat(self):
        self.storage.set_trial_user_attr(self.trial_id, "heartbeat", time.time())

    def _beat_until_stopped(self):
        while not self._stop.wait(self.interval):
            try:
                self.beat()
            except optuna.exceptions.UpdateFinishedTrialError:
                return  # another worker took it over (we were silent too long); the finish says so

    def stop(self):
        self._stop.set()
        self._thread.join()

    def finish(self, state, value=None, **attrs):
        """Record the outcome: state COMPLETE (with value), PRUNED or FAIL; attrs (status, reason) first."""
        self.stop()
        try:
            for k, v in attrs.items():
                self.trial.set_user_attr(k, v)
            self.study.tell(self.trial, value if state == TrialState.COMPLETE else None, state=state)
            return True
        except optuna.exceptions.UpdateFinishedTrialError:
            return False  # failed as stale by another worker meanwhile; its retry has this folder


def _trial_id(study, storage, number):
    return storage.get_trial_id_from_study_id_trial_number(storage.get_study_id_from_name(study.study_name), number)


def hand_back(study, storage, number, status, reason):
    """Mark RUNNING trial `number` FAIL with status and reason, and enqueue its retry: the same params and
    run folder (its checkpoint), in the queue for the next worker. False when another worker did first."""
    tid = _trial_id(study, storage, number)
    try:
        storage.set_trial_user_attr(tid, "status", status)
        storage.set_trial_user_attr(tid, "reason", reason)
        storage.set_trial_state_values(tid, TrialState.FAIL)  # Optuna refuses this to all but the first
    except optuna.exceptions.UpdateFinishedTrialError:
        return False
    with warnings.catch_warnings():  # "experimental": its interface may change; tests/sweeps pins the behaviour
        warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
        RetryHeartbeatStaleTrialCallback(inherit_intermediate_values=True)(study, storage.get_trial(tid))
    return True


def in_use(folder):
    """Whether a live process holds the run folder's lock (runfolder/lock.py; the kernel drops it when the
    process dies): then its worker is alive, however late its heartbeat."""
    from runfolder.lock import RunLock
    from runfolder import BadInput
    from runfolder.folder import RunFolder

    if not RunFolder(folder).has_config():  # no run started there, so no lock to hold (and none to create)
        return False
    try:
        RunLock(RunFolder(folder)).release()
    except BadInput:
        return True
    return False


def fail_stale(study, storage, study_dir, now=None):
    """Hand back every RUNNING trial whose heartbeat is older than the study's grace period and whose run
    folder no live process holds. Returns the numbers of the trials this worker handed back."""
    now = now or time.time()
    grace = study.user_attrs.get("grace", GRACE_S)
    failed = []
    for t in study.get_trials(deepcopy=False, states=(TrialState.RUNNING,)):
        beat = t.user_attrs.get("heartbeat") or t.datetime_start.timestamp()
        if now - beat <= grace or in_use(os.path.join(study_dir, t.user_attrs.get("run_dir", ""))):
            continue
        who = (t.user_attrs.get("worker") or {}).get("id")
        if hand_back(study, storage, t.number, "worker lost", f"no heartbeat for {now - beat:.0f} s from worker {who}; retried"):
            failed.append(t.number)
    return failed


def others_running(study):
    """The trials other workers are running now."""
    return study.get_trials(deepcopy=False, states=(TrialState.RUNNING,))


def claim(study, storage, me, study_dir):
    """The next trial for worker `me`, or None when the study has none left to run:
    its own RUNNING trial (a requeued SLURM task), else a waiting one (a retry or a fresh slot)."""
    for t in study.get_trials(deepcopy=False, states=(TrialState.RUNNING,)):
        if t.user_attrs.get("worker") == {"id": me, "trial": t.number}:
            return Claimed(study, storage, _trial_id(study, storage, t.number), me, True)
    fail_stale(study, storage, study_dir)
    for t in study.get_trials(deepcopy=False, states=(TrialState.WAITING,)):
        tid = _trial_id(study, storage, t.number)
        try:
            if not storage.set_trial_state_values(tid, TrialState.RUNNING):
                continue  # another worker popped it first
        except optuna.exceptions.UpdateFinishedTrialError:
            continue
        return Claimed(study, storage, tid, me, "failed_trial" in t.system_attrs)
    return None
