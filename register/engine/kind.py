"""What a resource kind declares, and the state of one thing of a kind in the shape both sides share."""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass, field
from typing import Callable

STATE_TAG = "flow-register-state:"  # a tag holding the fingerprint of what flow-register wrote last


@dataclass
class Change:
    """One field that differs: the server's value (`before`) and the manifest's (`after`)."""

    field: str
    before: object
    after: object


@dataclass
class Item:
    """One thing of a kind (not a deployment): its key (the name it is found by) and the fields the plan
    compares, as plain JSON. Desired items come from the manifest, registered ones from the server."""

    name: str
    fields: dict
    tags: list[str] = field(default_factory=list)  # the ownership tags among them (not compared by the engine)
    id: str | None = None
    index: int | None = None  # desired side: its position in the manifest's list, for error positions
    last_written: str | None = None  # registered side: the fingerprint flow-register wrote last
    link: str | None = None  # where people reach it, shown in the report (a webhook's URL); not compared

    def fingerprint(self) -> str:
        """A digest of the fields: equal to `last_written` when the manifest did not change since the last write."""
        return hashlib.sha256(json.dumps(self.fields, sort_keys=True).encode()).hexdigest()[:16]

    @property
    def key(self) -> str:
        return self.name


def tagged(item, owner: list[str]) -> bool:
    """Ownership by tags, the default: `item` carries every one of `owner`."""
    return set(owner) <= set(item.tags)


class Unavailable(Exception):
    """Raised by a kind's `read`: this server has no things of the kind (webhooks outside Prefect Cloud). The
    message says so; it is reported at the manifest's section of the kind, before any write."""


@dataclass(frozen=True)
class Kind:
    """A kind of thing the manifest manages: how it is read, compared, written, deleted and owned.

    `desired(manifest, environment)`: the manifest's things of this kind in `environment` (None when the
    manifest has no section for it, so it manages none and prunes none). `read(server, names, owner_tags)`:
    in one request, the registered items named `names` or carrying all of `owner_tags`. `compare(want, have)`:
    the changed fields, as `Change`s. `write(server, action)` creates or updates `action.desired`
    (the server's id back); `delete(server, action)` deletes `action.registered`, a missing one being
    deleted already. Ownership is by tags (`Item.tags`).

    The fields after `delete` are optional, for kinds that need more than that (deployments do); their
    defaults are what a kind of named, tagged things (a variable) needs.
    """

    name: str  # singular, as the report says it: "variable"
    plural: str  # "variables": the manifest's section, the report's and the JSON key
    desired: Callable
    read: Callable
    compare: Callable
    write: Callable
    delete: Callable
    # `owned(item, owner_tags)`: whether a registered thing is this project's and environment's.
    owned: Callable = tagged
    # `takes_over(item)`: whether a registered thing at a desired name that is not owned is taken over (made
    # by another tool, e.g. `prefect deploy`) instead of refused as someone else's (see engine.planner.conflicts).
    takes_over: Callable | None = None
    # `settle(want, have)`: `want` with the runtime state operators own made concrete from `have` (None when
    # not registered), and the notes the plan shows about it.
    settle: Callable | None = None
    # `write` and `delete` get `context=` (engine.applier.Context: the flows the server has, the ids written
    # so far), and `prepare(server, actions, context, concurrency)` runs before a phase of them.
    with_context: bool = False
    prepare: Callable | None = None
    # Its deletions run beside its writes, in one phase (nothing written after them names them).
    deletes_with_writes: bool = False
    # `read_back(server, actions, owner_tags)`: after a write whose answer was lost, the actions whose outcome
    # the server does not show, each with what differs. None: read by name and compared, as planned.
    read_back: Callable | None = None
