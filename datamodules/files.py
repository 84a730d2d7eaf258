"""Find, download, verify and safely read the CIFAR-10 python batches.

Everything here raises `BadInput` with a one-line message that names the file or folder,
so the CLI can print it without a traceback.
"""
import os
import pickle
import tarfile

import numpy as np

from runfolder import BadInput

try:  # numpy >= 2 moved the ndarray pickle helper
    from numpy._core.multiarray import _reconstruct
except ImportError:  # pragma: no cover
    from numpy.core.multiarray import _reconstruct

URL = "https://www.cs.toronto.edu/~kriz/cifar-10-python.tar.gz"
ARCHIVE = "cifar-10-python.tar.gz"
ARCHIVE_MD5 = "c58f30108f718f92721af3b95e74349a"  # the official archive's checksum
FOLDER = "cifar-10-batches-py"
TRAIN_FILES = [f"data_batch_{i}" for i in range(1, 6)]
TEST_FILE = "test_batch"
PIXELS = 3 * 32 * 32
# The classes in label order, as batches.meta's label_names has them (here, so a command can name them
# before it imports torch)
CLASSES = ("airplane", "automobile", "bird", "cat", "deer", "dog", "frog", "horse", "ship", "truck")
FULL_SIZES = {"train": 50_000, "test": 10_000}


def locate(data_dir, download=True):
    """Return the `cifar-10-batches-py` folder under data_dir, extracting or downloading it if needed.

    Order: an existing folder (checked for structure later, not md5, since legitimate copies differ
    byte-wise), then a local archive (md5-checked), then the official download (md5-checked).
    """
    data_dir = os.path.abspath(data_dir)
    folder = os.path.join(data_dir, FOLDER)
    if os.path.isdir(folder):
        return folder
    archive = os.path.join(data_dir, ARCHIVE)
    if not os.path.exists(archive):
        if not download:
            raise BadInput(f"no CIFAR-10 in {data_dir}: put {FOLDER}/ or {ARCHIVE} there")
        _download(data_dir)
    _extract(archive, data_dir)
    if not os.path.isdir(folder):
        raise BadInput(f"{archive} did not contain {FOLDER}/")
    return folder


def _download(data_dir):
    from torchvision.datasets.utils import download_url

    try:
        os.makedirs(data_dir, exist_ok=True)
        download_url(URL, data_dir, filename=ARCHIVE, md5=ARCHIVE_MD5)
    except Exception as e:  # URLError, timeouts, md5 failures: all mean "no usable archive"
        reason = str(e).splitlines()[0] if str(e) else type(e).__name__
        raise BadInput(
            f"no CIFAR-10 in {data_dir} and the download failed ({reason}): put {FOLDER}/ or {ARCHIVE} "
            f"there (e.g. from {URL}), or run where the internet is reachable") from None


def _extract(archive, data_dir):
    from torchvision.datasets.utils import check_md5

    if not check_md5(archive, ARCHIVE_MD5):
        raise BadInput(f"{archive} is not the official archive (md5 mismatch): delete it and rerun, "
                               f"or unpack a copy you trust as {FOLDER}/")
    try:
        with tarfile.open(archive) as tar:
            tar.extractall(data_dir, filter="data")
    except (tarfile.TarError, OSError) as e:
        raise BadInput(f"cannot extract {archive}: {e}") from None


class SafeUnpickler(pickle.Unpickler):
    """Admits only what a CIFAR-10 batch holds: dicts, lists, bytes/str, ints and uint8 numpy arrays.

    A pickle can call any importable function while loading; this one resolves just the numpy names
    an ndarray needs (with the dtype pinned to uint8) and a latin1 bytes decoder, and refuses every
    other global, so a planted file cannot run code.
    """

    ALLOWED = {("numpy.core.multiarray", "_reconstruct"), ("numpy._core.multiarray", "_reconstruct"),
               ("numpy", "ndarray"), ("numpy", "dtype"), ("_codecs", "encode")}

    def find_class(self, module, name):
        if (module, name) not in self.ALLOWED:
            raise pickle.UnpicklingError(f"refused to load global {module}.{name}")
        if name == "encode":  # Python 3's protocol 2 writes bytes as _codecs.encode(text, "latin1")
            return _latin1_encode
        if name == "dtype":
            return _uint8_dtype
        if name == "ndarray":
            return np.ndarray
        return _reconstruct


def _latin1_encode(text, encoding="utf-8"):
    if encoding != "latin1" or not isinstance(text, str):
        raise pickle.UnpicklingError(f"refused _codecs.encode with {encoding!r}")
    return text.encode("latin1")


def _uint8_dtype(spec, *args):
    if spec not in ("u1", "|u1", "uint8"):  # an object dtype would let nested pickles smuggle objects
        raise pickle.UnpicklingError(f"refused numpy dtype {spec!r}; CIFAR-10 holds uint8 only")
    return np.dtype(spec, *args)


def read_batch(path):
    """Read one batch file -> (images uint8 (N, 3072), labels int64 (N,)), checking its structure."""
    if not os.path.isfile(path):
        raise BadInput(f"missing {path}: the folder must hold {', '.join(TRAIN_FILES)} and {TEST_FILE}")
    try:
        with open(path, "rb") as f:
            batch = SafeUnpickler(f, encoding="bytes").load()
    except pickle.UnpicklingError as e:
        raise BadInput(f"unsafe or corrupt {path}: {e}") from None
    except Exception as e:  # EOFError (truncated), ValueError, ... : every way a bad file fails to parse
        raise BadInput(f"corrupt {path}: {type(e).__name__}: {e}") from None
    if not isinstance(batch, dict):
        raise BadInput(f"malformed {path}: expected a dict, found {type(batch).__name__}")
    batch = {k.decode() if isinstance(k, bytes) else k: v for k, v in batch.items()}
    data, labels = batch.get("data"), batch.get("labels")
    if not isinstance(data, np.ndarray) or data.dtype != np.uint8 or data.ndim != 2 or data.shape[1] != PIXELS:
        got = f"{data.dtype} {data.shape}" if isinstance(data, np.ndarray) else type(data).__name__
        raise BadInput(f"malformed {path}: 'data' must be uint8 of shape (N, {PIXELS}), found {got}")
    if not isinstance(labels, list) or len(labels) != len(data) or not all(isinstance(v, int) for v in labels):
        raise BadInput(f"malformed {path}: 'labels' must be a list of {len(data)} ints")
    labels = np.asarray(labels, dtype=np.int64)
    if len(labels) and (labels.min() < 0 or labels.max() > 9):
        raise BadInput(f"malformed {path}: labels must lie in 0..9, found {labels.min()}..{labels.max()}")
    return data, labels


def read_split(folder, split):
    """All images of a split as (uint8 (N, 3, 32, 32), int64 (N,)) numpy arrays."""
    files = TRAIN_FILES if split == "train" else [TEST_FILE]
    parts = [read_batch(os.path.join(folder, f)) for f in files]
    x = np.concatenate([p[0] for p in parts]).reshape(-1, 3, 32, 32)
    y = np.concatenate([p[1] for p in parts])
    return x, y
