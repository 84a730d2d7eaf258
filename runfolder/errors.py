"""BadInput: the one error for bad input (a setting, a file, a folder, the data), said in one line.

Every layer raises it; the commands turn it into `error: <message>` on stderr and a non-zero exit,
never a traceback. Stdlib only.
"""
import functools
import sys


class BadInput(Exception):
    """Input the user can fix: the message is one line naming what was given and what is wrong with it."""


def one_line_errors(main):
    """Wrap a command's main: BadInput becomes `error: <message>` on stderr and exit status 1."""
    @functools.wraps(main)
    def wrapped(*args, **kwargs):
        try:
            return main(*args, **kwargs)
        except BadInput as e:
            sys.exit(f"error: {e}")
    return wrapped
