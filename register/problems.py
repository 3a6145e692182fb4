"""Problems a user must fix, where they are, and how the tool exits.

Every stage reports `Problem`s instead of raising on the first one, so one run shows everything
that is wrong. A `Problem` renders as `FILE:LINE:COL: error: MESSAGE [rule]`.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import IntEnum


class Exit(IntEnum):
    OK = 0
    INVALID = 1  # invalid manifest or inputs; nothing was written
    USAGE = 2
    CHANGES = 2  # plan --detailed-exitcode: the plan would change something (Terraform's convention)
    APPLY_FAILED = 3  # failed while applying; the report lists what was applied
    SERVER_FAILED = 4  # the Prefect server kept failing (not the manifest's fault); run again
    IMAGE_FAILED = 5  # Docker or the registry failed; no deployment was written
    SMOKE_FAILED = 6  # applied, but a smoke run did not end Completed (or not in time)


@dataclass(frozen=True, order=True)
class Problem:
    file: str
    line: int
    col: int
    message: str
    rule: str
    severity: str = field(default="error", compare=False)

    def __str__(self) -> str:
        # line 0: a problem with an input (a flag or action input), not a place in a file
        where = f"{self.file}:{self.line}:{self.col}" if self.line else self.file
        return f"{where}: {self.severity}: {self.message} [{self.rule}]"

    def as_dict(self) -> dict:
        return {
            "file": self.file,
            "line": self.line,
            "col": self.col,
            "severity": self.severity,
            "message": self.message,
            "rule": self.rule,
        }


class Invalid(Exception):
    """The manifest or the inputs are wrong; carries every problem found. Nothing was written."""

    def __init__(self, problems: list[Problem]):
        self.problems = sorted(problems)
        super().__init__("\n".join(str(p) for p in self.problems))


class UsageError(Exception):
    """The command line itself is wrong (exit 2)."""


def one_of(choices) -> str:
    """'a', 'b' or 'c': the valid choices, spelled out the way messages name them."""
    quoted = [f"'{c}'" for c in choices]
    if len(quoted) <= 1:
        return "".join(quoted)
    return ", ".join(quoted[:-1]) + " or " + quoted[-1]
