"""Planning every kind (register/kinds/): one plan, its actions in dependency order.

Each desired thing gets create, update (naming the changed fields) or unchanged; a registered one this
project owns in this environment that the manifest no longer has is deleted with --prune and kept (and
listed) without it. A thing at a desired name that flow-register did not write for this project and
environment (made by hand, or another project's) is a conflict, refused before any write (`conflicts`),
unless its kind takes such things over (a deployment `prefect deploy` made: `Kind.takes_over`); a variable
or a block someone made by hand is theirs. Nothing here talks to the server or prints.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from register.engine.kind import Change, Kind
from register.manifest.resolve import OWNER_TAG

DRIFT_NOTE = ("drift: changed on the server since flow-register's last deploy, while the manifest stayed as it "
              "was; the manifest's values are put back")
TAKEOVER_NOTE = "registered without flow-register until now: this deploy takes it over (and adds its tags)"


@dataclass
class Action:
    kind: str  # create | update | unchanged | delete
    flow: str
    name: str
    id: str | None = None
    changes: list[Change] = field(default_factory=list)
    desired: object = None  # the kind's desired thing (register.engine.desired.State for a deployment, else an Item)
    registered: object = None  # the kind's registered thing
    notes: list[str] = field(default_factory=list)  # what the plan says beside the changes
    drift: bool = False  # the server changed outside flow-register since its last write
    # The kind of thing it writes (register/kinds/): a deployment (flow and name), or a kind whose things
    # are found by name alone (flow "").
    resource: str = "deployment"

    @property
    def changed(self) -> list[str]:
        return [c.field for c in self.changes]


@dataclass
class Plan:
    project: str
    environment: str
    actions: list[Action] = field(default_factory=list)
    kept: list = field(default_factory=list)  # deployments owned, no longer in the manifest, kept without --prune
    prune: bool = False
    owner: list[str] = field(default_factory=list)  # the ownership tags of what this plan may write or delete
    # Of the other kinds (their plural, e.g. "variables"): owned, no longer in the manifest, kept without --prune
    kept_other: dict[str, list] = field(default_factory=dict)
    # Why the kept ones are not planned, as the report says it: what this plan is made from lacks them
    kept_because: str = "no longer in the manifest"

    def of(self, resource: str) -> list[Action]:
        """The actions on things of one kind ("deployment", "variable"), in the plan's order."""
        return [a for a in self.actions if a.resource == resource]

    def count(self, kind: str) -> int:
        return sum(a.kind == kind for a in self.actions)

    @property
    def changes_anything(self) -> bool:
        return any(a.kind != "unchanged" for a in self.actions)


def owner_of(tags: list[str]) -> tuple[str | None, str | None]:
    """The project and environment a flow-register thing belongs to, from its tags (None, None: made by hand)."""
    if OWNER_TAG not in tags:
        return None, None
    pick = lambda prefix: next((t.split(":", 1)[1] for t in tags if t.startswith(prefix)), None)  # noqa: E731
    return pick("project:"), pick("environment:")


def conflicts(kind: Kind, desired: list, registered: list, owner: list[str]) -> list[tuple]:
    """(desired, registered) pairs at one key where the registered one is not this project's and environment's,
    and not one its kind takes over."""
    by_key = {i.key: i for i in registered}
    return [(want, by_key[want.key]) for want in desired
            if want.key in by_key and not kind.owned(have := by_key[want.key], owner)
            and not (kind.takes_over and kind.takes_over(have))]


def plan_kind(kind: Kind, desired: list, registered: list, *, owner: list[str],
              prune: bool, keep: set | None = None) -> tuple[list[Action], list]:
    """The actions on things of `kind`, in the manifest's order, then deletions; and what is kept. `keep`:
    the keys never pruned (what the manifest has, also what --only left out; `desired`'s by default)."""
    by_key = {i.key: i for i in registered}
    actions = []
    for want in desired:
        have = by_key.get(want.key)
        want, notes = kind.settle(want, have) if kind.settle else (want, [])
        flow = getattr(want, "flow", "")
        if have is None:
            actions.append(Action("create", flow, want.name, desired=want, notes=notes, resource=kind.name))
            continue
        changes = kind.compare(want, have)
        if not kind.owned(have, owner) and kind.takes_over and kind.takes_over(have):
            notes.append(TAKEOVER_NOTE)
        drift = bool(changes) and have.last_written == want.fingerprint()
        if drift:
            notes.insert(0, DRIFT_NOTE)
        actions.append(Action("update" if changes else "unchanged", flow, want.name, id=have.id, changes=changes,
                              desired=want, registered=have, notes=notes, drift=drift, resource=kind.name))
    keep = {w.key for w in desired} if keep is None else keep
    kept = []
    for have in registered:
        if not kind.owned(have, owner) or have.key in keep:
            continue
        if prune:
            actions.append(Action("delete", getattr(have, "flow", ""), have.name, id=have.id, registered=have,
                                  resource=kind.name))
        else:
            kept.append(have)
    return actions, kept


def make_plan(project: str, environment: str, planned: list[tuple[Kind, list[Action], list]], *,
              prune: bool, owner: list[str], kept_because: str | None = None) -> Plan:
    """One plan of every kind's actions, `planned` in dependency order: the writes in that order, then the
    deletions in the reverse one (the last written deleted first). A kind whose deletions run beside its
    writes (`Kind.deletes_with_writes`) keeps them there."""
    plan = Plan(project, environment, prune=prune, owner=owner)
    if kept_because:
        plan.kept_because = kept_because
    writes = [a for kind, actions, _ in planned for a in actions
              if a.kind != "delete" or kind.deletes_with_writes]
    deletes = [a for kind, actions, _ in reversed(planned) for a in actions
               if a.kind == "delete" and not kind.deletes_with_writes]
    plan.actions = writes + deletes
    for kind, _, kept in planned:
        if kind.name == "deployment":
            plan.kept = kept
        else:
            plan.kept_other[kind.plural] = kept
    return plan
