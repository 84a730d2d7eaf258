"""Reading a checkpoint file: tensors and plain values only, never code; and writing one whole.

Every .ckpt a command opens is read here (train.py continuing a run, evaluate/predict/export through
inference.load_run), and Lightning's own restore (trainer.fit/test with ckpt_path) gets the same
`weights_only=True` (LIGHTNING), after the file has passed read(). torch.load's weights-only unpickler
builds tensors, containers, numbers and strings and refuses any other global before calling it, so a
tampered file (a pickle whose __reduce__ runs code) is refused without running anything. An explicit
weights_only=True also holds when TORCH_FORCE_NO_WEIGHTS_ONLY_LOAD is set (that only changes the default).

The project's checkpoints hold nothing else: Lightning's loop, optimizer and callback states, and our
own extras (training.resume.Resumable's RNG states, the NumPy MLP's arrays as tensors) are all tensors
and plain values, so no extra type is allowed (tests/runfolder/test_checkpoint.py; test_loading reads
every model's). torch is imported when a file is read: importing runfolder stays fast.
"""
import contextlib
import os
import pickle
import shutil
import zipfile

from .errors import BadInput
from .folder import PARTIAL

LIGHTNING = dict(weights_only=True)  # for trainer.fit(..., ckpt_path=...) and trainer.test(...)


def read(path, mmap=False):
    """The checkpoint at path as a dict on the CPU. BadInput, one line naming the file, when it is
    missing, not a torch.save archive, damaged, holds anything but tensors and plain values, or lacks
    the keys a Lightning checkpoint has. mmap: map the tensors instead of reading them (a cheap check)."""
    import torch

    if not os.path.isfile(path):
        raise BadInput(f"{path}: no such file")
    if not zipfile.is_zipfile(path):  # torch.save writes a zip archive; an older or foreign format is refused
        raise BadInput(f"{path}: not a checkpoint (not the zip archive torch.save writes)")
    try:
        ckpt = torch.load(path, map_location="cpu", weights_only=True, mmap=mmap)
    except pickle.UnpicklingError as e:
        raise BadInput(f"{path}: refused: it holds more than tensors and plain values ({_why(e)}); "
                       "nothing in it was run") from None
    except Exception as e:  # a truncated or damaged archive: torch raises RuntimeError, zipfile BadZipFile, ...
        raise BadInput(f"{path}: damaged checkpoint ({type(e).__name__}: {_why(e)})") from None
    if not isinstance(ckpt, dict) or not {"state_dict", "global_step"} <= set(ckpt):
        raise BadInput(f"{path}: not a Lightning checkpoint (no state_dict and global_step)")
    return ckpt


def steps_in(path):
    """The optimizer steps a checkpoint was saved after (its global_step), read safely."""
    return int(read(path, mmap=True)["global_step"])


def write(checkpoint, path):
    """Save a checkpoint dict so that `path` is only ever whole (see _replace).

    Every .ckpt a run writes comes here (training.trainer.WholeCheckpoints), or is a second name for one
    (second_name). Lightning's own save serialises into memory, copies that, and writes it to the system's
    temporary folder before moving it into place; on a cluster that folder is often on another file
    system, so the move is a second copy, and no longer atomic."""
    import torch

    os.makedirs(os.path.dirname(path) or ".", exist_ok=True)
    _replace(path, lambda tmp: torch.save(checkpoint, tmp))


def second_name(path, name):
    """Give the checkpoint at path a second name `name`: a hard link, or a copy where the file system has none."""
    def link_or_copy(tmp):
        try:
            os.link(path, tmp)
        except OSError:
            shutil.copyfile(path, tmp)
    _replace(name, link_or_copy)


def _replace(path, make):
    """make(tmp) writes a file beside path, which is then renamed over it: path is the old file or the new one,
    never part of either, and a hard link to the old file keeps the old file. If make fails (a full disk,
    Ctrl-C) the partial file goes and the old one stays. The temporary file is opened as any file is (the
    umask's permissions, not mkstemp's 0600)."""
    tmp = os.path.join(os.path.dirname(path), PARTIAL.format(name=os.path.basename(path), pid=os.getpid()))
    with contextlib.suppress(FileNotFoundError):
        os.remove(tmp)  # left by a killed process that had this pid (os.link does not overwrite)
    try:
        make(tmp)
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(OSError):
            os.remove(tmp)
        raise


def _why(e):
    """The informative sentence of torch's error: the refused global, else the first line."""
    text = str(e)
    if "WeightsUnpickler error:" in text:
        text = text.split("WeightsUnpickler error:", 1)[1]
    return (text.strip().splitlines() or [""])[0].split(". ")[0]
