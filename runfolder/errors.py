"""BadInput: the one error for bad input (a setting, a file, a folder, the data), said in one line.

Every layer raises it; the commands turn it into `error: <message>` on stderr and a non-zero exit,
never a traceback. Ctrl-C likewise ends a command in one line, with the shell's status for it (130). Stdlib only.
"""
import functools
import signal
import sys

INTERRUPTED = 128 + signal.SIGINT  # 130: the exit status of a command stopped by Ctrl-C


class BadInput(Exception):
    """Input the user can fix: the message is one line naming what was given and what is wrong with it."""


def one_line_errors(main=None, *, interrupted="interrupted (Ctrl-C) before it finished"):
    """Wrap a command's main: BadInput becomes `error: <message>` on stderr and exit status 1, and Ctrl-C
    (while torch imports, say: the commands import it after reading their arguments) the line `interrupted`
    and status 130. Use as @one_line_errors or @one_line_errors(interrupted="...")."""
    if main is None:
        return functools.partial(one_line_errors, interrupted=interrupted)

    @functools.wraps(main)
    def wrapped(*args, **kwargs):
        try:
            return main(*args, **kwargs)
        except BadInput as e:
            sys.exit(f"error: {e}")
        except KeyboardInterrupt:
            print(interrupted, file=sys.stderr)
            sys.exit(INTERRUPTED)
    return wrapped
