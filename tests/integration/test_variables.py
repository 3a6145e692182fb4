"""`variables:` in the manifest: Prefect variables created, compared, updated and pruned like deployments,
owned by the same tags, written before the deployments that name them and deleted after them."""

from __future__ import annotations

import re

import pytest

pytestmark = pytest.mark.integration


def variables_of(result) -> dict[str, dict]:
    return {v["name"]: v for v in result.json["variables"]}


def on_server(api, name: str) -> dict | None:
    found = api.post("/variables/filter", {"variables": {"name": {"any_": [name]}}})
    return found[0] if found else None


def test_a_variable_is_created_left_alone_updated_put_back_after_a_hand_edit_and_pruned(project, api):
    region = f"region_{project.name}"
    project.manifest["variables"] = [{"name": region, "value": "eu-west-1", "tags": ["etl"]},
                                     {"name": f"limits_{project.name}", "value": {"rows": 10}}]
    project.write()

    created = project.deploy()
    assert created.code == 0, created
    assert {n: v["action"] for n, v in variables_of(created).items()} == {
        region: "create", f"limits_{project.name}": "create"}
    held = on_server(api, region)
    assert held["value"] == "eu-west-1"
    assert {"etl", "managed-by:flow-register", f"project:{project.name}", "environment:dev"} <= set(held["tags"])
    assert on_server(api, f"limits_{project.name}")["value"] == {"rows": 10}

    again = project.deploy()
    assert again.code == 0, again
    assert {v["action"] for v in variables_of(again).values()} == {"unchanged"}
    assert again.json["requests"]["writes"] == 0

    project.manifest["variables"][0]["value"] = "eu-central-1"
    project.write()
    planned = project.cli("plan", "-e", "dev", "--detailed-exitcode")
    assert planned.code == 2, planned
    assert re.search(rf"^  update +{region} +value$", planned.out, re.M), planned.out
    assert "value: 'eu-west-1' -> 'eu-central-1'" in planned.out
    updated = project.deploy()
    assert updated.code == 0, updated
    assert variables_of(updated)[region]["action"] == "update" and not variables_of(updated)[region]["drift"]
    assert on_server(api, region)["value"] == "eu-central-1"

    # someone edits it in the UI: the next plan says drift, and the deploy puts the manifest's value back
    api.http.patch(f"/variables/name/{region}", json={"value": "us-east-1"}).raise_for_status()
    drifted = project.plan()
    assert drifted.code == 0, drifted
    assert variables_of(drifted)[region]["drift"] is True
    assert variables_of(drifted)[region]["diff"]["value"] == {"from": "us-east-1", "to": "eu-central-1"}
    assert project.deploy().code == 0
    assert on_server(api, region)["value"] == "eu-central-1"

    # dropped from the manifest: kept and listed without --prune, deleted with it
    project.manifest["variables"] = [project.manifest["variables"][1]]
    project.write()
    kept = project.cli("deploy", "-e", "dev")
    assert kept.code == 0, kept
    assert f"Variables no longer in the manifest, kept: {region}; --prune deletes them" in kept.out
    assert on_server(api, region) is not None
    pruned = project.deploy("--prune")
    assert pruned.code == 0, pruned
    assert variables_of(pruned)[region]["action"] == "delete"
    assert on_server(api, region) is None
    assert on_server(api, f"limits_{project.name}") is not None


def test_a_variable_made_by_hand_is_named_as_a_conflict_and_never_overwritten(project, api):
    name = f"token_url_{project.name}"
    api.post("/variables/", {"name": name, "value": "https://by-hand.example", "tags": ["ops"]})
    project.manifest["variables"] = [{"name": name, "value": "https://manifest.example"}]
    project.write()

    refused = project.cli("deploy", "-e", "dev")
    assert refused.code == 1, refused
    problem = next(line for line in refused.err.splitlines() if "[variable-owner]" in line)
    assert f"variable '{name}'" in problem and "made outside flow-register" in problem
    line = int(problem.split(":")[1])
    assert name in project.root.joinpath("flows.yaml").read_text().splitlines()[line - 1]
    held = on_server(api, name)
    assert (held["value"], held["tags"]) == ("https://by-hand.example", ["ops"])
    assert api.deployments(f"project:{project.name}") == {}


def test_variables_are_written_before_the_deployments_naming_them_and_deleted_after(project, api):
    name = f"bucket_{project.name}"
    project.manifest["variables"] = [{"name": name, "value": "s3://flows"}]
    project.manifest["deployments"][1]["job_variables"] = {"env": {"BUCKET": f"{{{{ prefect.variables.{name} }}}}"}}
    project.write()

    # the variable does not exist yet: declared in the same manifest, it is not missing
    created = project.deploy()
    assert created.code == 0, created
    order = [(s.get("kind", "deployment"), s["action"]) for s in created.json["applied"]]
    assert order[0] == ("variable", "created") and order[1:] == [("deployment", "created")] * 2
    assert on_server(api, name)["value"] == "s3://flows"

    # the deployment naming it and the variable both leave the manifest: the deployment goes first
    project.manifest["variables"] = []
    project.manifest["deployments"] = project.manifest["deployments"][:1]
    project.write()
    pruned = project.deploy("--prune")
    assert pruned.code == 0, pruned
    order = [(s.get("kind", "deployment"), s["action"], s["name"]) for s in pruned.json["applied"]]
    assert order == [("deployment", "deleted", f"weekly-{project.name}"), ("variable", "deleted", name)]
    assert on_server(api, name) is None


@pytest.mark.parametrize("fault, method, path", [("lost", "POST", r"/variables/$"),
                                                 ("timeout-after", "POST", r"/variables/$"),
                                                 ("reset-after", "PATCH", r"/variables/name/"),
                                                 ("503", "POST", r"/variables/filter$")])
def test_a_fault_on_a_variable_s_read_or_write_still_ends_in_one_run_with_the_plan(project, api, fault, method, path):
    from support.proxy import Proxy, Rule

    name = f"region_{project.name}"
    project.manifest["variables"] = [{"name": name, "value": "eu"}]
    project.write()
    if method == "PATCH":  # an update: the variable is there already
        assert project.deploy().code == 0
        project.manifest["variables"][0]["value"] = "us"
        project.write()
    with Proxy(project.api_url, retry_after=1, hold_seconds=8, rules=[Rule(fault, method, path)]) as proxy:
        result = project.deploy(api_url=proxy.api_url, PREFECT_API_REQUEST_TIMEOUT="5",
                                FLOW_REGISTER_RETRY_SECONDS="90")
        assert proxy.injected == {fault: 1}, proxy.summary()
    assert result.code == 0, result
    found = api.post("/variables/filter", {"variables": {"name": {"any_": [name]}}})
    assert [v["value"] for v in found] == [project.manifest["variables"][0]["value"]]
    again = project.deploy()
    assert again.code == 0 and again.json["requests"]["writes"] == 0, again
