"""Checks of what a user hands a command, before it does any work: each problem is one line, and a
command reports all of its problems at once (one_line), as runfolder.BadInput. Stdlib and runfolder
only (no torch), so a command can check its arguments before importing anything heavy.

    require(("RUN_DIR", args.run_dir, RUN_FOLDER), ("--out", args.out, NEW_FILE, args.overwrite))

Tests run as root, whom permission bits do not stop: a location that cannot be written is one under a
file (or on a read-only file system), which these checks find whoever runs them.
"""
import argparse
import difflib
import os
import sys

from runfolder import BadInput, RunFolder

FILE = "file"              # an existing file to read
FOLDER = "folder"          # an existing folder to read
FILE_OR_FOLDER = "file or folder"
RUN_FOLDER = "run folder"  # a folder train.py wrote (its config.yaml is there)
OUT_FOLDER = "output folder"  # a folder to write into; made (with its parents) when missing
NEW_FILE = "output file"      # a file to write; made when missing; an existing one only with --overwrite
OUT_FILE = "file to write"    # a file to write or add to (a journal); made when missing


INSTALLED_PREFIX = "cifar10-lab-"  # pyproject.toml's [project.scripts]: cifar10-lab-train, -evaluate, ...


def command_name(script, argv=None):
    """The program name usage and error lines give: the command as invoked (the file name of sys.argv[0]:
    train.py, or cifar10-lab-train when installed) when it reads its own command line (argv None); the
    script's name when a Python caller hands it argv."""
    return os.path.basename(sys.argv[0]) if argv is None and sys.argv and sys.argv[0] else script


def how_to_run(script):
    """How a hint tells the user to run a command again: the installed command (cifar10-lab-train) when
    that is what is running, else `python train.py` as from a checkout."""
    return invocation(command_name(script), script)


def invocation(name, script):
    """How to type a command that runs as `name` (command_name's answer): as it is when installed, else
    `python script`."""
    return name if name.startswith(INSTALLED_PREFIX) else f"python {script}"


class Parser(argparse.ArgumentParser):
    """argparse with a bad flag in one line, not the whole usage block."""

    def error(self, message):
        self.exit(2, f"{self.prog}: error: {message} (see --help)\n")


def did_you_mean(word, options):
    """' (did you mean X?)' for the option closest to word, spelled as word is (dashes or underscores);
    '' when none is close. difflib's ratio >= 0.6: one or two letters wrong, dropped or swapped."""
    word = str(word)
    dashed = "-" in word
    canon = {o.replace("-", "_"): o for o in options}
    match = difflib.get_close_matches(word.replace("-", "_"), list(canon), n=1)
    if not match:
        return ""
    best = canon[match[0]]
    return f" (did you mean {best.replace('_', '-') if dashed else best.replace('-', '_')!r}?)"


def one_line(where, problems):
    """All problems as one line: 'where: first; second; ...' (no prefix when where is None)."""
    return (f"{where}: " if where else "") + "; ".join(problems)


def require(*specs):
    """BadInput naming every problem of the path_problems specs in one line, or nothing."""
    problems = path_problems(*specs)
    if problems:
        raise BadInput(one_line(None, problems))


def checkpoint_arg(choice):
    """--checkpoint best|last|PATH (evaluate, predict, export) as a spec: a PATH must be a readable file."""
    return ("--checkpoint", None if choice in ("best", "last") else choice, FILE)


def path_problems(*specs):
    """The problems of each (name, path, kind[, overwrite]) spec, one line each, in order; None paths
    (an option not given) are skipped. name is how the user gave it: --data-dir, RUN_DIR."""
    out = []
    for name, path, kind, *overwrite in specs:
        if path is not None:
            problem = path_problem(path, kind, *overwrite)
            if problem:
                out.append(f"{name} {path}: {problem}")
    return out


def path_problem(path, kind, overwrite=False):
    """What is wrong with path as a `kind` (FILE, FOLDER, ...), or None."""
    path = os.fspath(path)
    if kind == RUN_FOLDER:
        return RunFolder(path).problem()
    if kind in (FILE, FOLDER, FILE_OR_FOLDER):
        if not os.path.exists(path):
            return f"no such {kind}"
        if kind == FILE and os.path.isdir(path):
            return "is a folder, not a file"
        if kind == FOLDER and not os.path.isdir(path):
            return "is a file, not a folder"
        if not os.access(path, os.R_OK | (os.X_OK if os.path.isdir(path) else 0)):
            return "cannot be read (permissions)"
        return None
    if kind == OUT_FOLDER:
        if os.path.exists(path):
            if not os.path.isdir(path):
                return "is a file, not a folder"
            return None if os.access(path, os.W_OK | os.X_OK) else "cannot be written (permissions)"
        return _creatable(path)
    if kind in (NEW_FILE, OUT_FILE):
        if os.path.isdir(path):
            return "is a folder, not a file"
        if os.path.exists(path):
            if kind == NEW_FILE and not overwrite:
                return "exists already (kept); pass --overwrite to replace it"
            return None if os.access(path, os.W_OK) else "cannot be written (permissions)"
        return _creatable(path)
    raise ValueError(f"unknown kind {kind!r}")


def path_type(kind):
    """An argparse type for a command with one path argument: the path as given, or argparse's one-line
    error naming what is wrong with it."""
    def check(text):
        problem = path_problem(text, kind)
        if problem:
            raise argparse.ArgumentTypeError(f"{text}: {problem}")
        return text
    check.__name__ = kind
    return check


def _creatable(path):
    """None when path can be made: its nearest existing ancestor is a folder this process may write."""
    parent = os.path.dirname(os.path.abspath(path))
    while not os.path.exists(parent):
        parent = os.path.dirname(parent)
    if not os.path.isdir(parent):
        return f"cannot be made: {parent} is a file"
    return None if os.access(parent, os.W_OK | os.X_OK) else f"cannot be made: {parent} cannot be written"
