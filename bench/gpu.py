"""The GPU acceptance run: what the project claims about GPUs, checked and timed by one command.

    python -m bench.gpu --data-dir DIR --out DIR            # a CUDA GPU: about 8 minutes (--budget)
    python -m bench.gpu --data-dir DIR --out DIR --quick    # any machine, on the CPU, tiny sizes: checks
                                                            # that every part runs; it measures nothing

DIR holds cifar-10-batches-py/, or the 19 MB JPEG archive (bench/gpu_data.py), which is unpacked first.
airbench94, the baseline, comes from --airbench WHEEL (default: an airbench-*.whl in DIR), else from
an installed airbench. Nothing is downloaded; W&B is not used (CSV logger), and need not be installed.

The parts, in this order, each in a Python process of its own: one that fails or overruns its time
becomes a row that says so, and the next part runs.
    tests         python -m pytest -m gpu tests/gpu: GPU batches equal CPU batches; reduced precision and
                  channels_last track fp32; --compile trains; TF32 is on; 1-GPU DDP through NCCL; no host-device sync
                  in a training step
    fast          train.py --preset fast against airbench94 on the same data, alternating, n >= 10 each
                  (as many as fit), run i of each side on seed i: test accuracy, and seconds of the same
                  span on both sides (the model put on the GPU, trained, TTA-tested, its accuracy read back;
                  data loading out), fit and test apart, at the same float32 matmul precision
    fast-compile  the same with --compile
    step          bench.fast_step on the GPU: train.py's step against a plain loop, batch 1024
    resnet        the course ResNet, its full 5000 steps
    mlp           the MLP presets, full length, shortest first, as many as the time left allows; the course
                  MLP again with one optimizer step per Lightning step (--steps-per-call 1; auto gives 10)
Each part gets a share of --budget (SHARES); time a part leaves unused goes to the next.
Writes, after every part: OUT/gpu.md (the table, the machine, the date), OUT/gpu.json (every figure
and every single run), OUT/gpu.log (what the parts printed), OUT/gpu-tests.xml (pytest's report).
"""
import argparse
import contextlib
import glob
import io
import json
import os
import platform
import signal
import statistics
import subprocess
import sys
import tempfile
import time

from runfolder.folder import strict_json
from config.checks import FILE, FOLDER, OUT_FOLDER, Parser, path_type

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
TABLE, RAW, LOG, TESTS_XML = "gpu.md", "gpu.json", "gpu.log", "gpu-tests.xml"  # what --out gets

BUDGET = 480  # seconds for all parts together (the issue: at most 8 minutes on one H100/H200-class GPU)
# Each part's share of the budget, in seconds at the default budget (scaled with --budget).
SHARES = {"tests": 100, "fast": 120, "fast-compile": 140, "step": 30, "resnet": 60, "mlp": 30}
PARTS = tuple(SHARES)
GRACE = 45  # seconds past its share before a part is stopped: its start-up, and the run in flight
MIN_RUNS = 10  # runs of each side in the fast parts, if they fit
QUICK_SECONDS = 300  # each part's limit with --quick: it measures nothing, so the limit only catches a hang
                     # (at load 5-6 on 2 cores, start-up alone took tens of seconds a part)
ACC_GOAL, ACC_GOAL_JPEG = 0.94, 0.93  # --preset fast: on the official files, and on the JPEG copy
TIME_GOALS = (3.0, 1.0)  # --preset fast's seconds / airbench94's: the first step, and the goal
STEP_GOAL = 0.9  # bench.fast_step: train.py's steps/s over the plain loop's
MLP_STEP_GOAL_MS = 1.0  # the course MLP's ms a step on the GPU (fit seconds / steps, its validations included)

# Tiny sizes for --quick: seconds on a CPU, on any data (the tests' 300-image fixture too): --smoke trains
# 3 steps and tests one batch of 50 images, not the 10,000-image test set (with TTA, 6 passes over it).
QUICK_FLAGS = ["--accelerator", "cpu", "--smoke", "--batch-size", "16", "--val-size", "50", "--eval-batch-size", "50"]
# The MLP part: (label, train.py flags), shortest first so that as many as possible fit.
MLP_RUNS = [("mlp (course)", ["--model", "mlp"]),
            ("mlp (course), --steps-per-call 1", ["--model", "mlp", "--steps-per-call", "1"]),
            ("norm-none", ["--preset", "norm-none"]),
            ("norm-batch", ["--preset", "norm-batch"]), ("norm-layer", ["--preset", "norm-layer"]),
            ("numpy_mlp (course)", ["--model", "numpy_mlp"]), ("seed-best", ["--preset", "seed-best"]),
            ("mlp-best", ["--preset", "mlp-best"])]


# ---------------------------------------------------------------- rows

def stats(values):
    """{mean, std, min, max, values}; std is the sample standard deviation (0 for one value)."""
    values = [float(v) for v in values]
    if not values:
        return None
    return {"mean": statistics.fmean(values), "std": statistics.stdev(values) if len(values) > 1 else 0.0,
            "min": min(values), "max": max(values), "values": values}


def row(part, what, status="ok", n=None, acc=None, seconds=None, other=None, ratio=None, goal=None, met=None,
        note=""):
    """One line of the table. acc, seconds: stats(); other: (unit, stats()) for any other figure;
    ratio: ours / the baseline's; status: ok, failed, timed out, not run, skipped."""
    return {"part": part, "what": what, "n": n, "acc": acc, "seconds": seconds, "other": other, "ratio": ratio,
            "goal": goal, "met": met, "status": status, "note": note}


def fmt_stats(s, digits):
    if not s:
        return ""
    spread = f" ± {s['std']:.{digits}f}" if len(s["values"]) > 1 else ""
    return f"{s['mean']:.{digits}f}{spread} [{s['min']:.{digits}f}, {s['max']:.{digits}f}]"


def markdown(rows, env, quick):
    lines = ["# GPU acceptance run (python -m bench.gpu)", ""]
    if quick:
        lines += ["**--quick: tiny sizes on the CPU. This checks that every part runs; it measures nothing.**", ""]
    lines += [f"- {k}: {v}" for k, v in env.items()] + [""]
    lines += ["| part | what | n | test acc: mean ± std [min, max] | seconds: mean ± std [min, max] | other "
              "| ratio | goal | met | status |", "|---|---|---|---|---|---|---|---|---|---|"]
    for r in rows:
        other = f"{fmt_stats(r['other'][1], 2)} {r['other'][0]}" if r["other"] else ""
        met = "" if r["met"] is None else ("yes" if r["met"] else "**NO**")
        status = r["status"] + (f": {r['note']}" if r["note"] else "")
        ratio = "" if r["ratio"] is None else f"{r['ratio']:.2f}x"
        n = "" if r["n"] is None else r["n"]
        lines.append(f"| {r['part']} | {r['what']} | {n} | {fmt_stats(r['acc'], 4)} | {fmt_stats(r['seconds'], 2)} "
                     f"| {other} | {ratio} | {r['goal'] or ''} | {met} | {status.replace('|', '/')} |")
    return "\n".join(lines) + "\n"


def write(out, rows, env, quick):
    with open(os.path.join(out, TABLE), "w") as f:
        f.write(markdown(rows, env, quick))
    with open(os.path.join(out, RAW), "w") as f:
        f.write(strict_json({"quick": quick, "environment": env, "rows": rows}))


# ---------------------------------------------------------------- the parent: parts as processes

def environment(args):
    """The machine and versions every figure needs: GPU, CUDA, cuDNN, torch, Lightning, Python, date."""
    import torch

    env = {"date": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()),
           "command": "python -m bench.gpu " + " ".join(sys.argv[1:] if args.argv is None else args.argv)}
    if torch.cuda.is_available():
        p = torch.cuda.get_device_properties(0)
        env["gpu"] = f"{p.name}, {p.total_memory / 2**30:.0f} GiB, compute capability {p.major}.{p.minor}"
        env["gpus visible"] = torch.cuda.device_count()
    else:
        env["gpu"] = "none (CUDA not available)"
    env["torch"] = torch.__version__
    env["CUDA (torch built with)"] = torch.version.cuda or "none"
    env["cuDNN"] = torch.backends.cudnn.version() if torch.backends.cudnn.is_available() else "none"
    for name in ("pytorch_lightning", "torchmetrics", "torchvision"):
        try:
            env[name] = __import__(name).__version__
        except ImportError:
            env[name] = "not installed"
    env["python"] = platform.python_version()
    env["cpu cores"] = os.cpu_count()
    return env


def run_process(cmd, seconds, log):
    """Run cmd (its own process group) for at most `seconds`; -> (exit status or None if stopped, output)."""
    proc = subprocess.Popen(cmd, cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                            start_new_session=True, env={**os.environ, "PYTHONUNBUFFERED": "1"})
    try:
        output, _ = proc.communicate(timeout=seconds)
        code = proc.returncode
    except subprocess.TimeoutExpired:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, signal.SIGKILL)  # the part and whatever it started (DDP ranks, compile workers)
        output, _ = proc.communicate()
        code = None
    log.write(f"\n===== {' '.join(cmd[2:])} (exit {code}) =====\n{output}")
    log.flush()
    return code, output


def last_line(output):
    lines = [line for line in output.strip().splitlines() if line.strip()]
    return lines[-1].strip()[:300] if lines else "no output"


def tests_part(args, seconds, log):
    """pytest -m gpu, as a process; its junit report -> one row."""
    import xml.etree.ElementTree as ET

    xml = os.path.join(args.out, TESTS_XML)
    code, output = run_process([sys.executable, "-m", "pytest", "-m", "gpu", "tests/gpu", "-q", "-rfEs",
                                "-p", "no:cacheprovider", f"--junitxml={xml}"], seconds, log)
    what = "python -m pytest -m gpu tests/gpu"
    if code is None:
        return [row("tests", what, "timed out", note=f"stopped after {seconds:.0f} s")]
    try:
        suite = ET.parse(xml).getroot()
        suite = suite if suite.tag == "testsuite" else suite.find("testsuite")
        counts = {k: int(suite.get(k, 0)) for k in ("tests", "failures", "errors", "skipped")}
        bad = [f"{c.get('name')}" for c in suite.iter("testcase")
               if c.find("failure") is not None or c.find("error") is not None]
    except (OSError, ET.ParseError, AttributeError) as e:
        return [row("tests", what, "failed", note=f"exit {code}, no readable report ({e}): {last_line(output)}")]
    passed = counts["tests"] - counts["failures"] - counts["errors"] - counts["skipped"]
    note = f"{passed} passed, {counts['failures'] + counts['errors']} failed, {counts['skipped']} skipped"
    if bad:
        note += ": " + ", ".join(bad)
    if counts["failures"] or counts["errors"] or code not in (0, 5):
        status = "failed"
    elif counts["skipped"] == counts["tests"]:
        status = "skipped"
        note += " (no CUDA GPU)"
    else:
        status = "ok"
    return [row("tests", what, status, n=counts["tests"], met=None if status == "skipped" else not bad, note=note)]


def main(argv=None):
    p = Parser(prog="python -m bench.gpu", description=__doc__.splitlines()[0])
    p.add_argument("--data-dir", default="data", type=path_type(FOLDER),
                   help="holds cifar-10-batches-py/ or the JPEG archive (default: data)")
    p.add_argument("--out", required=True, type=path_type(OUT_FOLDER), help="folder for gpu.md, gpu.json, gpu.log, gpu-tests.xml")
    p.add_argument("--quick", action="store_true", help="tiny sizes on the CPU: checks every part runs, measures nothing")
    p.add_argument("--budget", type=float, default=BUDGET, help=f"seconds for all parts (default {BUDGET})")
    p.add_argument("--airbench", type=path_type(FILE), help="airbench wheel (default: an airbench-*.whl in --data-dir; else the installed one)")
    p.add_argument("--parts", nargs="+", choices=PARTS, default=list(PARTS), help="run only these parts")
    p.add_argument("--part", choices=PARTS, help=argparse.SUPPRESS)  # internal: run one part in this process
    p.add_argument("--part-seconds", type=float, help=argparse.SUPPRESS)
    p.add_argument("--result", help=argparse.SUPPRESS)
    p.add_argument("--jpeg", action="store_true", help=argparse.SUPPRESS)
    args = p.parse_args(argv)
    args.argv = argv
    if args.part:
        return run_part(args)
    try:
        os.makedirs(args.out, exist_ok=True)
        data_ready = prepare_data(args)
    except (OSError, ValueError) as e:
        sys.exit(f"error: {e}")
    start = time.perf_counter()
    env = environment(args)
    env["data"] = data_ready
    if args.quick:
        env["note"] = "--quick: CPU, tiny sizes; no figure here is a measurement"
    scale = args.budget / BUDGET
    rows, spare = [], 0.0
    with open(os.path.join(args.out, LOG), "w") as log:
        for part in PARTS:
            if part not in args.parts:
                continue
            left = args.budget - (time.perf_counter() - start)
            if not args.quick and left < 20:
                rows.append(row(part, part, "not run", note=f"the time budget ({args.budget:.0f} s) was used up"))
                continue
            share = QUICK_SECONDS if args.quick else min(SHARES[part] * scale + spare, left)
            part_start = time.perf_counter()
            print(f"[bench.gpu] {part}: up to {share:.0f} s", flush=True)
            if part == "tests":
                got = tests_part(args, share + (0 if args.quick else GRACE), log)
            else:
                got = part_process(args, part, share, log)
            if args.quick:  # nothing was measured, so nothing met or missed a goal
                got = [dict(r, met=None) for r in got]
            rows += got
            spare = max(0.0, share - (time.perf_counter() - part_start))
            env["seconds in all"] = round(time.perf_counter() - start, 1)
            write(args.out, rows, env, args.quick)
    print(markdown(rows, env, args.quick))
    failed = [r for r in rows if r["status"] in ("failed", "timed out")]
    return 1 if failed else 0


def part_process(args, part, seconds, log):
    """Run one part in a child process; its rows (those written before a failure too), plus a row if it failed."""
    with tempfile.NamedTemporaryFile(suffix=".json", delete=False) as f:
        result = f.name
    cmd = [sys.executable, "-m", "bench.gpu", "--part", part, "--part-seconds", str(seconds), "--result", result,
           "--data-dir", args.data_dir, "--out", args.out]
    cmd += ["--quick"] * args.quick + (["--airbench", args.airbench] if args.airbench else []) + ["--jpeg"] * args.jpeg
    code, output = run_process(cmd, seconds + GRACE, log)
    try:
        with open(result) as f:
            rows = json.load(f)
    except (OSError, ValueError):
        rows = []
    finally:
        with contextlib.suppress(OSError):
            os.unlink(result)
    if code is None:
        rows.append(row(part, part, "timed out", note=f"stopped after {seconds + GRACE:.0f} s; rows above are the runs it finished"))
    elif code != 0:
        rows.append(row(part, part, "failed", note=f"exit {code}: {last_line(output)}"))
    return rows


def prepare_data(args):
    """Find the data, unpacking the JPEG archive if that is what --data-dir holds; -> a line for the table."""
    from datamodules.files import FOLDER

    from .gpu_data import ARCHIVE, unpack_jpeg

    if os.path.isdir(os.path.join(args.data_dir, FOLDER)):
        return f"{os.path.join(args.data_dir, FOLDER)}"
    archive = os.path.join(args.data_dir, ARCHIVE)
    if not os.path.exists(archive):
        raise ValueError(f"--data-dir {args.data_dir}: neither {FOLDER}/ nor {ARCHIVE} is there")
    start = time.perf_counter()
    unpack_jpeg(archive, args.data_dir)
    args.jpeg = True
    return f"{os.path.join(args.data_dir, FOLDER)}, unpacked from the JPEG archive in {time.perf_counter() - start:.0f} s"


# ---------------------------------------------------------------- the child: one part

class Part:
    """What a part's runs share: its deadline, its rows (written to --result after each change)."""

    def __init__(self, args):
        self.args, self.quick = args, args.quick
        self.deadline = time.perf_counter() + args.part_seconds
        self.rows = []

    def left(self):
        return self.deadline - time.perf_counter()

    def save(self, rows=None):
        if rows is not None:
            self.rows = rows
        with open(self.args.result, "w") as f:
            f.write(strict_json(self.rows))

    def train(self, flags, tmp, callbacks=()):
        """One train.py run (CSV logger, a fresh folder) -> its results dict; quiet."""
        import train

        out = tempfile.mkdtemp(dir=tmp)
        argv = ["--data-dir", self.args.data_dir, "--output-dir", out, "--logger", "csv", *flags]
        if self.quick:
            argv += QUICK_FLAGS
        try:
            with contextlib.redirect_stdout(io.StringIO()):
                results = train.main(argv, callbacks=callbacks)
        except SystemExit as e:  # train.py's one-line refusal, or a run that ended early: this run failed
            raise RuntimeError(f"train.py {' '.join(flags)}: exit {e.code}") from None
        if results.get("status") != "completed":
            raise RuntimeError(f"train.py {' '.join(flags)}: {results.get('status')} ({results.get('reason')})")
        return results


def run_part(args):
    from training import console

    console.quiet()
    part = Part(args)
    part.save([])
    {"fast": lambda: fast_part(part, compile=False), "fast-compile": lambda: fast_part(part, compile=True),
     "step": lambda: step_part(part), "resnet": lambda: resnet_part(part), "mlp": lambda: mlp_part(part)}[args.part]()
    return 0


def ours_seconds(results):
    """results.json's seconds (Lightning's Timer: training and the test, data loading out), for the single runs."""
    return results["fit_seconds"] + results["test_seconds"]


def synchronize():
    import torch

    if torch.cuda.is_available():
        torch.cuda.synchronize()


def span_callback():
    """A callback timing train.py's fit and test as airbench_run times airbench94's: from the Trainer's set-up
    (the model then goes to the GPU) to its tear-down (the checkpoint written, the test's accuracy read
    back), the GPU's queue drained at both ends. .seconds: {"fit": s, "test": s}."""
    import pytorch_lightning as pl

    class Span(pl.Callback):
        def __init__(self):
            self.seconds, self.start = {}, None

        def setup(self, trainer, pl_module, stage):
            synchronize()
            self.start = time.perf_counter()

        def teardown(self, trainer, pl_module, stage):
            synchronize()
            self.seconds[getattr(stage, "value", stage)] = time.perf_counter() - self.start  # "fit", "test"
    return Span()


def fast_part(part, compile):
    import torch

    name = "fast-compile" if compile else "fast"
    flags = ["--preset", "fast"] + (["--compile"] if compile and not part.quick else [])
    what = "train.py " + " ".join(flags)
    cuda = torch.cuda.is_available() and not part.quick
    with tempfile.TemporaryDirectory() as tmp:
        airbench, why = load_airbench(part.args, tmp) if cuda else (None, "airbench94 needs a CUDA GPU")
        part.train(flags + ["--max-steps", "10"] * (not part.quick), tmp)  # warm-up: CUDA, cuDNN, compile
        matmul = torch.get_float32_matmul_precision()  # what train.py set; airbench's runs get the same
        if airbench:
            airbench, why = guarded(lambda: airbench_run(airbench, tmp, seed=0, matmul=matmul, epochs=1), airbench)
        ours, base = [], []
        note = "quick: one tiny run" + ("; --compile left out on the CPU" if compile else "") if part.quick else ""
        while True:
            t, seed = time.perf_counter(), len(ours)
            span = span_callback()
            r = part.train(flags + ["--seed", str(seed)], tmp, callbacks=[span])
            ours.append({"fit": span.seconds["fit"], "test": span.seconds["test"], "acc": r["test_acc"], "seed": seed})
            if airbench:  # a failing baseline stops the baseline only; our runs go on
                result, why = guarded(lambda: airbench_run(airbench, tmp, seed=seed, matmul=matmul), None)
                if result is None:
                    airbench = None
                else:
                    base.append(result)
            pair_seconds = time.perf_counter() - t
            if not part.quick and len(ours) < MIN_RUNS:
                note = f"{len(ours)} of the {MIN_RUNS} runs asked for so far"
            elif not part.quick:
                note = ""
            part.save(fast_rows(name, what, ours, base, why, note, part.args.jpeg, matmul))
            if part.quick or part.left() < pair_seconds:  # the next pair would not end in time
                break


def fast_rows(name, what, ours, base, why, note, jpeg, matmul):
    """Rows of a fast part. ours, base: one dict a run: fit and test seconds, test accuracy, seed."""
    acc_goal = ACC_GOAL_JPEG if jpeg else ACC_GOAL
    seeds = f"seeds {ours[0]['seed']}-{ours[-1]['seed']}"
    o_a = stats([r["acc"] for r in ours])
    rows = [row(name, what + " (accuracy)", n=len(ours), acc=o_a, goal=f">= {acc_goal} test acc"
                + (" (JPEG copy)" if jpeg else ""), met=o_a["mean"] >= acc_goal,
                note=(note + "; " if note else "") + f"{seeds}; float32 matmul precision {matmul} on both sides")]
    total = lambda runs: stats([r["fit"] + r["test"] for r in runs])  # noqa: E731
    if base:
        b_a = stats([r["acc"] for r in base])
        ratio = total(ours)["mean"] / total(base)["mean"]
        rows.append(row(name, what + " (time, vs airbench94)", n=len(ours), seconds=total(ours), ratio=ratio,
                        goal=f"<= {TIME_GOALS[0]:g}x (first step), <= {TIME_GOALS[1]:g}x",
                        met=ratio <= TIME_GOALS[0], note=f"{ratio:.2f}x airbench94's mean seconds (fit + test)"))
        for stage in ("fit", "test"):
            ours_s, base_s = stats([r[stage] for r in ours]), stats([r[stage] for r in base])
            rows.append(row(name, f"{what}: {stage} seconds, vs airbench94's", n=len(ours), seconds=ours_s,
                            ratio=ours_s["mean"] / base_s["mean"],
                            note=f"airbench94: {fmt_stats(base_s, 2)}"))
        rows.append(row(name, "airbench94 (airbench 0.1.8, same data, alternating)", "failed" if why else "ok",
                        n=len(base), acc=b_a, seconds=total(base), note=why or f"torch.manual_seed(i), {seeds}"))
    else:
        rows.append(row(name, what + " (time)", n=len(ours), seconds=total(ours)))
        for stage in ("fit", "test"):
            rows.append(row(name, f"{what}: {stage} seconds", n=len(ours), seconds=stats([r[stage] for r in ours])))
        rows.append(row(name, "airbench94", "skipped" if why.startswith("airbench94 needs") else "failed", note=why))
    return rows


def guarded(fn, ok):
    """(fn()'s result, or `ok` when given, "") if it runs; (None, why) if it raises."""
    try:
        result = fn()
    except Exception as e:
        return None, f"airbench94 failed: {type(e).__name__}: {str(e).splitlines()[0] if str(e) else ''}"
    return (result if ok is None else ok), ""


def load_airbench(args, tmp):
    """(the airbench module, "") with its data written into tmp, or (None, why not)."""
    wheel = args.airbench or next(iter(sorted(glob.glob(os.path.join(args.data_dir, "airbench-*.whl")))), None)
    if wheel:
        sys.path.insert(0, os.path.abspath(wheel))  # a pure-Python wheel imports as a zip, no install
    try:
        import airbench
    except ImportError as e:
        return None, f"airbench cannot be imported ({e}); see docs/gpu.md"
    write_airbench_tensors(args.data_dir, tmp)
    return airbench, ""


def write_airbench_tensors(data_dir, root):
    """root/cifar10/{train,test}.pt in airbench's format, from our data: uint8 (N, 32, 32, 3) images, labels.
    So airbench reads the same images and downloads nothing."""
    import torch

    from datamodules import files

    folder = files.locate(data_dir, download=False)
    os.makedirs(os.path.join(root, "cifar10"), exist_ok=True)
    for split, name in (("train", "train.pt"), ("test", "test.pt")):
        x, y = files.read_split(folder, split)
        torch.save({"images": torch.from_numpy(x).permute(0, 2, 3, 1).contiguous(), "labels": torch.from_numpy(y),
                    "classes": [str(i) for i in range(10)]}, os.path.join(root, "cifar10", name))


def airbench_run(airbench, root, seed, matmul, epochs=None):
    """One airbench94 run -> {fit, test seconds, TTA test accuracy, seed}: torch.manual_seed(seed), then
    train94 (it builds the net, fits the whitening, trains) and evaluate(tta_level=2) to a Python float,
    the GPU's queue drained at each end. train94 also loads its 30 MB test tensor, which cannot be
    taken out: in its disfavour."""
    import torch

    old = os.getcwd()
    os.chdir(root)  # airbench opens its data at the relative path "cifar10"
    try:
        torch.manual_seed(seed)
        torch.set_float32_matmul_precision(matmul)
        loader = airbench.CifarLoader("cifar10", train=True, batch_size=1024, aug=dict(flip=True, translate=2),
                                      altflip=True)
        test = airbench.CifarLoader("cifar10", train=False, batch_size=2000)
        synchronize()
        start = time.perf_counter()
        model = airbench.train94(loader, verbose=False, **({} if epochs is None else dict(epochs=epochs)))
        synchronize()
        fit = time.perf_counter() - start
        acc = float(airbench.evaluate(model, test, tta_level=2))
        synchronize()
        return {"fit": fit, "test": time.perf_counter() - start - fit, "acc": acc, "seed": seed}
    finally:
        os.chdir(old)


def step_part(part):
    import torch

    from . import fast_step

    cuda = torch.cuda.is_available() and not part.quick
    got = fast_step.rows(quick=part.quick, data_dir=part.args.data_dir, device="cuda" if cuda else "cpu")
    rows = []
    for r in got:
        ours, base = r["ours"], r["baseline"]
        rows.append(row("step", r["what"], n=(fast_step.GPU if cuda else fast_step.QUICK)["repeats"],
                        other=(r["unit"], {"mean": ours["median"], "std": 0.0, "min": ours["min"], "max": ours["max"],
                                           "values": [ours["median"]]}),
                        ratio=r["ratio"], goal=f">= {STEP_GOAL:g}x the plain loop", met=r["met"],
                        note=f"ours: median [min, max]; the plain loop: {base['median']:.2f} "
                             f"[{base['min']:.2f}, {base['max']:.2f}] {r['unit']}"))
    part.save(rows)


def single_runs(part, name, runs, step_goal=()):
    """One train.py run each, in order, while time is left; -> rows, one per run (not run: the budget), with
    ms a step (fit seconds / steps); the runs labelled in step_goal are held to MLP_STEP_GOAL_MS."""
    rows, last = [], 0.0
    with tempfile.TemporaryDirectory() as tmp:
        for label, flags in runs:
            if rows and part.left() < last:  # the next run would likely not end in time
                rows.append(row(name, label, "not run", note="no time left in this part"))
                part.save(rows)
                continue
            t = time.perf_counter()
            try:
                r = part.train(flags, tmp)
            except Exception as e:  # one failing run must not hide the others
                rows.append(row(name, label, "failed", note=f"{type(e).__name__}: {str(e).splitlines()[0] if str(e) else ''}"))
            else:
                ms = 1000 * r["fit_seconds"] / r["steps"]
                goal = label in step_goal
                rows.append(row(name, f"{label}: {r['steps']} steps", n=1, acc=stats([r["test_acc"]]),
                                seconds=stats([ours_seconds(r)]), other=("ms/step", stats([ms])),
                                goal=f"<= {MLP_STEP_GOAL_MS:g} ms/step" if goal else None,
                                met=ms <= MLP_STEP_GOAL_MS if goal else None,
                                note=f"wall {r['wall_seconds']:.1f} s with data loading" + ("; quick" * part.quick)))
            last = time.perf_counter() - t
            part.save(rows)


def resnet_part(part):
    single_runs(part, "resnet", [("course ResNet (--model resnet)", ["--model", "resnet"])])


def mlp_part(part):
    single_runs(part, "mlp", MLP_RUNS, step_goal=[label for label, _ in MLP_RUNS[:2]])  # the course MLP, K = 1 and 10


if __name__ == "__main__":
    sys.exit(main())
