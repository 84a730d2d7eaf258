"""Finding, verifying and safely unpickling the batch files."""
import os
import pickle
import shutil

import numpy as np
import pytest

from datamodules import files
from runfolder import BadInput
from datamodules.files import read_batch
from tests.conftest import make_cifar, write_batch


@pytest.fixture
def data(tmp_path):
    return make_cifar(str(tmp_path))


def batch_path(data, name="data_batch_1"):
    return os.path.join(data, "cifar-10-batches-py", name)


def test_reads_a_batch_in_the_original_format(data):
    x, y = read_batch(batch_path(data))
    assert x.shape == (60, 3072) and x.dtype == np.uint8
    assert y.dtype == np.int64 and 0 <= y.min() and y.max() <= 9


def test_read_split_shapes(data):
    x, y = files.read_split(batch_path(data, ""), "train")
    assert x.shape == (300, 3, 32, 32) and y.shape == (300,)


class Payload:
    """Unpickling this would create a file: the proof that code ran."""

    def __init__(self, path):
        self.path = path

    def __reduce__(self):
        return (open, (self.path, "w"))


def test_malicious_pickle_is_refused_without_running_its_payload(data, tmp_path):
    marker = tmp_path / "pwned"
    with open(batch_path(data), "wb") as f:
        pickle.dump({b"data": Payload(str(marker)), b"labels": [0]}, f, protocol=2)
    # the planted file really would run code under a plain pickle.load
    with open(batch_path(data), "rb") as f:
        pickle.load(f)[b"data"].close()
    assert marker.exists()
    marker.unlink()
    with pytest.raises(BadInput, match=r"unsafe or corrupt .*data_batch_1: refused to load global .*open"):
        read_batch(batch_path(data))
    assert not marker.exists()


def test_object_arrays_are_refused(data):
    with open(batch_path(data), "wb") as f:
        pickle.dump({b"data": np.array([object()] * 3, dtype=object), b"labels": [0]}, f, protocol=2)
    with pytest.raises(BadInput, match="refused"):
        read_batch(batch_path(data))


def test_truncated_file_names_the_file(data):
    path = batch_path(data)
    blob = open(path, "rb").read()
    open(path, "wb").write(blob[: len(blob) // 2])
    with pytest.raises(BadInput, match="corrupt .*data_batch_1"):
        read_batch(path)


def test_missing_file_names_the_file(data):
    os.remove(batch_path(data, "data_batch_3"))
    with pytest.raises(BadInput, match="missing .*data_batch_3"):
        files.read_split(batch_path(data, ""), "train")


@pytest.mark.parametrize("data_, labels, message", [
    (np.zeros((2, 100), np.uint8), [0, 1], r"uint8 of shape \(N, 3072\)"),
    (np.zeros((2, 3072), np.uint8), [0, 10], "labels must lie in 0..9"),
    (np.zeros((2, 3072), np.uint8), [0], "list of 2 ints"),
])
def test_malformed_content_is_named(data, data_, labels, message):
    write_batch(batch_path(data), data_, labels)
    with pytest.raises(BadInput, match=message):
        read_batch(batch_path(data))


def test_no_data_and_no_network_says_where_and_what(tmp_path, monkeypatch):
    def offline(*args, **kwargs):
        raise OSError("Network is unreachable")

    monkeypatch.setattr("torchvision.datasets.utils.download_url", offline)
    with pytest.raises(BadInput) as e:
        files.locate(str(tmp_path / "empty"))
    message = str(e.value)
    assert str(tmp_path / "empty") in message and "cifar-10-batches-py" in message and "\n" not in message


def test_archive_with_wrong_md5_is_refused(tmp_path):
    (tmp_path / files.ARCHIVE).write_bytes(b"not the archive")
    with pytest.raises(BadInput, match="md5 mismatch"):
        files.locate(str(tmp_path))


def test_archive_is_extracted_when_md5_matches(data, tmp_path, monkeypatch):
    src = str(tmp_path / "src")
    shutil.make_archive(os.path.join(src, "cifar-10-python"), "gztar", data, "cifar-10-batches-py")
    dest = tmp_path / "dest"
    dest.mkdir()
    shutil.move(os.path.join(src, files.ARCHIVE), dest / files.ARCHIVE)
    monkeypatch.setattr(files, "ARCHIVE_MD5", __import__("torchvision").datasets.utils.calculate_md5(
        str(dest / files.ARCHIVE)))
    folder = files.locate(str(dest), download=False)
    assert sorted(os.listdir(folder))[:2] == ["batches.meta", "data_batch_1"]


def test_python3_pickles_of_the_same_content_load(data):
    x = np.arange(2 * 3072, dtype=np.uint8).reshape(2, 3072)
    for protocol in (2, 4):
        with open(batch_path(data), "wb") as f:
            pickle.dump({b"data": x, b"labels": [3, 4]}, f, protocol=protocol)
        got_x, got_y = read_batch(batch_path(data))
        assert (got_x == x).all() and got_y.tolist() == [3, 4]
