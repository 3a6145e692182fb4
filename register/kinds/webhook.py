"""Prefect Cloud webhooks: `webhooks:` in the manifest (register/manifest/webhooks.py).

A webhook has no tags, so whose it is is written where Cloud keeps it and people see it: the last line of
its description, `[managed-by:flow-register project:<project> environment:<env> flow-register-state:<digest>]`,
the same ownership tags a deployment carries and the fingerprint of what flow-register wrote (a hand edit
is drift). No record apart from the webhook is kept: a record could disagree with the workspace, the line
cannot. A webhook without the line (made by hand), or whose line names another project or environment, is
never overwritten (register/engine/planner.py, `conflicts`) and never pruned. Someone who deletes the line by
hand turns the webhook into a hand-made one: the next plan refuses it until the line is put back or the
webhook deleted.

Compared: description (the manifest's part, above the line), paused (Cloud's `enabled`, inverted),
template (as text; two JSON texts of one event are equal however they are laid out) and service account.
The URL Cloud gives a webhook (its slug under the API host's /hooks/) is the item's `link`, in the report.
"""

from __future__ import annotations

import json
import re

from register.engine.kind import STATE_TAG, Change, Item, Kind, Unavailable
from register.manifest.resolve import OWNER_TAG
from register.manifest.webhooks import Webhook
from register.server import ServerError

# The ownership line: the last line of the description, whatever the manifest's description says above it.
_OWNER_LINE = re.compile(r"(?:\A|\n\n?)\[(" + re.escape(OWNER_TAG) + r"(?: [^\s\]]+)*)\]\s*\Z")
FIELDS = ("description", "paused", "template", "service_account_id")


def desired(manifest, environment: str) -> list[Item] | None:
    webhooks = manifest.webhooks(environment)
    return None if webhooks is None else items(webhooks)


def items(webhooks: list[Webhook]) -> list[Item]:
    return [Item(w.name, {"description": w.description, "paused": w.paused, "template": w.template,
                          "service_account_id": w.service_account_id}, tags=list(w.owner), index=w.index)
            for w in webhooks]


def registered(raw: dict, url: str | None) -> Item:
    description = raw.get("description") or ""
    tags: list[str] = []
    written = None
    if match := _OWNER_LINE.search(description):
        description = description[:match.start()]
        tags = match.group(1).split()
        written = next((t.removeprefix(STATE_TAG) for t in tags if t.startswith(STATE_TAG)), None)
        tags = [t for t in tags if not t.startswith(STATE_TAG)]
    account = raw.get("service_account_id")
    return Item(str(raw.get("name")), {"description": description, "paused": raw.get("enabled") is False,
                                       "template": raw.get("template") if isinstance(raw.get("template"), str)
                                       else json.dumps(raw.get("template")),
                                       "service_account_id": str(account) if account else None},
                tags=tags, id=str(raw["id"]), last_written=written, link=url)


def read(server, names: list[str], owner_tags: list[str]) -> list[Item]:
    """The workspace's webhooks named like a desired one or owned by `owner_tags`. Of two with one name,
    one not this project's comes last, so that the plan sees it and refuses (a conflict), whatever the order."""
    try:
        raw = server.webhooks()
    except ServerError as error:
        if error.status in (404, 405):
            raise Unavailable(f"webhooks need Prefect Cloud: {server.url} has no webhooks (it answered {error.status} "
                              "to POST /webhooks/filter, as an open-source Prefect server does); deploy this manifest "
                              "to a Cloud workspace, or leave `webhooks:` out for this server") from None
        raise
    found = [registered(r, server.webhook_url(r["slug"]) if r.get("slug") else None) for r in raw]
    wanted = set(names)
    mine = lambda item: set(owner_tags) <= set(item.tags)  # noqa: E731
    return sorted((i for i in found if i.name in wanted or mine(i)), key=lambda i: not mine(i))


def _template_value(text):
    """A template for comparing and showing: a JSON text as its value, laid out one way; Jinja as it is."""
    try:
        return json.loads(text)
    except (TypeError, ValueError):
        return text


def compare(want: Item, have: Item) -> list:
    changes = []
    for name in FIELDS:
        before, after = have.fields[name], want.fields[name]
        if name == "template":
            before, after = _template_value(before), _template_value(after)
            if before != after:  # shown as text, so the plan's diff is of lines as Cloud shows them
                show = lambda v: v if isinstance(v, str) else json.dumps(v, indent=2)  # noqa: E731
                changes.append(Change(name, show(before), show(after)))
            continue
        if name == "service_account_id":
            before, after = (before or "").lower() or None, (after or "").lower() or None
        if before != after:
            changes.append(Change(name, before, after))
    return changes


def payload(item: Item) -> dict:
    """The webhook as Cloud takes it (create and PUT alike), with the ownership line under its description."""
    line = "[" + " ".join([*item.tags, STATE_TAG + item.fingerprint()]) + "]"
    description = item.fields["description"].rstrip()
    return {"name": item.name, "description": f"{description}\n\n{line}" if description else line,
            "enabled": not item.fields["paused"], "template": item.fields["template"],
            "service_account_id": item.fields["service_account_id"]}


def write(server, action) -> str | None:
    item = action.desired
    if action.kind == "create":
        made = server.create_webhook(payload(item))
        # Cloud names the URL only now: the report gives it (it is what the sending system is told to call)
        item.link = server.webhook_url(made["slug"]) if made.get("slug") else None
        return str(made["id"])
    server.update_webhook(action.id, payload(item))
    return action.id


def delete(server, action) -> None:
    server.delete_webhook(action.id, action.name)


KIND = Kind("webhook", "webhooks", desired=desired, read=read, compare=compare, write=write, delete=delete)
