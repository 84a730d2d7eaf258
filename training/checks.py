"""Checks of what a user hands a command, each failing with one line: near-miss suggestions for keys.

Stdlib only (no torch, no yaml), so a command can check its input before importing anything heavy.
"""
import difflib


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
    """All of a file's problems as one line: 'where: first; second; ...'."""
    return f"{where}: {'; '.join(problems)}"
