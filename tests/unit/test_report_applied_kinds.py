"""The JSON report's `applied` says, of each thing, whether this run wrote it: a variable and a webhook (or a
block) of one name are two things, and a write of one is not a write of the other."""

from __future__ import annotations

from register.engine.applier import ApplyResult, Step
from register.engine.desired import State
from register.engine.kind import Change, Item
from register.engine.planner import Action, Plan
from register.report import formats as report

OWNER = ["managed-by:flow-register", "project:payments", "environment:dev"]


def test_a_write_of_a_webhook_is_not_reported_as_a_write_of_the_variable_of_its_name():
    plan = Plan("payments", "dev", owner=OWNER)
    variable = Item("reconcile", {"value": 1, "tags": []}, tags=OWNER, id="v1")
    webhook = Item("reconcile", {"description": "", "paused": False, "template": "{}", "service_account_id": None},
                   tags=OWNER, id="w1")
    block = Item("secret/reconcile", {"data": {}, "secret_fields": []}, tags=OWNER, id="b1")
    deployment = State("reconcile", "reconcile", {"work_pool": "pool", "tags": OWNER}, id="d1")
    plan.actions = [
        Action("unchanged", "", "reconcile", id="v1", desired=variable, registered=variable, resource="variable"),
        Action("unchanged", "", "secret/reconcile", id="b1", desired=block, registered=block, resource="block"),
        Action("update", "", "reconcile", id="w1", changes=[Change("paused", True, False)], desired=webhook,
               registered=webhook, resource="webhook"),
        Action("unchanged", "reconcile", "reconcile", id="d1", desired=deployment, registered=deployment),
    ]
    result = ApplyResult(applied=[Step("updated", "", "reconcile", "w1", resource="webhook")])
    shown = report.as_json(report.Outcome(plan, "http://server/api", result=result, writes=1))
    assert [(v["name"], v["applied"]) for v in shown["variables"]] == [("reconcile", False)]
    assert [(w["name"], w["applied"]) for w in shown["webhooks"]] == [("reconcile", True)]
    assert [(b["name"], b["applied"]) for b in shown["blocks"]] == [("secret/reconcile", False)]
    assert [(d["name"], d["applied"]) for d in shown["deployments"]] == [("reconcile", False)]
    assert shown["applied"] == [{"action": "updated", "name": "reconcile", "flow": "", "id": "w1", "kind": "webhook"}]


def test_a_failed_apply_says_the_kind_of_what_failed_and_of_each_thing_not_attempted():
    plan = Plan("payments", "dev", owner=OWNER)
    variable = Item("reconcile", {"value": 1, "tags": []}, tags=OWNER)
    webhook = Item("reconcile", {"description": "", "paused": False, "template": "{}", "service_account_id": None},
                   tags=OWNER)
    deployment = State("reconcile", "nightly", {"work_pool": "pool", "tags": OWNER})
    failing = Action("create", "", "reconcile", desired=variable, resource="variable")
    later = [Action("create", "", "reconcile", desired=webhook, resource="webhook"),
             Action("create", "reconcile", "nightly", desired=deployment)]
    plan.actions = [failing, *later]
    result = ApplyResult(failed=failing, error="the Prefect server failed: 500", not_attempted=later)
    failed = report.as_json(report.Outcome(plan, "http://server/api", result=result))["failed"]
    assert failed["kind"] == "variable" and failed["name"] == "reconcile"
    assert failed["not_attempted"] == ["reconcile", "nightly"]  # names, as before
    assert failed["not_attempted_items"] == [{"kind": "webhook", "name": "reconcile"},
                                             {"kind": "deployment", "name": "nightly", "flow": "reconcile"}]
