"""`webhooks:` in the manifest: Prefect Cloud webhooks, resolved per environment and checked offline.

A webhook's template turns a request to its URL into a Prefect event. It is Jinja text that renders to
the event's JSON, or a mapping: a static event (its string values may still hold Jinja, such as
`{{ body.model }}`), sent to Cloud as JSON text. Either way the event needs an `event` name and a
`resource` with a `prefect.resource.id` (what Cloud requires of every event). Templates are parsed here,
never rendered: what a sender posts is Cloud's to render.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field

from register.manifest.resolve import ownership_tags
from register.problems import one_of

MAX_TEMPLATE = 100_000  # characters; far above any event template, and below what a request may carry


@dataclass
class Webhook:
    """One Cloud webhook as it should be, in one environment."""

    name: str
    template: str  # the text Cloud stores: Jinja, or a static event's JSON
    index: int  # its position in `webhooks`, for error positions
    description: str = ""
    paused: bool = False  # Cloud's `enabled: false`: it answers requests but makes no events
    service_account_id: str | None = None
    owner: list = field(default_factory=list)  # the ownership tags (kept in its description, see kinds/webhook.py)


def template_text(template) -> str:
    """What Cloud stores for a template: a mapping as indented JSON (readable in Cloud's UI), text as it is."""
    return template if isinstance(template, str) else json.dumps(template, indent=2)


def _merged(entry: dict, environment: str) -> dict | None:
    override = (entry.get("environments") or {}).get(environment) or {}
    merged = {**entry, **{k: v for k, v in override.items() if v is not None}}
    return None if merged.get("enabled", True) is False else merged


def resolve_webhooks(manifest: dict, environment: str) -> list[Webhook] | None:
    """`environment`'s webhooks; None when the manifest has no `webhooks:` (it manages none and prunes none).
    Assumes the schema passed (a part it refused is None, see schema.usable_part)."""
    entries = manifest.get("webhooks")
    if entries is None:
        return None
    out = []
    for index, entry in enumerate(entries):
        if not isinstance(entry, dict) or (merged := _merged(entry, environment)) is None:
            continue
        if "template" not in merged:
            continue
        out.append(Webhook(merged["name"], template_text(merged["template"]), index,
                           description=(merged.get("description") or "").rstrip(),
                           paused=bool(merged.get("paused", False)), service_account_id=merged.get("service_account_id"),
                           owner=ownership_tags(manifest["project"], environment)))
    return out


def _event_problems(event) -> str | None:
    """What a static event lacks, in a sentence; None when it has what Cloud requires."""
    if not isinstance(event, dict):
        return "it must be a JSON object (an event)"
    missing = []
    if not isinstance(event.get("event"), str) or not event.get("event"):
        missing.append("'event' (the event's name, e.g. 'stripe.payment.succeeded')")
    resource = event.get("resource")
    if not isinstance(resource, dict) or not isinstance(resource.get("prefect.resource.id"), str) \
            or not resource.get("prefect.resource.id"):
        missing.append("'resource' with a 'prefect.resource.id' (e.g. {prefect.resource.id: stripe.account})")
    return f"the event needs {' and '.join(missing)}" if missing else None


def _jinja_problem(text: str) -> str | None:
    """Jinja's own complaint about the template's syntax, with the template's line; parsed, never rendered."""
    import jinja2

    try:
        jinja2.Environment().parse(text)
    except jinja2.TemplateSyntaxError as error:
        return f"it is not valid Jinja: {error.message} (line {error.lineno} of the template)"
    return None


def check(report, data: dict, declared: list[str]) -> None:
    """What the schema cannot say of `webhooks`: names unique, environments declared, templates that Cloud
    can render into an event."""
    seen: dict[str, int] = {}
    for index, entry in enumerate(data.get("webhooks") or []):
        if not isinstance(entry, dict):
            continue
        name = entry.get("name")
        if name in seen:
            report.at(("webhooks", index, "name"), f"webhook name '{name}' is already used by webhooks[{seen[name]}]; "
                                                   "names must be unique", "duplicate-name")
        seen.setdefault(name, index)
        templates = [(("webhooks", index, "template"), entry.get("template"))]
        for env, override in (entry.get("environments") or {}).items():
            if env not in declared:
                report.at(("webhooks", index, "environments", env),
                          f"environment '{env}' is not declared; declared environments are {one_of(declared)}",
                          "unknown-environment", key=True)
            if isinstance(override, dict) and override.get("template") is not None:
                templates.append((("webhooks", index, "environments", env, "template"), override["template"]))
        for path, template in templates:
            if template is None:
                continue
            if problem := template_problem(template):
                report.at(path, f"webhook '{name}': the template is wrong: {problem}", "webhook-template")


def template_problem(template) -> str | None:
    """Why Cloud could not make an event of `template` (a mapping or Jinja text), or None."""
    text = template_text(template)
    if len(text) > MAX_TEMPLATE:
        return f"it is {len(text)} characters; at most {MAX_TEMPLATE}"
    if not isinstance(template, str):
        return _event_problems(template) or _jinja_problem(text)
    if not text.strip():
        return "it is empty; write the event as a mapping, or Jinja that renders to the event's JSON"
    if jinja := _jinja_problem(text):
        return jinja
    if "{{" in text or "{%" in text:
        return None  # rendered by Cloud from each request: its JSON is known only then
    try:
        event = json.loads(text)
    except ValueError as error:
        return (f"it has no Jinja, so it must be the event's JSON, and is not: {error.msg} (line {error.lineno} of "
                "the template); or write the template as a mapping")
    return _event_problems(event)
