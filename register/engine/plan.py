"""Planning the kinds declared in register/kinds/ (deployments are planned by register/plan.py), and
putting every kind's actions into one plan in dependency order.

Each desired thing gets create, update (naming the changed fields) or unchanged; a registered one this
project owns in this environment that the manifest no longer has is deleted with --prune and kept (and
listed) without it. A thing at a desired name that flow-register did not write for this project and
environment (made by hand, or another project's) is a conflict, refused before any write (`conflicts`):
unlike a deployment, which `prefect deploy` may have made and flow-register takes over, a variable or a
block someone made by hand is theirs. Nothing here talks to the server or prints.
"""

from __future__ import annotations

from register.engine.kind import Item, Kind
from register.manifest.resolve import OWNER_TAG
from register.plan import Action, Plan

DRIFT_NOTE = ("drift: changed on the server since flow-register's last deploy, while the manifest stayed as it "
              "was; the manifest's values are put back")


def owned(item: Item, owner: list[str]) -> bool:
    return set(owner) <= set(item.tags)


def owner_of(item: Item) -> tuple[str | None, str | None]:
    """The project and environment a flow-register thing belongs to, from its tags (None, None: made by hand)."""
    if OWNER_TAG not in item.tags:
        return None, None
    pick = lambda prefix: next((t.split(":", 1)[1] for t in item.tags if t.startswith(prefix)), None)  # noqa: E731
    return pick("project:"), pick("environment:")


def conflicts(desired: list[Item], registered: list[Item], owner: list[str]) -> list[tuple[Item, Item]]:
    """(desired, registered) pairs at one name where the registered one is not this project's and environment's."""
    by_key = {i.key: i for i in registered}
    return [(want, by_key[want.key]) for want in desired
            if want.key in by_key and not owned(by_key[want.key], owner)]


def plan_kind(kind: Kind, desired: list[Item], registered: list[Item], *, owner: list[str],
              prune: bool) -> tuple[list[Action], list[Item]]:
    """The actions on things of `kind`, in the manifest's order, then deletions; and what is kept."""
    by_key = {i.key: i for i in registered}
    actions = []
    for want in desired:
        have = by_key.get(want.key)
        if have is None:
            actions.append(Action("create", "", want.name, desired=want, resource=kind.name))
            continue
        changes = kind.compare(want, have)
        drift = bool(changes) and have.last_written == want.fingerprint()
        actions.append(Action("update" if changes else "unchanged", "", want.name, id=have.id, changes=changes,
                              desired=want, registered=have, notes=[DRIFT_NOTE] if drift else [], drift=drift,
                              resource=kind.name))
    wanted = {w.key for w in desired}
    kept = []
    for have in registered:
        if not owned(have, owner) or have.key in wanted:
            continue
        if prune:
            actions.append(Action("delete", "", have.name, id=have.id, registered=have, resource=kind.name))
        else:
            kept.append(have)
    return actions, kept


def combine(plan: Plan, planned: list[tuple[Kind, list[Action], list[Item]]]) -> Plan:
    """`plan` (the deployments') with the other kinds' actions, `planned` in dependency order: their writes
    before the deployments, their deletions after, the last written deleted first."""
    writes = [a for _, actions, _ in planned for a in actions if a.kind != "delete"]
    deletes = [a for _, actions, _ in reversed(planned) for a in actions if a.kind == "delete"]
    plan.actions = writes + plan.actions + deletes
    for kind, _, kept in planned:
        plan.kept_other[kind.plural] = kept
    return plan
