"""One run per folder at a time: an exclusive lock on the run folder's run.lock, held while the run writes.

The lock is flock(2) on an open file, so the kernel drops it when the process ends however it ends
(a crash, SIGKILL, a node reboot): a requeued job is never locked out by its dead predecessor. The
file itself stays, holding the last holder's host, pid and SLURM job for the error message.

Shared filesystems: NFS (v4, or v3 with lockd) turns flock into a POSIX lock the server keeps, so it
holds across nodes; GPFS (Snellius' home and project spaces) supports it; Lustre only when mounted
with `-o flock`, and otherwise refuses, in which case the run goes on unlocked with a warning.
"""
import errno
import fcntl
import os
import socket
import time
import warnings

from .errors import BadInput

REQUEUE_WAIT = 60  # seconds a requeued SLURM job waits for its own predecessor to let go


def holder_text():
    job = os.environ.get("SLURM_JOB_ID")
    return f"host {socket.gethostname()}, pid {os.getpid()}" + (f", SLURM job {job}" if job else "")


class RunLock:
    """Take the folder's lock or raise BadInput naming who holds it. Creates the folder."""

    def __init__(self, folder):
        os.makedirs(folder.path, exist_ok=True)
        self.path = folder.lock_path
        self.fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o644)
        deadline = time.monotonic() + REQUEUE_WAIT
        while not self._try():
            held_by = self._holder()
            job = os.environ.get("SLURM_JOB_ID")
            if job and f"SLURM job {job}" in held_by and time.monotonic() < deadline:
                time.sleep(1)  # this job, requeued, while its previous start is still shutting down
                continue
            os.close(self.fd)
            raise BadInput(f"{folder.path} is in use by another run ({held_by}); wait for it or "
                                 "choose another --output-dir")
        os.ftruncate(self.fd, 0)
        os.write(self.fd, (holder_text() + "\n").encode())

    def _try(self):
        try:
            fcntl.flock(self.fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            return True
        except BlockingIOError:
            return False
        except OSError as e:  # a filesystem without locks (Lustre without -o flock)
            if e.errno not in (errno.ENOLCK, errno.ENOSYS, errno.EOPNOTSUPP):
                raise
            warnings.warn(f"cannot lock {self.path} on this filesystem ({e.strerror}); "
                          "nothing stops a second run from writing into this folder")
            return True

    def _holder(self):
        with open(self.path) as f:
            return f.read().strip() or "unknown"

    def release(self):
        if self.fd is not None:
            os.close(self.fd)  # closing drops the flock
            self.fd = None
