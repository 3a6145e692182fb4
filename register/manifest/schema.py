"""Check a manifest against schemas/manifest.schema.json, the one description of the format.

Errors become `Problem`s at the offending key or value, with messages that name the valid choices.
"""

from __future__ import annotations

import difflib
import json
from functools import cache
from importlib import resources
from pathlib import Path

import jsonschema
from jsonschema.exceptions import ValidationError, best_match

from register.problems import Problem, one_of
from register.manifest.source import Source

_IN_REPO = Path(__file__).resolve().parents[2] / "schemas" / "manifest.schema.json"


@cache
def manifest_schema() -> dict:
    # In a checkout the schema is read from schemas/; an installed wheel carries a copy.
    if _IN_REPO.exists():
        return json.loads(_IN_REPO.read_text())
    return json.loads(resources.files("register").joinpath("manifest.schema.json").read_text())


@cache
def _validator() -> jsonschema.Draft202012Validator:
    return jsonschema.Draft202012Validator(manifest_schema())


def _describe(value) -> str:
    if isinstance(value, bool):
        return f"the boolean {str(value).lower()}"
    if value is None:
        return "null"
    if isinstance(value, (int, float)):
        return f"the number {value}"
    if isinstance(value, str):
        return f"the string '{value}'"
    if isinstance(value, list):
        return "a list"
    return "a mapping"


_TYPE_NAMES = {"object": "a mapping", "array": "a list", "string": "a string", "integer": "a whole number",
               "number": "a number", "boolean": "true or false", "null": "null"}


def _name(path) -> str:
    """`deployments[0].resources.cpu`: how messages name a place in the manifest."""
    out = ""
    for part in path:
        out += f"[{part}]" if isinstance(part, int) else (f".{part}" if out else str(part))
    return out or "the manifest"


def _problems_of(error: ValidationError, source: Source) -> list[Problem]:
    path = tuple(error.absolute_path)
    where = _name(path)
    schema = error.schema if isinstance(error.schema, dict) else {}
    kind = error.validator

    if kind == "additionalProperties":
        allowed = sorted(schema.get("properties", {}))
        problems = []
        for key in sorted(set(error.instance) - set(allowed)):
            hint = difflib.get_close_matches(key, allowed, n=1)
            did_you_mean = f"did you mean '{hint[0]}'? " if hint else ""
            problems.append(source.problem(
                path + (key,), f"unknown key '{key}' in {where}; {did_you_mean}valid keys are {one_of(allowed)}",
                "unknown-key", key=True))
        return problems
    if kind == "required":
        missing = error.message.split("'")[1]
        return [source.problem(path, f"{where} is missing the required key '{missing}'", "missing-key")]
    if kind == "propertyNames":
        bad = error.instance
        return [source.problem(path + (bad,), f"'{bad}' is not a valid name in {_name(path)}: use lower-case "
                                                "letters, digits and '-', starting with a letter or digit",
                               "slug", key=True)]
    if kind in ("oneOf", "anyOf"):
        if "cron" in schema.get("properties", {}):
            given = [k for k in ("cron", "interval", "rrule") if isinstance(error.instance, dict) and k in error.instance]
            detail = f"it has {one_of(given).replace(' or ', ' and ')}" if given else "it has none"
            if isinstance(error.instance, dict):
                return [source.problem(path, f"a schedule needs exactly one of 'cron', 'interval' or 'rrule'; {detail}",
                                       "schedule-kind")]
        if path and path[-1] == "work_pool":
            return [source.problem(path, f"{where} must be a pool name or a mapping {{name, type}}; "
                                         f"got {_describe(error.instance)}", "type")]
        if path and path[-1] == "cpu":
            return [source.problem(path, f"{where} must be a positive number of vCPU (0.25, 1, 2) or millicores "
                                         f"('250m'); got {_describe(error.instance)}", "resources-unit")]
        if path and path[-1] == "memory":
            return [source.problem(path, f"{where} must be a quantity ('512Mi', '2Gi', '1G') or a whole number "
                                         f"of MiB; got {_describe(error.instance)}", "resources-unit")]
        inner = best_match(error.context) if error.context else None
        return _problems_of(inner, source) if inner is not None else [source.problem(path, error.message, "schema")]
    if kind == "type":
        wanted = schema.get("type")
        wanted = [wanted] if isinstance(wanted, str) else wanted
        names = " or ".join(_TYPE_NAMES.get(t, t) for t in wanted)
        return [source.problem(path, f"{where} must be {names}; got {_describe(error.instance)}", "type")]
    if kind == "const":
        return [source.problem(path, f"{where} must be {json.dumps(error.validator_value)}; "
                                     f"got {_describe(error.instance)}", "version" if path == ("version",) else "const")]
    if kind == "enum":
        return [source.problem(path, f"{where} must be {one_of(error.validator_value)}; "
                                     f"got {_describe(error.instance)}", "enum")]
    if kind == "pattern":
        if path == ("project",) or schema.get("pattern", "").startswith("^[a-z0-9]"):
            return [source.problem(path, f"{where} '{error.instance}' is not a slug: use lower-case letters, "
                                         "digits and '-', starting with a letter or digit (e.g. 'sales-etl')", "slug")]
        if path and path[-1] == "entrypoint":
            return [source.problem(path, f"{where} '{error.instance}' must look like 'path/to/file.py:function'",
                                   "entrypoint")]
        if path and path[-1] == "name":
            return [source.problem(path, f"{where} '{error.instance}' may not contain '/', '%', '&', '>' or '<'",
                                   "name")]
    if kind in ("minItems", "minProperties"):
        return [source.problem(path, f"{where} needs at least one entry", "empty")]
    if kind == "exclusiveMinimum":
        return [source.problem(path, f"{where} must be greater than {error.validator_value}; got {error.instance}",
                               "range")]
    if kind == "minimum":
        return [source.problem(path, f"{where} must be at least {error.validator_value}; got {error.instance}",
                               "range")]
    return [source.problem(path, f"{where}: {error.message}", "schema")]


def check(source: Source) -> list[Problem]:
    problems: list[Problem] = []
    for error in _validator().iter_errors(source.data):
        problems.extend(_problems_of(error, source))
    return problems
