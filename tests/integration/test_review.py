"""Review and drift against a real Prefect server: what operators change by hand is seen and kept, a plan
can fail a scheduled check when the server drifted, and a pull request gets a preview of its own that
goes away with it. The CLI runs as a user runs it (a subprocess)."""

from __future__ import annotations

import pytest

from support.registration import Api, Project

pytestmark = pytest.mark.integration


def by_manifest_name(api: Api, project: Project, environment: str = "dev", preview: str = "") -> dict[str, dict]:
    found = api.deployments(f"project:{project.name}", f"environment:{environment}" + (f"/{preview}" * bool(preview)))
    return {name.removesuffix(f"-{preview}" * bool(preview)).removesuffix(f"-{project.name}"): d
            for name, d in found.items()}


def test_a_pause_and_a_schedule_turned_off_by_hand_survive_a_redeploy(project, api):
    assert project.deploy().code == 0
    extract = by_manifest_name(api, project)["extract"]
    api.http.patch(f"/deployments/{extract['id']}", json={"paused": True}).raise_for_status()
    schedule = extract["schedules"][0]
    api.http.patch(f"/deployments/{extract['id']}/schedules/{schedule['id']}",
                   json={"active": False}).raise_for_status()

    again = project.deploy()
    assert again.code == 0, again
    entry = next(d for d in again.json["deployments"] if d["name"].startswith("extract"))
    assert entry["action"] == "unchanged"
    assert "paused on the server: stays paused, since the manifest does not set paused" in entry["notes"]
    assert any("is off on the server: stays off" in n for n in entry["notes"])
    after = api.deployment(extract["id"])
    assert after["paused"] is True and after["schedules"][0]["active"] is False

    # The manifest says so: enforced, and the plan says what it undoes.
    project.manifest["deployments"][0]["paused"] = False
    project.write()
    plan = project.plan()
    entry = next(d for d in plan.json["deployments"] if d["name"].startswith("extract"))
    assert entry["changes"] == ["paused"]
    assert "paused on the server: will be resumed, because the manifest sets paused: false" in entry["notes"]


def test_plan_detailed_exitcode_and_drift_made_in_the_ui(project, api):
    assert project.cli("plan", "-e", "dev", "--detailed-exitcode").code == 2  # everything to create
    assert project.deploy().code == 0
    unchanged = project.cli("plan", "-e", "dev", "--detailed-exitcode")
    assert unchanged.code == 0, unchanged

    weekly = by_manifest_name(api, project)["weekly"]
    api.http.patch(f"/deployments/{weekly['id']}", json={"description": "edited in the UI"}).raise_for_status()
    drifted = project.cli("plan", "-e", "dev", "--detailed-exitcode", "--output", "json")
    assert drifted.code == 2, drifted
    entry = next(d for d in drifted.json["deployments"] if d["name"].startswith("weekly"))
    assert entry["drift"] is True and entry["changes"] == ["description"]
    assert entry["diff"]["description"]["from"] == "edited in the UI"

    project.write({**project.manifest, "environments": {"nope": {}}})
    assert project.cli("plan", "-e", "dev", "--detailed-exitcode").code == 1


def test_a_preview_lives_next_to_dev_and_destroy_removes_exactly_it(project, api):
    assert project.deploy().code == 0
    preview = project.deploy("--preview", "pr-7")
    assert preview.code == 0, preview
    mine = by_manifest_name(api, project, "dev", "pr-7")
    assert sorted(mine) == ["extract", "weekly"]
    extract = mine["extract"]
    assert "preview:pr-7" in extract["tags"] and "environment:dev" not in extract["tags"]
    assert [s["active"] for s in extract["schedules"]] == [False]  # nothing runs by itself
    assert api.automations_of(extract["id"]) == []
    other = project.deploy("--preview", "pr-8")
    assert other.code == 0

    # dev's prune and an unchanged dev deploy leave the previews alone
    pruned = project.deploy("--prune")
    assert pruned.code == 0 and pruned.json["summary"]["delete"] == 0, pruned

    gone = project.cli("destroy", "-e", "dev", "--preview", "pr-7", "--output", "json")
    assert gone.code == 0, gone
    assert sorted(d["name"] for d in gone.json["deployments"]) == \
        sorted(f"{n}-{project.name}-pr-7" for n in ("extract", "weekly"))
    assert by_manifest_name(api, project, "dev", "pr-7") == {}
    assert len(by_manifest_name(api, project, "dev", "pr-8")) == 2
    assert sorted(by_manifest_name(api, project)) == ["extract", "weekly"]
    assert project.cli("destroy", "-e", "dev", "--preview", "pr-7").code == 0  # again: nothing left, fine


def test_taking_over_a_deployment_with_prefect_deploys_trigger_keeps_the_trigger(project, api):
    """`prefect deploy` names a deployment's automations NAME__automation_N and tags them with nothing:
    the same trigger, so taking the deployment over changes its tags only."""
    from register.engine.desired import automation_body
    from register.prefect.models import trigger

    extract = project.manifest["deployments"][0]
    name = f"extract-{project.name}"
    flow_id = api.post("/flows/", {"name": "extract"})["id"]
    deployment_id = api.post("/deployments/", {
        "name": name, "flow_id": flow_id, "work_pool_name": project.manifest["defaults"]["work_pool"]["name"],
        "entrypoint": extract["entrypoint"], "tags": ["etl"]})["id"]
    automation = automation_body(trigger(extract["triggers"][0], name, 1, []), deployment_id)
    automation["tags"] = []
    api.post("/automations/", automation)

    plan = project.plan()
    assert plan.code == 0, plan
    entry = next(d for d in plan.json["deployments"] if d["name"] == name)
    assert entry["action"] == "update" and "triggers" not in entry["changes"], entry
    assert any("takes it over" in n for n in entry["notes"])
