"""Templates that name a Prefect block or variable (`{{ prefect.blocks.secret.token }}`,
`{{ prefect.variables.region }}`), checked against the server at plan time: a run would fail when it
starts, so a missing one is an error before anything is written, where the template was written."""

from __future__ import annotations

import re
from collections.abc import Callable, Iterator

from register.code import STORAGE
from register.manifest.checks import ProblemReport
from register.manifest.resolve import Deployment
from register.problems import one_of

BLOCK = re.compile(r"\{\{\s*prefect\.blocks\.([\w-]+)\.([\w-]+)")
VARIABLE = re.compile(r"\{\{\s*prefect\.variables\.([\w-]+)")
# The resolved settings a run's templates are filled in from.
_FIELDS = ("parameters", "job_variables", "code", "schedules", "triggers")
# code.git/s3/gcs.credentials.block is written as TYPE/NAME and becomes a block template (register/code/__init__.py).
_CREDENTIALS = {("code", kind, "credentials", "block") for kind in ("git", *STORAGE)}


def _strings(value, path: tuple = ()) -> Iterator[tuple[tuple, str]]:
    if isinstance(value, str):
        yield path, value
    elif isinstance(value, dict):
        for key, item in value.items():
            yield from _strings(item, path + (key,))
    elif isinstance(value, list):
        for i, item in enumerate(value):
            yield from _strings(item, path + (i,))


def found(deployments: list[Deployment]) -> tuple[dict, dict]:
    """(block (type, name) -> the places naming it, variable name -> the places), over every deployment."""
    blocks: dict[tuple[str, str], list] = {}
    variables: dict[str, list] = {}
    for d in deployments:
        for field in _FIELDS:
            for path, text in _strings(getattr(d, field, None), (field,)):
                if path in _CREDENTIALS and "/" in text:
                    blocks.setdefault(tuple(text.split("/", 1)), []).append((d, path))
                for match in BLOCK.finditer(text):
                    blocks.setdefault(match.groups(), []).append((d, path))
                for match in VARIABLE.finditer(text):
                    variables.setdefault(match.group(1), []).append((d, path))
    return blocks, variables


def check(report: ProblemReport, deployments: list[Deployment], *, server: str,
          existing_blocks: Callable[[set[tuple[str, str]]], set[tuple[str, str]]],
          existing_variables: Callable[[set[str]], set[str]]) -> None:
    """Report each referenced block or variable the server lacks; the server is asked only when there are
    references (one request for blocks, one for variables)."""
    blocks, variables = found(deployments)
    if blocks:
        have = existing_blocks(set(blocks))
        for (kind, name), places in blocks.items():
            if (kind, name) not in have:
                similar = sorted(n for k, n in have if k == kind)
                hint = f"it has {kind} blocks {one_of(similar)}" if similar else \
                    f"create it first (a {kind} block named '{name}')"
                for origin, names in _by_origin(places).items():
                    report.at(origin, f"block '{kind}/{name}' does not exist on {server}, so {_runs_of(names)}; "
                                      f"{hint}", "block-missing")
    if variables:
        have = existing_variables(set(variables))
        for name, places in variables.items():
            if name not in have:
                for origin, names in _by_origin(places).items():
                    report.at(origin, f"variable '{name}' does not exist on {server}, so {_runs_of(names)}; "
                                      f"create it first (prefect variable set {name} VALUE)", "variable-missing")


def _by_origin(places: list) -> dict[tuple, list[str]]:
    """The deployments naming a reference, by where the reference was written: one problem per manifest
    place, however many deployments inherit it."""
    found: dict[tuple, list[str]] = {}
    for d, path in places:
        names = found.setdefault(d.origin(*path), [])
        if d.name not in names:
            names.append(d.name)
    return found


def _runs_of(names: list[str]) -> str:
    """'a run of 'x' would fail when it starts', or the runs of several deployments (five named at most)."""
    if len(names) == 1:
        return f"a run of '{names[0]}' would fail when it starts"
    shown = [f"'{n}'" for n in names[:5]] + ([f"{len(names) - 5} more"] if len(names) > 5 else [])
    return f"runs of {', '.join(shown[:-1])} and {shown[-1]} would fail when they start"
