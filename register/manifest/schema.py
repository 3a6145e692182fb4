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


def describe(value) -> str:
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


TYPE_NAMES = {"object": "a mapping", "array": "a list", "string": "a string", "integer": "a whole number",
               "number": "a number", "boolean": "true or false", "null": "null"}


def _name(path) -> str:
    """`deployments[0].resources.cpu`: how messages name a place in the manifest."""
    out = ""
    for part in path:
        out += f"[{part}]" if isinstance(part, int) else (f".{part}" if out else str(part))
    return out or "the manifest"


def problems_of(error: ValidationError, source: Source) -> list[Problem]:
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
            free = " (and any key starting with 'x-')" if "^x-" in schema.get("patternProperties", {}) else ""
            problems.append(source.problem(
                path + (key,), f"unknown key '{key}' in {where}; {did_you_mean}valid keys are {one_of(allowed)}{free}",
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
    if "code" in path and "credentials" in path and kind != "additionalProperties":
        # never repeat the value: it may be the very secret that does not belong here
        return [source.problem(path[: path.index("credentials") + 1],
                               f"{_name(path[: path.index('credentials') + 1])} must name a Prefect block "
                               "({block: github-credentials/NAME} or {block: secret/NAME}) or an environment variable "
                               "({token_env: GITHUB_TOKEN}); a secret never belongs in the manifest", "code-credentials")]
    if kind in ("oneOf", "anyOf"):
        # "or null" alternatives only say a setting may be removed; the real shape is the other branch
        context = [e for e in error.context if e.schema != {"type": "null"}] or error.context
        if len({tuple(e.relative_schema_path)[:1] for e in context}) == 1 and len(error.context) > len(context):
            return [p for e in context for p in problems_of(e, source)]
        if "cron" in schema.get("properties", {}):
            given = [k for k in ("cron", "interval", "rrule") if isinstance(error.instance, dict) and k in error.instance]
            detail = f"it has {one_of(given).replace(' or ', ' and ')}" if given else "it has none"
            if isinstance(error.instance, dict):
                return [source.problem(path, f"a schedule needs exactly one of 'cron', 'interval' or 'rrule'; {detail}",
                                       "schedule-kind")]
        if path and path[-1] == "work_pool":
            if isinstance(error.instance, dict):  # the mapping form: say what is wrong inside it
                inner = [e for e in error.context if e.relative_schema_path[0] == 1]  # branch 1: {name, type}
                return [p for e in inner for p in problems_of(e, source)]
            return [source.problem(path, f"{where} must be a pool name or a mapping {{name, type}}; "
                                         f"got {describe(error.instance)}", "type")]
        if path and path[-1] == "concurrency_limit":
            if isinstance(error.instance, dict):  # the mapping form: say what is wrong inside it
                return [p for e in error.context if e.relative_schema_path[0] == 1 for p in problems_of(e, source)]
            return [source.problem(path, f"{where} must be a whole number of at least 1 or a mapping {{limit, "
                                         f"collision_strategy, grace_period_seconds}}; got {describe(error.instance)}",
                                   "type" if not isinstance(error.instance, int) else "range")]
        if path and path[-1] == "cpu":
            return [source.problem(path, f"{where} must be a positive number of vCPU (0.25, 1, 2) or millicores "
                                         f"('250m'); got {describe(error.instance)}", "resources-unit")]
        if path and path[-1] == "memory":
            return [source.problem(path, f"{where} must be a quantity ('512Mi', '2Gi', '1G') or a whole number "
                                         f"of MiB; got {describe(error.instance)}", "resources-unit")]
        inner = best_match(context) if context else None
        return problems_of(inner, source) if inner is not None else [source.problem(path, error.message, "schema")]
    if kind == "type" and path[:1] == ("webhooks",) and path[-1] == "template":
        return [source.problem(path, f"{where} must be Jinja text that renders to the event's JSON, or a mapping "
                                     f"(the event: {{event, resource}}); got {describe(error.instance)}", "type")]
    if kind == "type":
        wanted = schema.get("type")
        wanted = [wanted] if isinstance(wanted, str) else [t for t in wanted if t != "null"]  # null = remove
        names = " or ".join(TYPE_NAMES.get(t, t) for t in wanted)
        return [source.problem(path, f"{where} must be {names}; got {describe(error.instance)}", "type")]
    if kind == "const":
        return [source.problem(path, f"{where} must be {json.dumps(error.validator_value)}; "
                                     f"got {describe(error.instance)}", "version" if path == ("version",) else "const")]
    if kind == "enum":
        close = difflib.get_close_matches(error.instance, [v for v in error.validator_value if isinstance(v, str)],
                                          n=1) if isinstance(error.instance, str) else []
        return [source.problem(path, f"{where} must be {one_of(error.validator_value)}; "
                                     f"got {describe(error.instance)}" + (f"; did you mean '{close[0]}'?" if close else ""),
                               "enum")]
    if kind == "pattern":
        if "propertyNames" in error.schema_path:
            return [source.problem(path + (error.instance,), f"environment name '{error.instance}' is not a slug: "
                                                              "use lower-case letters, digits and '-', starting with "
                                                              "a letter or digit (e.g. 'prod')", "slug", key=True)]
        if path == ("project",) or schema.get("pattern", "").startswith("^[a-z0-9]"):
            return [source.problem(path, f"{where} '{error.instance}' is not a slug: use lower-case letters, "
                                         "digits and '-', starting with a letter or digit (e.g. 'sales-etl')", "slug")]
        if path and path[-1] == "entrypoint":
            return [source.problem(path, f"{where} '{error.instance}' must look like 'path/to/file.py:function'",
                                   "entrypoint")]
        if path[:1] == ("variables",) and path[-1] == "name":
            return [source.problem(path, f"{where} '{error.instance}' is not a variable name: use lower-case letters, "
                                         "digits, '-' and '_' (Prefect's rule), e.g. 'aws_region'", "name")]
        if path[:1] == ("webhooks",) and path[-1] == "service_account_id":
            return [source.problem(path, f"{where} '{error.instance}' is not a service account's id: a UUID, e.g. "
                                         "'3fa85f64-5717-4562-b3fc-2c963f66afa6' (Cloud's Service Accounts page)",
                                   "webhook-service-account")]
        if path[:1] == ("webhooks",) and path[-1] == "name":
            return [source.problem(path, f"{where} must be one line of text without control characters", "name")]
        if path[:1] == ("blocks",) and path[-1] == "name":
            return [source.problem(path, f"{where} '{error.instance}' is not a block name: use lower-case letters, "
                                         "digits and '-' (Prefect's rule), e.g. 'aws-prod'", "name")]
        if path and path[-1] == "name":
            return [source.problem(path, f"{where} '{error.instance}' may not contain '/', '%', '&', '>' or '<'",
                                   "name")]
    if kind in ("minItems", "minProperties"):
        return [source.problem(path, f"{where} needs at least one entry", "empty")]
    if kind == "exclusiveMinimum":
        return [source.problem(path, f"{where} must be greater than {error.validator_value}; got {error.instance}",
                               "range")]
    if kind == "maximum":
        return [source.problem(path, f"{where} must be at most {error.validator_value}; got {error.instance}",
                               "range")]
    if kind == "minimum":
        return [source.problem(path, f"{where} must be at least {error.validator_value}; got {error.instance}",
                               "range")]
    return [source.problem(path, f"{where}: {error.message}", "schema")]


def errors(data) -> list[ValidationError]:
    return list(_validator().iter_errors(data))


def usable_part(data: dict, found: list[ValidationError], dropped: set | None = None) -> dict | None:
    """The manifest without the parts the schema rejected, so the other checks still run on the rest and
    one run reports every problem. A deployment too broken to check becomes None (the others keep their
    indexes, and so their positions). None when the document's skeleton itself is unusable.
    `dropped` receives the path of each part taken out, so no check reports the absence it causes."""
    import copy

    pruned = copy.deepcopy(data)
    dropped = set() if dropped is None else dropped
    for error in found:
        path = list(error.absolute_path)
        dropped.add(tuple(path))
        if error.validator == "additionalProperties":
            parent = _at(pruned, path)
            for key in [k for k in list(parent) if k not in error.schema.get("properties", {})]:
                parent.pop(key, None)
        elif path[:1] == ["deployments"] and len(path) >= 2:
            if error.validator == "required" or len(path) == 2 or path[2] in ("name", "entrypoint"):
                pruned["deployments"][path[1]] = None
            else:
                _remove(pruned, path)
        elif path[:1] == ["variables"] and len(path) >= 2:
            if error.validator == "required" or len(path) == 2 or path[2] == "name":
                pruned["variables"][path[1]] = None
            else:
                _remove(pruned, path)
        elif path == ["variables"]:
            pruned.pop("variables", None)
        elif path[:1] == ["webhooks"] and len(path) >= 2:
            if error.validator == "required" or len(path) == 2 or path[2] == "name":
                pruned["webhooks"][path[1]] = None
            else:
                _remove(pruned, path)
        elif path == ["webhooks"]:
            pruned.pop("webhooks", None)
        elif path[:1] == ["blocks"] and len(path) >= 2:
            if error.validator == "required" or len(path) == 2 or path[2] in ("name", "type"):
                pruned["blocks"][path[1]] = None
            else:
                _remove(pruned, path)
        elif path == ["blocks"]:
            pruned.pop("blocks", None)
        elif path[:1] == ["environments"] and len(path) >= 2:
            if len(path) == 2:
                pruned["environments"][path[1]] = {}
            else:
                _remove(pruned, path)
        elif path in ([], ["environments"], ["deployments"]):
            return None
        elif len(path) > 1:
            _remove(pruned, path)
        # version, project, image: the other checks do not depend on their exact values
    if not isinstance(pruned.get("project"), str):
        pruned["project"] = "project"
    return pruned


def _at(data, path):
    for part in path:
        data = data[part]
    return data


def _remove(data, path) -> None:
    parent = _at(data, path[:-1])
    if isinstance(parent, dict):
        parent.pop(path[-1], None)
    elif isinstance(parent, list):
        parent[path[-1]] = None
