"""Prefect's `{{ }}` placeholders and durations in a prefect.yaml, read as `prefect deploy` reads them.

`prefect deploy` (prefect.cli.deploy._core) fills a deployment's settings before it registers them:
first `{{ $VAR }}` from the environment it runs in, then `{{ step-id.output }}` from its build and push
steps. Any other placeholder (`{{ flow_run.name }}`, a step that does not exist) it drops with a warning:
a value that is only the placeholder loses its key (or list item), a longer text loses the placeholder.
`{{ ctx.* }}` is kept for the worker; `{{ prefect.blocks.* }}` and `{{ prefect.variables.* }}` are read
from the server. Pull steps are registered as written: the worker fills them when a run starts.

The manifest says the same with its own syntax: `${VAR}` is read from the environment `flow-register`
runs in, and a literal `${` is written `$${`.
"""

from __future__ import annotations

import re
from datetime import timedelta

# Prefect's own PLACEHOLDER_CAPTURE_REGEX (prefect.utilities.templating)
PLACEHOLDER = re.compile(r"({{\s*([\w\.\-\[\]$]+)\s*}})")
_VARIABLE_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")


class _Dropped:
    """A value prefect deploy leaves out: its key (or list item) is not registered."""

    def __repr__(self) -> str:
        return "DROPPED"


DROPPED = _Dropped()


def escape(data, seen: set[int] | None = None) -> None:
    """Every `${` in a string becomes `$${`, in place, so the manifest keeps it literal as Prefect did.
    In place: an anchored mapping or list stays the one object its aliases share."""
    seen = set() if seen is None else seen
    if id(data) in seen:
        return
    seen.add(id(data))
    items = data.items() if isinstance(data, dict) else enumerate(data) if isinstance(data, list) else ()
    for key, value in list(items):
        if isinstance(value, str):
            data[key] = value.replace("${", "$${")
        else:
            escape(value, seen)


def placeholders(text: str) -> list[tuple[str, str]]:
    return PLACEHOLDER.findall(text) if isinstance(text, str) else []


def environment_variable(name: str) -> str | None:
    """`VAR` of a `{{ $VAR }}` placeholder's name, when the manifest can say it as `${VAR}`."""
    variable = name[1:] if name.startswith("$") else None
    return variable if variable and _VARIABLE_NAME.fullmatch(variable) else None


def kind(name: str, step_ids: set[str]) -> str:
    """What prefect deploy does with a placeholder: env, server (a block or variable), worker (ctx.),
    step (a build/push step's output) or dropped."""
    if name.startswith("$"):
        return "env"
    if name.startswith(("prefect.blocks.", "prefect.variables.")):
        return "server"
    if name.startswith("ctx."):
        return "worker"
    if name.split(".", 1)[0] in step_ids:
        return "step"
    return "dropped"


def duration(value) -> float | int | None:
    """Seconds of a duration as Prefect's models read it (a number, `PT10M`, `P1D`, `1:30:00`), else None."""
    if isinstance(value, bool):
        return None
    if isinstance(value, (int, float)):
        return value
    if not isinstance(value, str):
        return None
    from pydantic import TypeAdapter, ValidationError  # what Prefect's IntervalSchedule and triggers use

    try:
        seconds = TypeAdapter(timedelta).validate_python(value).total_seconds()
    except ValidationError:
        return None
    return int(seconds) if seconds == int(seconds) else seconds
