"""The docs against the code: every `python train.py ...` command in README.md and docs/*.md runs.

Each command is taken from the markdown as a user would paste it (code blocks with their `\\` line
continuations, and inline `code` in prose and tables), then run in-process through train.main with
--smoke and the fixture data appended, so a renamed flag, a removed preset or a bad value in a doc
fails here. Identical commands run once. `runs/X` and `RUN_DIR` stand for a run folder and get a real
one; commands with another placeholder (<...>, ...) are reported as skipped.
"""
import os
import re
import shlex
from pathlib import Path

import pytest

from tests import conftest
from tests.conftest import ROOT

DOCS = [Path(ROOT, "README.md"), *sorted(Path(ROOT, "docs").glob("*.md"))]
README_MAX_LINES = 200  # a front page, not a notebook (issue 13)
# Fixture images per training batch file (5 files): enough to hold out the default 5,000 validation
# images and still fill the largest batch a docs command writes (256).
DOCS_TRAIN_PER_BATCH = 1100
# A command that does not write --batch-size trains its smoke steps at this batch at most: --preset fast's
# 1024 images a step through the fast ResNet took 35 s of CPU for 3 steps, and the size changes no code
# path. A batch the docs write runs as written; the fast recipe's 1024 is tests/models/test_fast_resnet.py's.
SMOKE_BATCH = 64

FENCE = re.compile(r"^\s*(```|~~~)")
INLINE_CODE = re.compile(r"`([^`]+)`")
SEPARATORS = {"&&", "||", ";", "|", "&"}
PLACEHOLDER = re.compile(r"<[^>]*>|\.\.\.")
RUN_X = re.compile(r"^(runs/X|RUN_DIR)(?=/|$)")  # "any run folder" in the docs: given a real one here
LINK = re.compile(r"\]\(([^)#\s]+)(?:#[^)]*)?\)")
# Paths of the machine the docs were written on, which no user has; a character class keeps this pattern
# from matching itself in a repository-wide search for such paths.
OUTSIDE_PATHS = re.compile(r"/[w]ork/|\.\./[s]hared|/tmp/")


def snippets(text):
    """(line number, shell text) of each code-block line (continuations joined) and inline code span."""
    prose, block, start = [], None, 0
    for number, line in enumerate(text.splitlines(), 1):
        if FENCE.match(line):
            block = None if block is not None else []
            prose.append("")
            continue
        if block is None:
            prose.append(line)
            continue
        prose.append("")
        if block:  # the previous line ended in a backslash
            block.append(line)
        else:
            block, start = [line], number
        if not line.rstrip().endswith("\\"):
            yield start, " ".join(part.rstrip().rstrip("\\") for part in block)
            block = []
    joined = "\n".join(prose)
    for match in INLINE_CODE.finditer(joined):
        yield joined.count("\n", 0, match.start()) + 1, match.group(1).replace("\n", " ")


def train_commands(text):
    """(line number, argv after `python train.py`) for each train.py command in a markdown text."""
    for number, shell in snippets(text):
        lexer = shlex.shlex(shell, posix=True, punctuation_chars=True)
        lexer.whitespace_split = True
        try:
            tokens = list(lexer)
        except ValueError:  # not shell (an unbalanced quote in prose code)
            continue
        segment = []
        for token in [*tokens, ";"]:
            if token not in SEPARATORS:
                segment.append(token)
                continue
            for i in range(len(segment) - 1):
                if segment[i] in ("python", "python3") and segment[i + 1] == "train.py":
                    yield number, segment[i + 2:]
                    break
            segment = []


def collect():
    """Unique commands in doc order, each with every place it appears."""
    places = {}
    for doc in DOCS:
        for number, argv in train_commands(doc.read_text()):
            places.setdefault(tuple(argv), []).append(f"{doc.relative_to(ROOT)}:{number}")
    return places


COMMANDS = collect()


def test_the_docs_hold_the_commands_users_start_with():
    readme = [list(argv) for argv, where in COMMANDS.items() if any(w.startswith("README.md") for w in where)]
    assert ["--model", "mlp", "--data-dir", "data"] in readme  # the set-up line, after `pip ... &&`
    assert ["--preset", "mlp-best", "--data-dir", "data"] in readme  # a models-table cell
    joined = [argv for argv in COMMANDS if "--max-steps" in argv and "--hidden" in argv and "512" in argv]
    assert joined and "--data-dir" in joined[0], "a command with \\ continuations was not joined"


def test_training_commands_use_the_repository_data_folder():
    """Docs commands run as pasted from the repository root: the data is `--data-dir data`."""
    no_data = {"--print-config", "--resume", "--config", "--help", "-h"}
    wrong = [where[0] for argv, where in COMMANDS.items()
             if not no_data & set(argv) and "--data-dir data" not in " ".join(argv)]
    assert not wrong, f"train.py commands without --data-dir data: {wrong}"


def test_readme_is_a_front_page():
    lines = Path(ROOT, "README.md").read_text().splitlines()
    assert len(lines) <= README_MAX_LINES, f"README.md has {len(lines)} lines (at most {README_MAX_LINES})"


def test_docs_name_no_path_outside_the_repository():
    found = [f"{doc.relative_to(ROOT)}:{n}: {line.strip()}" for doc in DOCS
             for n, line in enumerate(doc.read_text().splitlines(), 1) if OUTSIDE_PATHS.search(line)]
    assert not found, "\n".join(found)


def test_relative_links_resolve():
    broken = [f"{doc.relative_to(ROOT)}: {target}" for doc in DOCS for target in LINK.findall(doc.read_text())
              if "://" not in target and not (doc.parent / target).exists()]
    assert not broken, f"links to nothing: {broken}"


@pytest.fixture(scope="module")
def docs_data(tmp_path_factory):
    """Fixture data in the official format, large enough that the docs' commands run as written."""
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(conftest, "TRAIN_PER_BATCH", DOCS_TRAIN_PER_BATCH)
        return conftest.make_cifar(str(tmp_path_factory.mktemp("cifar-docs")))


@pytest.fixture(scope="module")
def a_run(docs_data, tmp_path_factory):
    """A finished tiny run folder, for the docs' `runs/X` and `RUN_DIR`."""
    import train
    folder = tmp_path_factory.mktemp("docs") / "X"
    train.main(["--model", "mlp", "--data-dir", docs_data, "--output-dir", str(folder), "--max-steps", "2",
                "--eval-every", "2", "--log-every", "1", "--accelerator", "cpu", "--logger", "csv"])
    return str(folder)


def resolved_batch(argv):
    """The batch size train.py would run argv at; 0 where it refuses argv or only prints (train.main says why)."""
    from config.resolve import resolve

    try:
        return resolve(list(argv))[0].get("batch_size") or 0
    except (SystemExit, Exception):
        return 0


@pytest.mark.parametrize("argv", list(COMMANDS), ids=[where[0] for where in COMMANDS.values()])
def test_doc_command_runs(argv, docs_data, tmp_path, monkeypatch, request, capsys):
    where, shown = ", ".join(COMMANDS[argv]), shlex.join(argv)
    if any(PLACEHOLDER.search(token) for token in argv):
        pytest.skip(f"placeholder in {where}: {shown}")
    import train
    if any(RUN_X.match(token) for token in argv):
        run_x = request.getfixturevalue("a_run")
        argv = tuple(RUN_X.sub(run_x.replace("\\", "\\\\"), token) for token in argv)
    monkeypatch.chdir(ROOT)  # the docs' relative paths (configs/...) are from the repository root
    monkeypatch.setenv("WANDB_MODE", "disabled")
    environ = dict(os.environ)
    # Appended, so they win over the doc's own values: fixture data, a scratch folder, one CPU process,
    # and a small evaluation batch (smoke evaluates one batch: 1000 images through a ResNet cost seconds).
    extra = ["--smoke", "--data-dir", docs_data, "--output-dir", str(tmp_path / "run"), "--accelerator", "cpu",
             "--devices", "1", "--num-nodes", "1", "--logger", "csv", "--eval-batch-size", "100"]
    if "--batch-size" not in argv and resolved_batch([*argv, *extra]) > SMOKE_BATCH:
        extra += ["--batch-size", str(SMOKE_BATCH)]
    try:
        train.main([*argv, *extra])
    except SystemExit as e:
        if e.code not in (0, None):
            pytest.fail(f"{where}: `python train.py {shown}` exited with {e.code!r}\n"
                        f"{capsys.readouterr().err[-2000:]}")
    finally:
        os.environ.clear()
        os.environ.update(environ)
