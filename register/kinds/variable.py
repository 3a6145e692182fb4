"""Prefect variables: `variables:` in the manifest, owned by tags like deployments.

A variable's value and tags are compared; the ownership tags say whose it is, and a tag holding the
fingerprint of what flow-register wrote tells a hand edit (drift) from a change of the manifest. A
variable of the same name made by hand, or by another project or environment, is never overwritten
(see register/engine/planner.py, `conflicts`).
"""

from __future__ import annotations

import json

from register.prefect import models
from register.engine.kind import STATE_TAG, Change, Item, Kind
from register.manifest.resolve import Variable


def desired(manifest, environment: str) -> list[Item] | None:
    variables = manifest.variables(environment)
    return None if variables is None else items(variables)


def items(variables: list[Variable]) -> list[Item]:
    return [Item(v.name, {"value": models.plain(v.value), "tags": sorted(set(v.tags))}, tags=list(v.tags),
                 index=v.index) for v in variables]


def registered(raw: dict) -> Item:
    tags = list(raw.get("tags") or [])
    written = next((t.removeprefix(STATE_TAG) for t in tags if t.startswith(STATE_TAG)), None)
    tags = [t for t in tags if not t.startswith(STATE_TAG)]
    return Item(raw["name"], {"value": raw.get("value"), "tags": sorted(set(tags))}, tags=tags, id=str(raw["id"]),
                last_written=written)


def read(server, names: list[str], owner_tags: list[str]) -> list[Item]:
    return [registered(raw) for raw in server.variables(names, owner_tags)]


def compare(want: Item, have: Item) -> list:
    same = lambda a, b: json.dumps(a, sort_keys=True) == json.dumps(b, sort_keys=True)  # noqa: E731
    return [Change(name, have.fields[name], want.fields[name]) for name in ("value", "tags")
            if not same(want.fields[name], have.fields[name])]


def _payload(item: Item) -> dict:
    return {"name": item.name, "value": item.fields["value"],
            "tags": [*item.fields["tags"], STATE_TAG + item.fingerprint()]}


def write(server, action) -> str | None:
    if action.kind == "create":
        return server.create_variable(_payload(action.desired))
    server.update_variable(_payload(action.desired))
    return action.id


def delete(server, action) -> None:
    server.delete_variable(action.name)


KIND = Kind("variable", "variables", desired=desired, read=read, compare=compare, write=write, delete=delete)
