"""Problems for people (`FILE:LINE:COL: error: ...` with the offending line) and for GitHub."""

from __future__ import annotations

import sys
from pathlib import Path

from register.problems import Problem
from register.report import github


# Problems about a secret written where it does not belong: the line itself may hold it
_SECRET_RULES = {"code-secret", "code-credentials", "block-secret"}


def _excerpt(problem: Problem) -> str:
    """The offending line with a caret under the spot, as compilers show it."""
    if not problem.line or problem.rule in _SECRET_RULES:
        return ""
    try:
        line = Path(problem.file).read_text(encoding="utf-8").splitlines()[problem.line - 1]
    except (OSError, IndexError, UnicodeDecodeError):
        return ""
    gutter = f"{problem.line:>5} | "
    return f"{gutter}{line}\n{' ' * (len(gutter) + problem.col - 1)}^\n"


def print_problems(problems: list[Problem], stream=None, *, excerpts: bool = True) -> None:
    stream = stream or sys.stderr
    for problem in problems:
        stream.write(github.visible(str(problem), keep="\n\t") + "\n")  # a bidi control shown, not obeyed
        if excerpts:
            stream.write(_excerpt(problem))
    errors = sum(p.severity == "error" for p in problems)
    warnings = len(problems) - errors
    if problems:
        stream.write(f"{errors} error{'s' * (errors != 1)}, {warnings} warning{'s' * (warnings != 1)}\n")
    if github.active():
        for problem in problems:
            print(github.annotation(problem), file=sys.stderr, flush=True)  # stdout may be JSON
        if errors:
            github.add_summary(summary(problems))


def summary(problems: list[Problem]) -> str:
    """The step summary of a run that stopped on invalid input: what is wrong, where, and that nothing was
    written. Messages quote the manifest and the server: each cell is a code span (github.code)."""
    rows = "\n".join(f"| {github.code(f'{p.file}:{p.line}' if p.line else p.file, cell=True)} | {p.severity} "
                     f"| {github.code(p.message, cell=True)} | {github.code(p.rule, cell=True)} |" for p in problems)
    errors = sum(p.severity == "error" for p in problems)
    return (f"### flow-register: {errors} problem{'s' * (errors != 1)}, nothing was written\n\n"
            f"| where | | problem | rule |\n|---|---|---|---|\n{rows}\n")
