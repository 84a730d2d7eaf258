"""bench.gpu: `--quick` runs every part end to end where W&B is not installed; a failing part is a row
and the run goes on; the JPEG archive route gives the data every command reads."""
import io
import json
import os
import subprocess
import sys
import tarfile

import numpy as np
import pytest

from bench import gpu, gpu_data
from datamodules import files

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


def test_quick_runs_every_part_without_wandb(cifar_dir, tmp_path):
    """The CI run of the GPU check: all parts on the CPU at tiny sizes, with a `wandb` that cannot be
    imported first on the path, as on a GPU machine without it."""
    fake = tmp_path / "no_wandb" / "wandb"
    fake.mkdir(parents=True)
    (fake / "__init__.py").write_text('raise ImportError("wandb is not installed here (tests/bench/test_gpu.py)")\n')
    out = tmp_path / "out"
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(fake.parent), ROOT]), "OMP_NUM_THREADS": "1"}
    done = subprocess.run([sys.executable, "-m", "bench.gpu", "--quick", "--data-dir", cifar_dir, "--out", str(out)],
                          cwd=ROOT, env=env, capture_output=True, text=True, timeout=900)
    assert done.returncode == 0, done.stdout[-4000:] + done.stderr[-2000:]
    assert sorted(os.listdir(out)) == sorted([gpu.TABLE, gpu.RAW, gpu.LOG, gpu.TESTS_XML])
    table = (out / gpu.TABLE).read_text()
    assert "it measures nothing" in table and "| part | what | n |" in table
    raw = json.loads((out / gpu.RAW).read_text())
    assert raw["quick"] is True and "torch" in raw["environment"]
    rows = raw["rows"]
    assert {r["part"] for r in rows} == set(gpu.PARTS)
    assert all(r["status"] in ("ok", "skipped") for r in rows), [r for r in rows if r["status"] not in ("ok", "skipped")]
    assert all(r["met"] is None for r in rows)  # --quick claims nothing
    ran = [r for r in rows if r["status"] == "ok"]
    assert all(r["acc"] or r["seconds"] or r["other"] for r in ran)
    assert len([r for r in rows if r["part"] == "mlp"]) == len(gpu.MLP_RUNS)
    fast = {r["what"]: r for r in rows if r["part"] == "fast"}  # fit and test seconds apart, from the span callback
    assert all(fast[f"train.py --preset fast: {stage} seconds"]["seconds"]["mean"] > 0 for stage in ("fit", "test"))
    assert "wandb is not installed here" not in (out / gpu.LOG).read_text()


def test_a_failing_or_overrunning_part_is_a_row_and_the_rest_runs(cifar_dir, tmp_path, monkeypatch, capsys):
    calls = []

    def fake_run(cmd, seconds, log):
        part = cmd[cmd.index("--part") + 1] if "--part" in cmd else "tests"
        calls.append(part)
        return {"fast": (None, ""), "step": (1, "Traceback ...\nRuntimeError: CUDA error: boom\n")}.get(part, (0, ""))

    monkeypatch.setattr(gpu, "run_process", fake_run)
    monkeypatch.setattr(gpu, "tests_part", lambda args, seconds, log: [gpu.row("tests", "pytest", n=3)])
    code = gpu.main(["--data-dir", cifar_dir, "--out", str(tmp_path / "out"), "--parts", "fast", "step", "resnet"])
    assert code == 1 and calls == ["fast", "step", "resnet"]  # it went on after both
    rows = json.loads((tmp_path / "out" / gpu.RAW).read_text())["rows"]
    assert [(r["part"], r["status"]) for r in rows] == [("fast", "timed out"), ("step", "failed")]
    assert "RuntimeError: CUDA error: boom" in rows[1]["note"]
    assert "| step | step |" in capsys.readouterr().out


@pytest.fixture
def jpeg_archive(tmp_path):
    """A tiny archive laid out as the public JPEG release: train/<class>/*.jpg, test/<class>/*.jpg."""
    from PIL import Image

    rng = np.random.default_rng(0)
    path = tmp_path / gpu_data.ARCHIVE
    with tarfile.open(path, "w:gz") as tar:
        for split, per_class in (("train", 2), ("test", 1)):
            for cls in gpu_data.CLASSES:
                for i in range(per_class):
                    buf = io.BytesIO()
                    Image.fromarray(rng.integers(0, 256, (32, 32, 3), dtype=np.uint8)).save(buf, "JPEG")
                    info = tarfile.TarInfo(f"{split}/{cls}/{i:04d}.jpg")
                    info.size = buf.tell()
                    buf.seek(0)
                    tar.addfile(info, buf)
    return path


def test_jpeg_archive_unpacks_into_the_official_layout(jpeg_archive, tmp_path):
    from PIL import Image

    folder = gpu_data.unpack_jpeg(jpeg_archive, tmp_path / "data")
    assert folder == files.locate(str(tmp_path / "data"), download=False)
    x, y = files.read_split(folder, "train")
    assert x.shape == (20, 3, 32, 32) and sorted(y.tolist()) == sorted(list(range(10)) * 2)
    tx, ty = files.read_split(folder, "test")
    assert tx.shape == (10, 3, 32, 32) and sorted(ty.tolist()) == list(range(10))
    with tarfile.open(jpeg_archive) as tar:  # each image is the JPEG's own decoding, under its own label
        member = tar.getmember("test/ship/0000.jpg")
        pixels = np.asarray(Image.open(io.BytesIO(tar.extractfile(member).read())).convert("RGB")).transpose(2, 0, 1)
    assert any(np.array_equal(pixels, tx[i]) and ty[i] == gpu_data.CLASSES.index("ship") for i in range(10))


def test_bench_gpu_unpacks_an_archive_given_as_data_dir(jpeg_archive, tmp_path):
    class Args:
        data_dir, jpeg = str(jpeg_archive.parent), False
    line = gpu.prepare_data(Args)
    assert Args.jpeg and "unpacked from the JPEG archive" in line
    assert os.path.isdir(os.path.join(Args.data_dir, files.FOLDER))


def test_no_data_is_one_line(tmp_path, capsys):
    with pytest.raises(SystemExit) as e:
        gpu.main(["--data-dir", str(tmp_path), "--out", str(tmp_path / "out")])
    assert str(e.value.code).startswith("error:") and "\n" not in str(e.value.code)


def test_airbench_runs_on_its_own_seed_at_our_matmul_precision(tmp_path, monkeypatch):
    """Each airbench94 run starts from torch.manual_seed(i), not from the RNG state our run left, at the
    float32 matmul precision train.py ran at; its fit and test seconds are kept apart."""
    import torch

    seen = []

    class FakeAirbench:
        CifarLoader = staticmethod(lambda *a, **k: None)

        @staticmethod
        def train94(loader, verbose):
            seen.append((torch.initial_seed(), torch.get_float32_matmul_precision(), torch.rand(1).item()))
            return "net"

        evaluate = staticmethod(lambda model, loader, tta_level: torch.tensor(0.5))

    monkeypatch.setattr(torch, "set_float32_matmul_precision", lambda p: seen.append(("matmul", p)))
    monkeypatch.setattr(torch, "get_float32_matmul_precision", lambda: [s for s in seen if s[0] == "matmul"][-1][1])
    runs = [gpu.airbench_run(FakeAirbench, str(tmp_path), seed=i, matmul="high") for i in (0, 1, 0)]
    draws = [s for s in seen if s[0] != "matmul"]
    assert [d[0] for d in draws] == [0, 1, 0] and all(d[1] == "high" for d in draws)
    assert draws[0][2] == draws[2][2] != draws[1][2]  # the same seed draws the same, another seed not
    assert [set(r) for r in runs] == [{"fit", "test", "acc", "seed"}] * 3 and runs[1]["acc"] == 0.5


def test_fast_rows_compare_the_same_span_run_by_run():
    ours = [dict(fit=3.0, test=0.4, acc=0.93, seed=i) for i in range(10)]
    base = [dict(fit=2.0, test=0.2, acc=0.94, seed=i) for i in range(10)]
    rows = {r["what"]: r for r in gpu.fast_rows("fast", "train.py --preset fast", ours, base, "", "", True, "high")}
    acc = rows["train.py --preset fast (accuracy)"]
    assert "seeds 0-9" in acc["note"] and "matmul precision high on both sides" in acc["note"]
    assert rows["train.py --preset fast (time, vs airbench94)"]["ratio"] == pytest.approx(3.4 / 2.2)
    assert rows["train.py --preset fast: fit seconds, vs airbench94's"]["ratio"] == pytest.approx(1.5)
    assert rows["train.py --preset fast: test seconds, vs airbench94's"]["ratio"] == pytest.approx(2.0)
    assert rows["airbench94 (airbench 0.1.8, same data, alternating)"]["seconds"]["mean"] == pytest.approx(2.2)
