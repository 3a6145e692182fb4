"""What a resource kind declares, and the state of one thing of a kind in the shape both sides share."""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass, field
from typing import Callable

STATE_TAG = "flow-register-state:"  # a tag holding the fingerprint of what flow-register wrote last


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


class Unavailable(Exception):
    """Raised by a kind's `read`: this server has no things of the kind (webhooks outside Prefect Cloud). The
    message says so; it is reported at the manifest's section of the kind, before any write."""


@dataclass(frozen=True)
class Kind:
    """A kind of thing the manifest manages: how it is read, compared, written, deleted and owned.

    `desired(manifest, environment)`: the manifest's things of this kind in `environment` (None when the
    manifest has no section for it, so it manages none and prunes none). `read(server, names, owner_tags)`:
    in one request, the registered items named `names` or carrying all of `owner_tags`. `compare(want, have)`:
    the changed fields, as register.plan.Change. `write(server, action)` creates or updates `action.desired`
    (the server's id back); `delete(server, action)` deletes `action.registered`, a missing one being
    deleted already. Ownership is by tags (`Item.tags`).
    """

    name: str  # singular, as the report says it: "variable"
    plural: str  # "variables": the manifest's section, the report's and the JSON key
    desired: Callable
    read: Callable
    compare: Callable
    write: Callable
    delete: Callable
