"""Which inputs are secrets, found in the raw INPUT_* variables before any check, so that even an
error about the inputs cannot print one. Standard library only (the launcher uses it)."""

from __future__ import annotations

import urllib.parse
from collections.abc import Mapping

from register.report import github

SECRET_INPUTS = ("prefect-api-key", "prefect-api-auth-string", "registry-password", "github-token")


def input_name(variable: str) -> str | None:
    """The input an `INPUT_*` variable carries, in action.yml's spelling: the composite action sets
    INPUT_WORK_POOL, the runner sets INPUT_WORK-POOL for a Docker action's `work-pool`."""
    if not variable.upper().startswith("INPUT_"):
        return None
    return variable[len("INPUT_"):].lower().replace("_", "-")


def secrets_in(environ: Mapping[str, str]) -> list[str]:
    """The secret inputs' values, and a password inside the API URL."""
    found = []
    for variable, value in environ.items():
        name = input_name(variable)
        if name in SECRET_INPUTS and value:
            found.append(value)
        elif name == "prefect-api-url":
            try:
                password = urllib.parse.urlsplit(value.strip()).password
            except ValueError:
                password = None
            if password:  # as written, and as the server may echo it back decoded
                found += dict.fromkeys([password, urllib.parse.unquote(password)])
    return found


def mask_secrets(environ: Mapping[str, str], stream=None) -> None:
    for value in secrets_in(environ):
        github.mask(value, stream=stream)
