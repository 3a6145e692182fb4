"""Problems a user must fix, where they are, and how the tool exits.

Every stage reports `Problem`s instead of raising on the first one, so one run shows everything
that is wrong. A `Problem` renders as `FILE:LINE:COL: error: MESSAGE [rule]`.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import IntEnum


class Exit(IntEnum):
    """How flow-register exits: each code means one thing, declared here only (the README's table is
    generated from MEANING by scripts/reference.py)."""

    OK = 0
    INVALID = 1
    USAGE = 2
    APPLY_FAILED = 3
    SERVER_FAILED = 4
    IMAGE_FAILED = 5
    SMOKE_FAILED = 6

    @property
    def meaning(self) -> str:
        return _MEANING[self]


_MEANING = {
    Exit.OK: "done (or the plan printed)",
    Exit.INVALID: "the manifest or the inputs are wrong; nothing was written",
    Exit.USAGE: "a usage error: an unknown flag, a missing argument, no manifest at the path given",
    Exit.APPLY_FAILED: "applying failed part way; the log lists what was applied; run it again and it converges",
    Exit.SERVER_FAILED: "the Prefect server kept failing (not the manifest's fault); run again",
    Exit.IMAGE_FAILED: "Docker, the registry or the code upload to object storage failed; no deployment was written",
    Exit.SMOKE_FAILED: "a smoke run did not end Completed, or not in time (the deployments are registered; each "
                       "run's state and link are in the log and the summary)",
}


class Detailed(IntEnum):
    """`plan --detailed-exitcode` (Terraform's convention): whether the plan changes anything, and one code
    for every error, whichever it was."""

    NO_CHANGES = 0
    ERROR = 1
    CHANGES = 2

    @classmethod
    def of(cls, code: int) -> Detailed:
        """The detailed code of what a run returned: `Detailed.CHANGES` as it is, Exit.OK, or an error."""
        if isinstance(code, Detailed):
            return code
        return cls.NO_CHANGES if code == Exit.OK else cls.ERROR

    @property
    def meaning(self) -> str:
        return {Detailed.NO_CHANGES: "nothing would change", Detailed.ERROR: "any error (each code above)",
                Detailed.CHANGES: "something would change"}[self]


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
    """The command line itself is wrong (Exit.USAGE)."""


def one_of(choices) -> str:
    """'a', 'b' or 'c': the valid choices, spelled out the way messages name them."""
    quoted = [f"'{c}'" for c in choices]
    if len(quoted) <= 1:
        return "".join(quoted)
    return ", ".join(quoted[:-1]) + " or " + quoted[-1]
