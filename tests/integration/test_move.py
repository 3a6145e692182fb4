"""move against a real Prefect server: a project renamed in its manifest takes its deployments (and
variables) along, in place, as a user runs it."""

from __future__ import annotations

import pytest

from register.commands import history
from support.registration import Project, base_manifest, fake_registry, unique
from support.rollback import deploy_v1_and_v2

pytestmark = pytest.mark.integration

OWNER = "managed-by:flow-register"


def by_id(api, deployment_id: str) -> dict:
    return api.deployment(deployment_id)


def test_a_renamed_project_is_refused_with_the_move_command_and_move_keeps_ids_runs_and_schedules(
        tmp_path, prefect_server, api, pool):
    old, new, suffix = unique("old"), unique("new"), unique("mv")
    project = Project(tmp_path / "repo", prefect_server.api_url, old)
    manifest = base_manifest(old, pool)
    manifest["defaults"]["name_template"] = "{name}-" + suffix  # names that stay when the project is renamed
    manifest["deployments"][0]["schedules"].append({"interval": 3600, "slug": "hourly"})
    manifest["variables"] = [{"name": f"region_{suffix.replace('-', '_')}", "value": "eu"}]
    project.write(manifest)
    first = project.deploy()
    assert first.code == 0, first
    before = api.deployments(OWNER, f"project:{old}", "environment:dev")
    assert len(before) == 2
    extract = before[f"extract-{suffix}"]
    run = api.post(f"/deployments/{extract['id']}/create_flow_run", {})
    schedules = sorted((s["id"], s["active"]) for s in extract["schedules"])
    automations = api.automations_of(extract["id"])
    assert len(automations) == 1

    manifest["project"] = new
    project.write(manifest)
    refused = project.deploy()
    assert refused.code == 1, refused
    assert f"flow-register move -e dev --from-project {old}" in refused.err
    assert api.deployments(OWNER, f"project:{new}") == {}

    planned = project.cli("move", "-e", "dev", "--from-project", old, "--dry-run", "--detailed-exitcode")
    assert planned.code == 2, planned
    assert f"extract-{suffix}" in planned.out and f"project:{new}" in planned.out
    assert api.deployments(OWNER, f"project:{new}") == {}  # a dry run writes nothing

    moved = project.cli("move", "-e", "dev", "--from-project", old)
    assert moved.code == 0, moved
    table, applied = moved.out.index(f"project:{new}"), moved.out.index("updated")
    assert table < applied  # the plan is shown before the writes
    after = api.deployments(OWNER, f"project:{new}", "environment:dev")
    assert {d["id"] for d in after.values()} == {d["id"] for d in before.values()}
    assert api.deployments(OWNER, f"project:{old}") == {}
    moved_extract = by_id(api, extract["id"])
    assert sorted((s["id"], s["active"]) for s in moved_extract["schedules"]) == schedules
    assert moved_extract["parameters"] == extract["parameters"]
    flow_run = api.http.get(f"/flow_runs/{run['id']}").json()
    assert flow_run["deployment_id"] == extract["id"]  # its run history stays with it
    retagged = api.automations_of(extract["id"])
    assert [a["id"] for a in retagged] == [a["id"] for a in automations]
    assert f"project:{new}" in retagged[0]["tags"] and f"project:{old}" not in retagged[0]["tags"]
    variable = api.post("/variables/filter", {"variables": {"name": {"any_": [manifest["variables"][0]["name"]]}}})
    assert f"project:{new}" in variable[0]["tags"] and f"project:{old}" not in variable[0]["tags"]

    deployed = project.deploy()  # the new name finds them as its own: nothing to write
    assert deployed.code == 0, deployed
    assert deployed.json["requests"]["writes"] == 0, deployed
    again = project.cli("move", "-e", "dev", "--from-project", old, "--output", "json")
    assert again.code == 0 and again.json["requests"]["writes"] == 0, again


def test_after_a_move_rollback_under_the_new_name_goes_back_to_a_deploy_made_under_the_old_one(
        tmp_path, prefect_server, api, pool):
    old, new, suffix = unique("old"), unique("new"), unique("mvh")
    project = Project(tmp_path / "repo", prefect_server.api_url, old)
    with fake_registry() as (registry, _):
        first, _ = deploy_v1_and_v2(project, pool, registry, name_template="{name}-" + suffix)
        before = api.deployments(OWNER, f"project:{old}", "environment:dev")
        manifest = project.manifest
        manifest["project"] = new
        project.write(manifest)

        planned = project.cli("move", "-e", "dev", "--from-project", old, "--dry-run")
        assert planned.code == 0, planned
        assert f"the deploy history of project '{old}', environment 'dev' (2 revisions) moves along" in planned.err
        assert api.post("/artifacts/filter", {"artifacts": {"key": {"any_": [history.key(new, "dev")]}}}) == []

        moved = project.cli("move", "-e", "dev", "--from-project", old)
        assert moved.code == 0, moved
        listed = project.cli("rollback", "-e", "dev", "--list")
        assert listed.code == 0, listed
        lines = listed.out.splitlines()
        assert lines[0].startswith("revision 2: ") and "(registered now)" in lines[0], listed
        assert lines[1].startswith("revision 1: ") and first.json["image"]["reference"] in lines[1], listed

        rolled = project.cli("rollback", "-e", "dev", "--to", "1")
        assert rolled.code == 0, rolled
        # made after revision 1 (in v2): kept, and the plan says why in a rollback's words
        assert f"Not in the deploy rolled back to (revision 1), kept: extra-{suffix} (flow extract); " \
               "--prune deletes them" in rolled.out, rolled
        assert "No longer in the manifest" not in rolled.out
        now = api.deployments(OWNER, f"project:{new}", "environment:dev")
        assert {d["id"] for d in now.values()} == {d["id"] for d in before.values()}  # the same deployments
        extract = now[f"extract-{suffix}"]
        assert extract["parameters"] == {"region": "eu"}  # revision 1's, deployed under the old name
        assert extract["job_variables"]["image"] == first.json["image"]["reference"]
        assert f"project:{old}" not in extract["tags"]
        assert api.deployments(OWNER, f"project:{old}") == {}
        variable = api.post("/variables/filter", {"variables": {"name": {"any_": [manifest["variables"][0]["name"]]}}})
        assert variable[0]["value"] == "eu" and f"project:{new}" in variable[0]["tags"]
        # the old name's records stay as they were
        kept = api.post("/artifacts/filter", {"artifacts": {"key": {"any_": [history.key(old, "dev")]}}})
        assert sorted(a["data"]["revision"] for a in kept) == [1, 2]
        assert project.cli("rollback", "-e", "dev", "--list").out.startswith("revision 3: ")

        # moved back, the old name has a history of its own: the new name's stays where it is, and it says so
        manifest["project"] = old
        project.write(manifest)
        back = project.cli("move", "-e", "dev", "--from-project", new, "--dry-run")
        assert back.code == 0, back
        assert f"the deploy history of project '{new}', environment 'dev' stays under that name: project '{old}' " \
               "in 'dev' has a deploy history of its own" in back.err
