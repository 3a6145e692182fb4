"""The planner (desired vs registered, no server) and the plan's reports, on hand-made states."""

from __future__ import annotations

import copy
import uuid

from register.apply import automation_payload
from register.plan import State, conflicts, make_plan, registered, schedule, trigger
from register.report import plan as report

OWNER = ["managed-by:flow-register", "project:p", "environment:dev"]


def state(name="a", flow="f", **fields) -> State:
    base = {"work_pool": "pool", "work_queue": "default", "job_variables": {}, "parameters": {},
            "parameter_schema": {"type": "object", "properties": {}}, "schedules": [], "triggers": [],
            "tags": list(OWNER), "description": None, "entrypoint": "flows/f.py:f", "pull_steps": None,
            "concurrency_limit": None, "paused": False, "version": None}
    base.update(fields)
    return State(flow, name, base, manifest_name=name)


def on_server(desired: State, **changes) -> dict:
    """What the server's /deployments/filter returns for `desired` once registered."""
    f = desired.fields
    raw = {"id": str(uuid.uuid4()), "name": desired.name, "flow_id": "x", "work_pool_name": f["work_pool"],
           "work_queue_name": f["work_queue"], "job_variables": f["job_variables"], "parameters": f["parameters"],
           "parameter_openapi_schema": f["parameter_schema"], "tags": f["tags"], "description": f["description"],
           "entrypoint": f["entrypoint"], "pull_steps": f["pull_steps"], "paused": f["paused"],
           "version": f["version"], "concurrency_limit": None,
           "global_concurrency_limit": {"limit": f["concurrency_limit"]} if f["concurrency_limit"] else None,
           "schedules": [{"id": str(uuid.uuid4()), "deployment_id": "x", **copy.deepcopy(s)} for s in f["schedules"]]}
    raw.update(changes)
    return raw


def plan_of(desired: list[State], raws: list[dict], automations=None, *, prune=False, keys=None):
    have = [registered(r, "f", (automations or {}).get(r["id"], []), OWNER) for r in raws]
    return make_plan("p", "dev", desired, have, manifest_keys=keys or {d.key for d in desired}, prune=prune)


def test_a_deployment_the_server_has_as_desired_is_unchanged():
    want = state(schedules=[schedule({"cron": "0 6 * * *", "timezone": "Europe/Berlin"}),
                            schedule({"interval": 3600})],
                 concurrency_limit=2, pull_steps=[{"step": {"directory": "/x"}}])
    raw = on_server(want)
    # the server picks the anchor of an interval schedule the manifest left open, and lists in its own order
    raw["schedules"][1]["schedule"]["anchor_date"] = "2026-01-01T00:00:00Z"
    raw["schedules"].reverse()
    raw["tags"] = list(reversed(raw["tags"]))
    plan = plan_of([want], [raw])
    assert [(a.kind, a.changed) for a in plan.actions] == [("unchanged", [])]


def test_each_changed_field_is_named():
    want = state(parameters={"region": "eu"}, description="d", version="v2", paused=True)
    raw = on_server(want, parameters={"region": "us"}, description=None, version="v1", paused=False)
    plan = plan_of([want], [raw])
    assert plan.actions[0].kind == "update"
    assert plan.actions[0].changed == ["parameters", "description", "paused", "version"]


def test_an_anchor_date_the_manifest_sets_is_compared():
    want = state(schedules=[schedule({"interval": 60, "anchor_date": "2024-01-01T00:00:00Z"})])
    raw = on_server(want)
    raw["schedules"][0]["schedule"]["anchor_date"] = "2025-01-01T00:00:00Z"
    assert plan_of([want], [raw]).actions[0].changed == ["schedules"]


def test_triggers_compare_with_the_automations_the_server_returns():
    spec = {"type": "event", "expect": ["data.arrived"], "parameters": {"region": "us"}}
    want = state(triggers=[trigger(spec, "a", 1, OWNER)])
    raw = on_server(want)
    automation = automation_payload(want.fields["triggers"][0], raw["id"])
    automation.pop("owner_resource")
    automation.update(id=str(uuid.uuid4()), created="2026-01-01T00:00:00Z", updated="2026-01-01T00:00:00Z")
    automation["trigger"]["id"] = str(uuid.uuid4())
    assert plan_of([want], [raw], {raw["id"]: [automation]}).actions[0].kind == "unchanged"

    changed = state(triggers=[trigger({**spec, "expect": ["data.late"]}, "a", 1, OWNER)])
    action = plan_of([changed], [raw], {raw["id"]: [automation]}).actions[0]
    assert action.changed == ["triggers"] and action.writes_triggers and not action.writes_deployment


def test_owned_deployments_missing_from_the_manifest_are_kept_or_pruned():
    keep, gone = state("keep"), state("gone")
    raws = [on_server(keep), on_server(gone)]
    kept = plan_of([keep], raws)
    assert [a.kind for a in kept.actions] == ["unchanged"] and [s.name for s in kept.kept] == ["gone"]
    pruned = plan_of([keep], raws, prune=True)
    assert [(a.kind, a.name) for a in pruned.actions] == [("unchanged", "keep"), ("delete", "gone")]
    # --only: the manifest still has `gone`, it was just not asked for
    only = plan_of([keep], raws, prune=True, keys={keep.key, gone.key})
    assert [a.kind for a in only.actions] == ["unchanged"] and only.kept == []


def test_what_flow_register_does_not_own_is_never_deleted():
    other_env = on_server(state("x"), tags=["managed-by:flow-register", "project:p", "environment:prod"])
    by_hand = on_server(state("y"), tags=["project:p"])
    plan = plan_of([], [other_env, by_hand], prune=True)
    assert plan.actions == [] and plan.kept == []


def test_a_name_owned_by_another_environment_is_a_conflict_and_one_made_by_hand_is_taken_over():
    want = state("a")
    theirs = on_server(want, tags=["managed-by:flow-register", "project:p", "environment:prod"])
    assert [s.name for s in conflicts([want.key], [registered(theirs, "f", [], OWNER)])] == ["a"]
    by_hand = on_server(want, tags=["team"])
    action = plan_of([want], [by_hand]).actions[0]
    assert action.kind == "update" and action.changed == ["tags"] and "takes it over" in action.note


def test_the_table_names_each_change():
    want = state("daily", job_variables={"mem_limit": "1024m"}, version="v2")
    raw = on_server(want, job_variables={"mem_limit": "512m", "old": 1}, version="v1")
    outcome = report.Outcome(plan_of([want, state("new")], [raw]), "http://server/api", dry_run=True, reads=4)
    assert report.text(outcome) == "\n".join([
        "Plan for project 'p', environment 'dev', on http://server/api",
        "",
        "  ACTION  DEPLOYMENT  FLOW  WORK POOL  CHANGES",
        "  update  daily       f     pool       job_variables, version",
        "          job_variables.mem_limit: '512m' -> '1024m'",
        "          job_variables.old: 1 -> (unset)",
        "          version: 'v1' -> 'v2'",
        "  create  new         f     pool",
        "",
        "Plan: 1 to create, 1 to update, 0 unchanged, 0 to delete. Dry run: nothing was written "
        "(4 requests: 4 reads, 0 writes).",
    ])
    outputs = report.github_outputs(outcome)
    assert (outputs["created"], outputs["updated"], outputs["unchanged"], outputs["deleted"]) == ("1", "1", "0", "0")
