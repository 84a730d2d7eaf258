"""Many small runs on one device: K train.py processes at once per device, each with its share of it.

    run(jobs, per_device=3)     # jobs: [Job(argv, log)]; returns each job's exit status, in job order

per_device 1 runs the jobs one after another on the terminal's stdout (progress bars as usual).
With K > 1, K jobs per device run at once, each writing its output to its own log file, and this
process prints one line as each starts and ends, and passes the signals in FORWARDED on to them. Each child gets, through its environment:
  - on GPUs: CUDA_VISIBLE_DEVICES, one device each (jobs go round the visible devices), and
    MEMORY_ENV = 1/K, which train() passes to torch.cuda.set_per_process_memory_fraction so that
    one run cannot take the memory its neighbours need;
  - on CPUs: THREADS_ENV (OMP_NUM_THREADS, MKL_NUM_THREADS) = the usable cores // K (at least 1),
    so K runs split the cores instead of each starting one thread per core.
"""
import os
import signal
import subprocess
import time
from dataclasses import dataclass

MEMORY_ENV = "CIFAR10_LAB_MEMORY_FRACTION"  # read by training/run.py: this process's share of its GPU
THREADS_ENV = ("OMP_NUM_THREADS", "MKL_NUM_THREADS")
# Signals passed on to the running jobs (SLURM's time-limit warning, scancel, Ctrl-C): each saves a
# checkpoint and ends as train.py does alone; no new job starts after one arrives.
FORWARDED = (signal.SIGTERM, signal.SIGINT, signal.SIGUSR1, signal.SIGUSR2)


@dataclass
class Job:
    argv: list         # the full command, interpreter first
    log: str = None    # where its stdout and stderr go when packed (K > 1); the terminal when None
    name: str = ""     # how progress lines call it


def cores():
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # not Linux
        return os.cpu_count() or 1


def gpus():
    """The visible GPUs' ids (CUDA_VISIBLE_DEVICES, else all torch sees); [] without CUDA."""
    visible = os.environ.get("CUDA_VISIBLE_DEVICES")
    if visible is not None:
        return [d for d in visible.split(",") if d.strip() and d.strip() != "-1"]
    import torch

    return [str(i) for i in range(torch.cuda.device_count())] if torch.cuda.is_available() else []


def child_env(per_device, gpu=None):
    """The environment of one of K runs sharing a device: its GPU and memory share, or its share of the cores."""
    env = dict(os.environ)
    if per_device == 1:
        return env
    if gpu is not None:
        env["CUDA_VISIBLE_DEVICES"] = gpu
        env[MEMORY_ENV] = f"{1 / per_device:.6f}"
    threads = str(max(1, cores() // per_device))  # on a GPU too: the data pipeline's CPU work
    for name in THREADS_ENV:
        env[name] = threads
    return env


def apply_memory_share(device):
    """In the child: cap this process's memory on `device` (a CUDA torch.device) at MEMORY_ENV's share."""
    share = os.environ.get(MEMORY_ENV)
    if share and device.type == "cuda":
        import torch

        torch.cuda.set_per_process_memory_fraction(float(share), device)


def run(jobs, per_device=1, say=print):
    """Run the jobs, per_device at a time on each device; return their exit statuses in job order."""
    devices = (gpus() if per_device > 1 else []) or [None]
    slots = [d for d in devices for _ in range(per_device)]  # one slot per concurrent run
    free, running, codes, queue = list(slots), {}, [None] * len(jobs), list(enumerate(jobs))
    stopped = []

    def forward(signum, frame):
        stopped.append(signum)
        for proc in running:
            proc.send_signal(signum)

    before = {sig: signal.signal(sig, forward) for sig in FORWARDED}
    try:
        while queue and not stopped or running:
            while queue and free and not stopped:
                i, job = queue.pop(0)
                device = free.pop(0)
                # Its own session: a terminal's Ctrl-C reaches it once, through forward(), not twice
                if per_device == 1:  # one at a time: its progress bar on this terminal
                    proc = subprocess.Popen(job.argv, start_new_session=True)
                else:
                    with open(job.log, "ab") as log:
                        proc = subprocess.Popen(job.argv, stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                                                env=child_env(per_device, device), start_new_session=True)
                running[proc] = (i, device, time.perf_counter())
                where = f" on GPU {device}" if device is not None else ""
                say(f"[{i + 1}/{len(jobs)}] {job.name} started{where}" + (f", log {job.log}" if per_device > 1 else ""))
            time.sleep(0.2)
            for proc in [p for p in running if p.poll() is not None]:
                i, device, start = running.pop(proc)
                codes[i] = proc.returncode
                free.append(device)
                say(f"[{i + 1}/{len(jobs)}] {jobs[i].name} exit {proc.returncode} after {time.perf_counter() - start:.0f}s")
    finally:
        for sig, handler in before.items():
            signal.signal(sig, handler)
    if stopped:
        say(f"stopped by signal {stopped[0]}: {len(queue)} job(s) not started")
        codes = [128 + stopped[0] if c is None else c for c in codes]
    return codes

