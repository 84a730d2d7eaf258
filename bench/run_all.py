"""Every benchmark, one table: the command behind docs/benchmarks.md.

    python -m bench.run_all --data-dir data           # the full table (under 10 minutes on a 2-core CPU)
    python -m bench.run_all --data-dir DIR --quick    # tiny sizes: checks that everything runs

Each module in MODULES that exists is imported and its rows(quick) collected (with data_dir, for the
ones that read CIFAR-10); a missing one is skipped with a note, a failing one is noted and makes the
exit code 1, and the table is printed either way.
"""
import argparse
import importlib
import inspect
import sys
import time

from . import common

MODULES = ["data_pipeline", "augment", "memory", "lightning_overhead", "numpy_mlp", "layernorm", "packing",
           "startup"]  # lightning_overhead has fast_step's row


def load(name):
    """bench.<name>, or None if there is no such file (an import error inside it still raises)."""
    try:
        return importlib.import_module(f"bench.{name}")
    except ModuleNotFoundError as e:
        if e.name != f"bench.{name}":
            raise
        return None


def collect(quick=False, data_dir="data", modules=None):
    """-> (rows, notes, failed): the rows of `modules` (default MODULES), a note per module, whether any failed."""
    rows, notes, failed = [], [], False
    for name in modules or MODULES:
        start = time.perf_counter()
        try:
            module = load(name)
            if module is None:
                notes.append(f"bench.{name}: not there, skipped")
                continue
            kwargs = {"data_dir": data_dir} if "data_dir" in inspect.signature(module.rows).parameters else {}
            got = module.rows(quick=quick, **kwargs)
        except Exception as e:  # one broken benchmark must not hide the others' rows
            notes.append(f"bench.{name}: FAILED ({type(e).__name__}: {str(e).splitlines()[0] if str(e) else ''})")
            failed = True
            continue
        rows += got
        notes.append(f"bench.{name}: {len(got)} row{'' if len(got) == 1 else 's'} in "
                     f"{time.perf_counter() - start:.0f} s")
    return rows, notes, failed


def main(argv=None):
    p = argparse.ArgumentParser(description="Run every benchmark in bench/ and print one table.")
    p.add_argument("--data-dir", default="data", help="folder holding cifar-10-batches-py/ (default: data)")
    p.add_argument("--quick", action="store_true", help="tiny sizes: checks that everything runs, measures nothing")
    args = p.parse_args(argv)
    start = time.perf_counter()
    rows, notes, failed = collect(args.quick, args.data_dir)
    common.print_table(rows)  # ends with the machine line
    print(f"\ndate: {time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())}; "
          f"command: python -m bench.run_all {' '.join(argv if argv is not None else sys.argv[1:])}; "
          f"{time.perf_counter() - start:.0f} s in all\n")  # blank lines: paragraphs when pasted as markdown
    for note in notes:
        print(f"- {note}")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
