"""Prefect's shapes: manifest schedules, triggers and job variables as the server stores and checks them.

The one module that knows Prefect's models. Schedules are shaped and checked here by hand, with the
libraries Prefect itself uses (croniter, dateutil, pytz), because `import prefect` costs 1-2 s and a
validate, a plan or a no-op deploy must not pay it; tests/unit/test_models.py holds each hand-made shape
against Prefect's own model. Job variables are checked with jsonschema under the server's rules, held
likewise against Prefect's validator. Triggers go through Prefect's models, imported only when a
trigger's schema refuses it, and a trigger that did not change is recognised by its fingerprint.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
from functools import cache
from uuid import UUID

# The numbers the server stores, within what it can hold and use. A value outside passes its API here and
# there and fails half way through a deploy, or later in one of its services; `validate` refuses it first.
# Durations: the server computes dates (runs, event windows) up to the year 9999, and Python's timedelta
# holds 999,999,999 days at most; 1000 years is far from both. Its resolution is a microsecond: a shorter
# interval becomes 0, which it refuses.
MIN_INTERVAL_SECONDS = 0.000001
MAX_DURATION_SECONDS = 1000 * 365 * 24 * 3600
DURATION_RANGE = "31536000000 seconds (1000 years: the server computes dates up to the year 9999)"
# A deployment's concurrency limit is a row's INTEGER column: 32 bits on PostgreSQL (what a hosted server
# runs), 64 on SQLite; the smaller one is the limit.
MAX_CONCURRENCY_LIMIT = 2**31 - 1
# Durations in a trigger, in seconds (timedelta in Prefect's trigger models), at any depth.
_TRIGGER_DURATIONS = ("within", "schedule_after", "range", "firing_for")
_PLACEHOLDER_ID = UUID(int=0)  # stands in for the deployment id in desired triggers; apply sets the real one
MAX_RRULE_LENGTH = 6500  # Prefect's limit (about a year of RDATEs)
# Bump when the desired shape of a trigger changes, so that every trigger is compared again once.
_TRIGGER_SHAPE = "1"
FINGERPRINT_TAG = "flow-register-spec:"


def shown(value) -> str:
    """A number as a message quotes it: a huge one by its length (it came from a manifest, possibly hostile)."""
    text = str(value)
    return text if len(text) <= 24 else f"{text[:12]}... ({len(text)} characters)"


def plain(value):
    """JSON-shaped data: YAML dates become ISO strings, as the server would store them."""
    def default(obj):
        if isinstance(obj, (dt.date, dt.datetime, dt.time)):
            return obj.isoformat()
        return str(obj)

    return json.loads(json.dumps(value, default=default))


# -- schedules ---------------------------------------------------------------------------------------

@cache
def _timezones() -> frozenset[str]:
    from zoneinfo import available_timezones  # the list Prefect's schedule models check against

    return frozenset(available_timezones())


def _utc_iso(value) -> str:
    """An anchor date as Prefect stores it: an instant in UTC, 'Z'-suffixed (a naive one is taken as UTC,
    as Prefect's model takes it). ValueError for a date that is not one, or leaves years 1 to 9999 in UTC."""
    if isinstance(value, str):
        value = dt.datetime.fromisoformat(value.replace("Z", "+00:00"))
    elif isinstance(value, dt.date) and not isinstance(value, dt.datetime):
        value = dt.datetime(value.year, value.month, value.day)
    if value.tzinfo is None:
        value = value.replace(tzinfo=dt.timezone.utc)
    try:
        return value.astimezone(dt.timezone.utc).isoformat().replace("+00:00", "Z")
    except OverflowError:  # 0001-01-01T00:00+01:00 is in year 0 in UTC
        raise ValueError("in UTC it is outside the years 1 to 9999, which the server stores") from None


def schedule(spec: dict) -> dict:
    """A manifest schedule as the server stores it (the body Prefect's schedule models dump)."""
    timezone = spec.get("timezone") or None
    if "cron" in spec:
        body = {"cron": spec["cron"], "timezone": timezone, "day_or": spec.get("day_or", True)}
    elif "interval" in spec:
        body = {"interval": float(spec["interval"]), "timezone": timezone or "UTC"}
        if spec.get("anchor_date"):  # else the server picks one; the manifest does not control it
            body["anchor_date"] = _utc_iso(spec["anchor_date"])
    else:
        body = {"rrule": spec["rrule"], "timezone": timezone or "UTC"}
    # active: None when the manifest does not say; the server's (an operator's) flag then stays
    return {"schedule": body, "active": spec.get("active"), "parameters": plain(spec.get("parameters") or {}),
            "slug": spec.get("slug")}


def registered_schedule(raw: dict) -> dict:
    return {"schedule": raw.get("schedule") or {}, "active": raw.get("active", True),
            "parameters": raw.get("parameters") or {}, "slug": raw.get("slug")}


def schedule_problems(spec: dict) -> list[tuple[str, str]]:
    """What Prefect's schedule models would refuse in `spec`, as (field, message)."""
    timezone = spec.get("timezone")
    if timezone is not None and timezone not in _timezones():
        return [("timezone", f"invalid timezone: unknown timezone '{timezone}'; use an IANA name such as "
                             "'Europe/Berlin' or 'UTC'")]
    if "cron" in spec:
        from croniter import croniter

        cron = spec["cron"]
        if not croniter.is_valid(cron):
            return [("cron", f'invalid cron: Invalid cron string: "{cron}"')]
        if any(part.casefold() in ("r", "h") for part in cron.split()):
            return [("cron", f'invalid cron: Random and Hashed expressions are unsupported, received: "{cron}"')]
    elif "interval" in spec:
        if not MIN_INTERVAL_SECONDS <= spec["interval"] <= MAX_DURATION_SECONDS:
            return [("interval", f"interval must be a positive number of seconds, from {MIN_INTERVAL_SECONDS:f} "
                                 f"(a microsecond, the server's resolution) to {DURATION_RANGE}; "
                                 f"got {shown(spec['interval'])}")]
        if spec.get("anchor_date"):
            try:
                _utc_iso(spec["anchor_date"])
            except ValueError as error:
                return [("anchor_date", f"invalid anchor_date: {error}")]
    elif "rrule" in spec:
        import dateutil.rrule

        try:
            dateutil.rrule.rrulestr(spec["rrule"], cache=True)
        except (ValueError, TypeError) as error:
            return [("rrule", f'invalid rrule: Invalid RRule string "{spec["rrule"]}": {error}')]
        if len(spec["rrule"]) > MAX_RRULE_LENGTH:
            return [("rrule", f"invalid rrule: at most {MAX_RRULE_LENGTH} characters; got {len(spec['rrule'])}")]
    return []


def _without_dtstart(rrule: str) -> str:
    """An rrule as written without DTSTART: servers anchor an open rule themselves (and then write it as
    'DTSTART:...' and 'RRULE:...' lines)."""
    lines = [line for line in rrule.splitlines() if not line.upper().startswith("DTSTART")]
    return lines[0][len("RRULE:"):] if len(lines) == 1 and lines[0].upper().startswith("RRULE:") else "\n".join(lines)


def schedule_matches(want: dict, have: dict) -> bool:
    """`have` (the server's) is `want` as far as the manifest controls it (the keys `want` has)."""
    if (want["parameters"], want["slug"]) != (have["parameters"], have["slug"]) or \
            want["active"] not in (None, have["active"]):
        return False
    body, stored = want["schedule"], dict(have["schedule"])
    if "rrule" in body and "DTSTART" not in body["rrule"].upper() and isinstance(stored.get("rrule"), str):
        stored["rrule"] = _without_dtstart(stored["rrule"])  # the server anchors an open rrule itself
    if "anchor_date" in body and stored.get("anchor_date"):
        stored["anchor_date"] = _utc_iso(stored["anchor_date"])
    canonical = lambda v: json.dumps(v, sort_keys=True)  # noqa: E731
    return all(canonical(stored.get(k)) == canonical(v) for k, v in body.items()) and \
        set(stored) - {"anchor_date"} <= set(body)


# -- triggers ----------------------------------------------------------------------------------------

def trigger_fingerprint(spec: dict, deployment: str, index: int, tags: list[str]) -> str:
    """Identifies a desired trigger without Prefect's models: what the manifest said, where, and for which
    Prefect (whose defaults shape the automation)."""
    text = json.dumps([_TRIGGER_SHAPE, _prefect_version(), plain(spec), deployment, index, sorted(tags)],
                      sort_keys=True)
    return FINGERPRINT_TAG + hashlib.sha256(text.encode()).hexdigest()[:16]


@cache
def _prefect_version() -> str:
    from importlib.metadata import PackageNotFoundError, version

    for distribution in ("prefect", "prefect-client"):  # the registrar image ships the client alone
        try:
            return version(distribution)
        except PackageNotFoundError:
            continue
    return "unknown"


def trigger(spec: dict, deployment: str, index: int, tags: list[str]) -> dict:
    """A manifest trigger as the automation `prefect deploy` would make of it, tagged with the owner tags
    and its fingerprint."""
    from prefect.events.schemas.deployment_triggers import DeploymentTriggerTypes
    from pydantic import TypeAdapter

    named = {"name": f"{deployment}__automation_{index}", **plain(spec)}
    model = TypeAdapter(DeploymentTriggerTypes).validate_python(named)
    model.set_deployment_id(_PLACEHOLDER_ID)
    automation = model.as_automation()
    automation.tags = [*tags, trigger_fingerprint(spec, deployment, index, tags)]
    return automation_shape(automation.model_dump(mode="json"))


def _strip_ids(value):
    if isinstance(value, dict):
        return {k: _strip_ids(v) for k, v in value.items() if k != "id"}
    if isinstance(value, list):
        return [_strip_ids(v) for v in value]
    return value


def automation_shape(body: dict) -> dict:
    """An automation without what the server assigns (ids, times) or the deployment it runs."""
    body = {k: v for k, v in body.items() if k not in ("id", "created", "updated", "owner_resource")}
    body["trigger"] = _strip_ids(body.get("trigger") or {})
    for key in ("actions", "actions_on_trigger", "actions_on_resolve"):
        body[key] = [{k: v for k, v in action.items() if k != "deployment_id"} for action in body.get(key) or []]
    return body


def registered_automation(raw: dict) -> dict:
    from prefect.events.schemas.automations import Automation

    try:
        return automation_shape(Automation.model_validate(raw).model_dump(mode="json"))
    except ValueError:  # a shape this Prefect does not know: compare it as it came
        return automation_shape(raw)


_BRANCHES = {"event", "metric", "compound", "sequence", "str", "int", "float", "bool", "dict", "list"}


@cache
def _trigger_validator():
    import jsonschema
    from importlib import resources

    schema = json.loads(resources.files("register.prefect").joinpath("triggers.schema.json").read_text())
    return jsonschema.Draft202012Validator(schema)


def trigger_problems(spec: dict) -> list[tuple[tuple, str]]:
    """What Prefect's deployment-trigger model refuses in `spec`, as (place in the trigger, message).

    A trigger the model's JSON Schema (register/prefect/triggers.schema.json, generated from the pinned Prefect)
    accepts needs no Prefect; one it refuses is judged, and worded, by Prefect's model itself. Durations
    beyond what the server computes with are refused first (its model fails on them, or the server later)."""
    too_long = list(_duration_problems(spec))
    if too_long:
        return too_long
    if _trigger_validator().is_valid(plain(spec)):
        return []
    from prefect.events.schemas.deployment_triggers import DeploymentTriggerTypes
    from pydantic import TypeAdapter, ValidationError

    try:
        TypeAdapter(DeploymentTriggerTypes).validate_python(spec)
    except ValidationError as error:
        # pydantic names union branches in `loc` ('compound', "literal['any','all']"); keep only real keys
        by_place: dict[tuple, list[str]] = {}
        for detail in error.errors():
            loc = tuple(p for p in detail["loc"] if isinstance(p, int) or (p not in _BRANCHES and "[" not in p))
            message = detail["msg"].removeprefix("Value error, ")
            if message not in by_place.setdefault(loc, []):
                by_place[loc].append(message)
        return [(loc, "; or ".join(messages)) for loc, messages in by_place.items()]
    return []


def _duration_problems(value, loc: tuple = ()):
    """Trigger durations beyond MAX_DURATION_SECONDS: the trigger's, its metric query's, and those of the
    triggers a compound or sequence trigger combines (parameters and labels are not durations)."""
    for key, item in value.items() if isinstance(value, dict) else ():
        if key in _TRIGGER_DURATIONS and isinstance(item, (int, float)) and not isinstance(item, bool) \
                and item > MAX_DURATION_SECONDS:
            yield loc + (key,), f"{item} seconds is longer than the server takes: at most {DURATION_RANGE}"
        elif key == "metric":
            yield from _duration_problems(item, loc + (key,))
        elif key == "triggers" and isinstance(item, list):
            for i, inner in enumerate(item):
                yield from _duration_problems(inner, loc + (key, i))


# -- job variables -----------------------------------------------------------------------------------

def job_variable_problems(job_variables: dict, schema: dict | None) -> list[tuple[tuple, str]]:
    """What the server would refuse with a 422, found here, as (place in the variables, message).

    The server checks a deployment's variables against its pool's schema with Prefect's validator
    (server/api/validation.py: validate(..., preprocess=True, ignore_required=True,
    allow_none_with_default=True)), and stops at the first problem. The same rules are applied here with
    jsonschema alone, every problem reported: that validator's module needs jinja2 and sqlalchemy, which
    Prefect's client distribution (the registrar image's) leaves out."""
    from jsonschema.exceptions import best_match

    out = []
    for error in job_variable_errors(job_variables, schema):
        path = tuple(error.absolute_path)
        # Optional variables are `anyOf: [<the type>, null]`; say what the type wants.
        branches = [e for e in error.context or [] if e.validator_value != "null"]
        if error.validator == "anyOf" and branches:
            error = best_match(branches)
            path = tuple(error.absolute_path) or path
        out.append((path, _worded(error)))
    return sorted(set(out), key=str)


def job_variable_errors(job_variables: dict, schema: dict | None) -> list:
    """The server's validator's errors (jsonschema's), at a place in the variables; none if the schema's
    $refs leave the template or loop (the server decides then). tests/unit/test_models.py holds these
    against Prefect's validator on every worker's bundled template."""
    if not schema or not job_variables:
        return []
    from referencing.exceptions import Unresolvable

    validator = _prefect_job_variable_validator(json.dumps(schema))  # key order kept: messages quote the schema
    try:
        return [e for e in validator.iter_errors(job_variables) if e.absolute_path]
    except (Unresolvable, RecursionError):
        return []


def _worded(error) -> str:
    """jsonschema's message, without the schemas that oneOf and anyOf messages quote whole."""
    if error.validator == "oneOf" and "is valid under each of" in error.message:
        if any(isinstance(branch, dict) and "block_type_slug" in branch for branch in error.validator_value):
            return ("Prefect's server refuses a block reference ({'$ref': ...}) here: its check finds that one "
                    "matches both the block's fields and a reference (a known limit of its validator); set the "
                    "block on the work pool's base job template instead, or give the block's fields")
        return f"{_short(error.instance)} matches more than one of the shapes this variable allows"
    if error.validator in ("oneOf", "anyOf"):
        return f"{_short(error.instance)} is not any of the shapes this variable allows"
    return error.message


def _short(value) -> str:
    shown = repr(value)
    return shown if len(shown) <= 80 else shown[:77] + "..."


@cache
def _prefect_job_variable_validator(schema_json: str):
    """A validator of what Prefect's server accepts: its schema preprocessing (pydantic v1's quirks, block
    references by id), then every `required` dropped, with no $ref fetched from the network."""
    import jsonschema
    from referencing import Registry

    schema = json.loads(schema_json)
    _fix_properties(schema.get("properties"), schema.get("required", []))
    for title, definition in list(schema.get("definitions", {}).items()):
        _fix_properties(definition.get("properties"), definition.get("required", []))
        if "block_type_slug" in definition:  # a block may be given as {"$ref": <its id or slug>}
            schema["definitions"][definition.get("title", title)] = {"oneOf": [definition, {
                "type": "object",
                "properties": {"$ref": {"oneOf": [
                    {"type": "string", "format": "uuid"},
                    {"type": "object", "additionalProperties": {"type": "string"}, "minProperties": 1}]}},
                "required": ["$ref"]}]}
    schema = _without_required(schema)
    return jsonschema.Draft202012Validator(schema, registry=Registry(),
                                           format_checker=jsonschema.Draft202012Validator.FORMAT_CHECKER)


def _fix_properties(properties: dict | None, required: list) -> None:
    """Prefect's fixes of pydantic v1 schemas: an optional typed property may be null (with a default too,
    as the server allows); `items` given as a list means `prefixItems`."""
    for key, prop in (properties or {}).items():
        if key not in required and "type" in prop and prop["type"] != "null":
            prop["anyOf"] = [{"type": prop.pop("type")}, {"type": "null"}]
        if isinstance(prop.get("items"), list) and prop["items"] and not prop.get("prefixItems"):
            prop["prefixItems"] = prop.pop("items")
        if "properties" in prop:
            _fix_properties(prop["properties"], prop.get("required", []))


def _without_required(value):
    """Every `required` key dropped, at any depth of nested objects (not inside lists), as Prefect does."""
    if not isinstance(value, dict):
        return value
    return {key: _without_required(item) for key, item in value.items() if key != "required"}
