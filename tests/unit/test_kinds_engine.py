"""The engine of kinds: one plan of every kind in dependency order, for kinds declared as they are today
(a module with name, plural, desired, read, compare, write, delete) and for deployments, planned by the
same planner."""

from __future__ import annotations

import uuid

from register.engine import planner
from register.engine.kind import STATE_TAG, Change, Item, Kind
from register.kinds import AFTER_DEPLOYMENTS, BEFORE_DEPLOYMENTS, BY_NAME, DEPLOYMENTS, IN_ORDER, KINDS, variable
from register.kinds.deployment import registered
from register.report import formats as report

OWNER = ["managed-by:flow-register", "project:p", "environment:dev"]


def _compare(want: Item, have: Item) -> list:
    return [Change(k, have.fields.get(k), v) for k, v in want.fields.items() if have.fields.get(k) != v]


# A kind written against the protocol as it was before deployments joined the engine: the seven fields only.
BLOCK = Kind("block", "blocks", desired=lambda manifest, environment: None, read=lambda server, names, owner: [],
             compare=_compare, write=lambda server, action: "id", delete=lambda server, action: None)


def block(name: str, value: str, *, tags=OWNER, written=None) -> Item:
    return Item(name, {"value": value}, tags=list(tags), id=f"id-{name}", last_written=written)


def test_a_kind_declared_with_the_seven_fields_of_today_is_planned_owned_and_pruned_by_the_engine():
    want = [block("new", "n"), block("same", "s"), block("edited", "e")]
    have = [block("same", "s"), block("edited", "by hand", written=want[2].fingerprint()), block("gone", "g"),
            block("by-hand", "h", tags=["ops"])]
    actions, kept = planner.plan_kind(BLOCK, want, have, owner=OWNER, prune=True)
    assert [(a.kind, a.name, a.changed, a.drift, a.resource) for a in actions] == [
        ("create", "new", [], False, "block"), ("unchanged", "same", [], False, "block"),
        ("update", "edited", ["value"], True, "block"), ("delete", "gone", [], False, "block")]
    assert actions[2].notes == [planner.DRIFT_NOTE] and kept == []
    # someone's block at a name the manifest wants is refused, never taken over (a deployment is taken over)
    assert [(w.name, h.name) for w, h in planner.conflicts(BLOCK, [block("by-hand", "x")], have, OWNER)] == \
        [("by-hand", "by-hand")]


def deployment_on_server(name: str, tags: list[str]):
    raw = {"id": str(uuid.uuid4()), "name": name, "flow_id": "x", "work_pool_name": "pool", "tags": tags}
    return registered(raw, "f", [], OWNER)


def test_one_plan_writes_what_deployments_name_first_and_deletes_in_reverse_order_last():
    blocks = planner.plan_kind(BLOCK, [block("creds", "c")], [block("old-creds", "o")], owner=OWNER, prune=True)
    variables = planner.plan_kind(
        variable.KIND, variable.items([]),
        [variable.registered({"id": "v", "name": "old", "value": 1, "tags": [*OWNER, STATE_TAG + "x"]})],
        owner=OWNER, prune=True)
    deployments = planner.plan_kind(DEPLOYMENTS, [], [deployment_on_server("gone", OWNER)], owner=OWNER, prune=True,
                                    keep=set())
    plan = planner.make_plan("p", "dev", [(BLOCK, *blocks), (variable.KIND, *variables), (DEPLOYMENTS, *deployments)],
                             prune=True, owner=OWNER)
    # deployments' deletions go with their writes (nothing after them names them); the others' last, reversed
    assert [(a.resource, a.kind, a.name) for a in plan.actions] == [
        ("block", "create", "creds"), ("deployment", "delete", "gone"), ("variable", "delete", "old"),
        ("block", "delete", "old-creds")]
    assert report.summary_line(report.Outcome(plan, "http://server/api", dry_run=True)) == \
        "Plan: 1 to create, 0 to update, 0 unchanged, 3 to delete. Dry run: nothing was written " \
        "(0 requests: 0 reads, 0 writes)."


def test_every_kind_is_registered_once_in_dependency_order():
    assert IN_ORDER == (*BEFORE_DEPLOYMENTS, DEPLOYMENTS, *AFTER_DEPLOYMENTS)
    assert len({k.name for k in IN_ORDER}) == len({k.plural for k in IN_ORDER}) == len(IN_ORDER)
    assert BY_NAME == {k.name: k for k in IN_ORDER}
    assert list(KINDS.values()) == [k for k in IN_ORDER if k is not DEPLOYMENTS]
