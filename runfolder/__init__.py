"""The ground floor: the run-folder format, and the one error for bad input. Stdlib and yaml only, no torch.

    folder.py  a run folder's file names (said only there), reading and writing them, finding checkpoints
    lock.py    one run per folder at a time (flock on run.lock)
    checkpoint.py  reading a .ckpt (tensors and plain values only, never code), writing one whole (torch imported then)
    errors.py  BadInput, and one_line_errors for a command's main (and Ctrl-C: INTERRUPTED, 130)

Every other package may stand on this one; it stands on none of them.
"""
from .errors import INTERRUPTED, BadInput, one_line_errors
from .folder import RunFolder, read_yaml, strict_json

__all__ = ["INTERRUPTED", "BadInput", "RunFolder", "one_line_errors", "read_yaml", "strict_json"]
