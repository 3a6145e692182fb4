"""The planner (desired vs registered, no server) and the plan's reports, on hand-made states."""

from __future__ import annotations

import copy
import uuid

from register.engine.desired import State, Trigger, automation_body
from register.prefect.models import schedule
from register.engine.planner import conflicts
from register.kinds.deployment import KIND, make_plan, registered, writes_deployment, writes_triggers
from register.report import formats as report

OWNER = ["managed-by:flow-register", "project:p", "environment:dev"]


def state(name="a", flow="f", triggers=(), **fields) -> State:
    """A desired state; `triggers` are manifest trigger specs."""
    wanted = [Trigger(spec, name, i, tuple(OWNER)) for i, spec in enumerate(triggers, start=1)]
    base = {"work_pool": "pool", "work_queue": "default", "job_variables": {}, "parameters": {},
            "parameter_schema": {"type": "object", "properties": {}}, "schedules": [], "triggers": [],
            "tags": list(OWNER), "description": None, "entrypoint": "flows/f.py:f", "pull_steps": None,
            "concurrency_limit": None, "concurrency_options": None, "enforce_parameter_schema": True,
            "paused": False, "version": None}
    base.update(fields, triggers=[t.fingerprint for t in wanted])
    return State(flow, name, base, manifest_name=name, triggers=wanted)


def on_server(desired: State, **changes) -> dict:
    """What the server's /deployments/filter returns for `desired` once registered."""
    f = desired.fields
    raw = {"id": str(uuid.uuid4()), "name": desired.name, "flow_id": "x", "work_pool_name": f["work_pool"],
           "work_queue_name": f["work_queue"], "job_variables": f["job_variables"], "parameters": f["parameters"],
           "parameter_openapi_schema": f["parameter_schema"], "tags": f["tags"], "description": f["description"],
           "entrypoint": f["entrypoint"], "pull_steps": f["pull_steps"], "paused": f["paused"],
           "version": f["version"], "concurrency_limit": None, "concurrency_options": f["concurrency_options"],
           "enforce_parameter_schema": f["enforce_parameter_schema"],
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


def server_automation(want: State, deployment_id: str, *, tags=None) -> dict:
    """What /automations/filter returns for `want`'s first trigger once registered."""
    automation = automation_body(want.triggers[0].automation, deployment_id)
    automation.update(id=str(uuid.uuid4()), created="2026-01-01T00:00:00Z", updated="2026-01-01T00:00:00Z")
    automation["trigger"]["id"] = str(uuid.uuid4())
    if tags is not None:
        automation["tags"] = tags
    return automation


def test_triggers_compare_with_the_automations_the_server_returns():
    spec = {"type": "event", "expect": ["data.arrived"], "parameters": {"region": "us"}}
    want = state(triggers=[spec])
    raw = on_server(want)
    automation = server_automation(want, raw["id"])
    assert plan_of([want], [raw], {raw["id"]: [automation]}).actions[0].kind == "unchanged"

    changed = state(triggers=[{**spec, "expect": ["data.late"]}])
    action = plan_of([changed], [raw], {raw["id"]: [automation]}).actions[0]
    assert action.changed == ["triggers"] and writes_triggers(action) and not writes_deployment(action)


def test_a_trigger_prefect_deploy_made_is_the_same_trigger():
    """Taking over: the automation `prefect deploy` made has no flow-register tags, and is the same."""
    spec = {"type": "event", "expect": ["data.arrived"]}
    want = state(triggers=[spec])
    raw = on_server(want)
    theirs = server_automation(want, raw["id"], tags=[])
    assert plan_of([want], [raw], {raw["id"]: [theirs]}).actions[0].kind == "unchanged"


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
    assert [s.name for _, s in conflicts(KIND, [want], [registered(theirs, "f", [], OWNER)], OWNER)] == ["a"]
    by_hand = on_server(want, tags=["team"])
    action = plan_of([want], [by_hand]).actions[0]
    assert action.kind == "update" and action.changed == ["tags"] and any("takes it over" in n for n in action.notes)


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


def test_the_summary_says_how_many_requests_a_busy_server_made_send_again():
    plan = plan_of([state("new")], [])
    once = report.Outcome(plan, "http://server/api", dry_run=True, reads=4, retries=1, busy_window=1)
    assert "(4 requests: 4 reads, 0 writes, 1 sent again when the server was busy, down to 1 at once)" in report.text(once)
    twice = report.Outcome(plan, "http://server/api", dry_run=True, reads=4, retries=3, busy_window=2)
    assert "3 sent again when the server was busy, down to 2 at once" in report.text(twice)


def test_a_deployment_paused_by_hand_stays_paused_when_the_manifest_does_not_say():
    want = state(paused=None)
    raw = on_server(state(paused=True))
    action = plan_of([want], [raw]).actions[0]
    assert action.kind == "unchanged" and action.desired.fields["paused"] is True
    assert action.notes == ["paused on the server: stays paused, since the manifest does not set paused"]


def test_a_paused_state_the_manifest_sets_is_enforced_and_the_plan_says_so():
    action = plan_of([state(paused=False)], [on_server(state(paused=True))]).actions[0]
    assert action.changed == ["paused"]
    assert "paused on the server: will be resumed, because the manifest sets paused: false" in action.notes


def test_a_schedule_turned_off_by_hand_stays_off_unless_the_manifest_sets_active():
    unset = state(schedules=[schedule({"cron": "0 6 * * *"})])
    raw = on_server(state(schedules=[schedule({"cron": "0 6 * * *", "active": False})]))
    action = plan_of([unset], [raw]).actions[0]
    assert action.kind == "unchanged" and action.desired.fields["schedules"][0]["active"] is False
    assert any("stays off" in n for n in action.notes)
    enforced = plan_of([state(schedules=[schedule({"cron": "0 6 * * *", "active": True})])], [raw]).actions[0]
    assert enforced.changed == ["schedules"] and any("will be turned on" in n for n in enforced.notes)


def test_a_change_on_the_server_since_the_last_deploy_is_drift():
    """The label holds the fingerprint of what flow-register wrote: same manifest, other server -> drift."""
    want = state(description="from the manifest")
    written = on_server(want, labels={"flow-register.state": want.fingerprint()})
    assert plan_of([want], [written]).actions[0].kind == "unchanged"
    by_hand = {**written, "description": "edited in the UI"}
    action = plan_of([want], [by_hand]).actions[0]
    assert action.drift and action.changed == ["description"] and action.notes[0].startswith("drift:")
    # the manifest changed too: an ordinary update, not drift
    assert not plan_of([state(description="new")], [by_hand]).actions[0].drift
