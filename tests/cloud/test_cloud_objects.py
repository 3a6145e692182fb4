"""Prefect Cloud's own objects, registered through the STAND-IN for Cloud (tests/support/cloud.py): SLAs
set, left alone and removed as the manifest says, never taken with a deployment's old automations;
metric triggers; a Cloud that does not keep automation tags; a prefect:managed pool."""

from __future__ import annotations

import pytest

from support.cloud import CloudStandIn
from support.registration import Api, Project, unique

pytestmark = pytest.mark.integration

OWNER = "managed-by:flow-register"
FAST = {"PREFECT_API_REQUEST_TIMEOUT": "10", "FLOW_REGISTER_RETRY_SECONDS": "60"}
SLAS = [{"name": "finishes-in-10-minutes", "duration": 600, "severity": "high"},
        {"name": "starts-on-time", "within": 300},
        {"name": "runs-daily", "stale_after": 90000, "severity": "critical"},
        {"name": "data-arrives", "within": 3600, "expected_event": "data.arrived",
         "resource_match": {"prefect.resource.id": "warehouse.sales"}}]


def through(cloud: CloudStandIn, project: Project, *args: str):
    return project.deploy(*args, api_url=cloud.api_url, PREFECT_API_KEY=cloud.api_key, **FAST)


def mine(api: Api, project: Project) -> dict[str, dict]:
    found = api.deployments(OWNER, f"project:{project.name}", "environment:dev")
    return {name.removesuffix(f"-{project.name}"): d for name, d in found.items()}


def test_slas_are_set_left_alone_when_unchanged_updated_and_removed(project, api, prefect_server):
    project.manifest["deployments"][0]["sla"] = SLAS
    project.write()
    with CloudStandIn(prefect_server.api_url) as cloud:
        cold = through(cloud, project)
        assert cold.code == 0, cold
        extract = mine(api, project)["extract"]["id"]
        held = cloud.slas(extract)
        assert {name: sla["type"] for name, sla in held.items()} == {
            "finishes-in-10-minutes": "time_to_completion", "starts-on-time": "lateness", "runs-daily": "frequency",
            "data-arrives": "freshness"}
        assert held["finishes-in-10-minutes"]["duration"] == 600 and held["runs-daily"]["severity"] == "critical"
        assert held["data-arrives"]["resource_match"] == {"prefect.resource.id": "warehouse.sales"}
        assert all(sla["owner_resource"] == f"prefect.deployment.{extract}" for sla in held.values())
        assert cloud.slas(mine(api, project)["weekly"]["id"]) == {}  # no sla: key, none set

        again = through(cloud, project)
        assert again.code == 0, again
        assert again.json["requests"]["writes"] == 0, again

        project.manifest["deployments"][0]["sla"] = [{"name": "finishes-in-10-minutes", "duration": 1200}]
        project.write()
        changed = through(cloud, project)
        assert changed.code == 0, changed
        action = next(d for d in changed.json["deployments"] if d["name"].startswith("extract"))
        assert action["action"] == "update", changed
        assert {name: sla.get("duration") for name, sla in cloud.slas(extract).items()} == \
            {"finishes-in-10-minutes": 1200}

        del project.manifest["deployments"][0]["sla"]  # not said: Cloud's stay as they are
        project.write()
        untouched = through(cloud, project)
        assert untouched.code == 0 and untouched.json["requests"]["writes"] == 0, untouched
        assert list(cloud.slas(extract)) == ["finishes-in-10-minutes"]

        project.manifest["deployments"][0]["sla"] = []  # an empty list removes them
        project.write()
        removed = through(cloud, project)
        assert removed.code == 0, removed
        assert cloud.slas(extract) == {}


def test_replacing_a_deployments_triggers_keeps_its_slas(project, api, prefect_server):
    project.manifest["deployments"][0]["sla"] = SLAS[:1]
    project.write()
    with CloudStandIn(prefect_server.api_url) as cloud:
        assert through(cloud, project).code == 0
        extract = mine(api, project)["extract"]["id"]
        project.manifest["deployments"][0]["triggers"][0]["expect"] = ["data.landed"]
        project.write()
        replaced = through(cloud, project)
        assert replaced.code == 0, replaced
        assert [a["trigger"]["expect"] for a in api.automations_of(extract)] == [["data.landed"]]
        assert list(cloud.slas(extract)) == ["finishes-in-10-minutes"]


def test_taking_over_a_deployment_prefect_deploy_made_keeps_its_slas(project, api, prefect_server):
    # `prefect deploy` made it: no flow-register tags, an automation `<name>__automation_1` that runs it, and
    # an SLA set on Cloud; flow-register takes it over with the same trigger
    name = f"extract-{project.name}"
    flow = api.post("/flows/", {"name": "extract"})
    made = api.post("/deployments/", {"name": name, "flow_id": flow["id"], "entrypoint": "flows/etl.py:extract",
                                      "work_pool_name": project.manifest["defaults"]["work_pool"]["name"]})
    api.post("/automations/", {
        "name": f"{name}__automation_1", "trigger": {"type": "event", "expect": ["data.arrived"], "posture": "Reactive",
                                                      "threshold": 1, "within": 0,
                                                      "match_related": {"prefect.resource.id": f"prefect.deployment.{made['id']}"}},
        "actions": [{"type": "run-deployment", "source": "selected", "deployment_id": made["id"],
                     "parameters": {"region": "us"}}],
        "owner_resource": f"prefect.deployment.{made['id']}"})
    with CloudStandIn(prefect_server.api_url) as cloud:
        response = cloud_client(cloud).post(f"slas/apply-resource-slas/prefect.deployment.{made['id']}",
                                            json=[{"name": "set-in-the-ui", "duration": 60}])
        assert response.status_code == 200, response.text
        taken = through(cloud, project)
        assert taken.code == 0, taken
        assert mine(api, project)["extract"]["id"] == made["id"]
        assert list(cloud.slas(made["id"])) == ["set-in-the-ui"]
        assert len(api.automations_of(made["id"])) == 1


def test_a_metric_trigger_is_registered_on_cloud_and_left_alone_when_unchanged(project, api, prefect_server):
    project.manifest["deployments"][0]["triggers"] = [{
        "type": "metric", "metric": {"name": "lateness", "threshold": 600, "operator": ">", "range": 3600,
                                     "firing_for": 300},
        "match": {"prefect.resource.id": "prefect.flow-run.*"}}]
    project.write()
    with CloudStandIn(prefect_server.api_url) as cloud:
        cold = through(cloud, project)
        assert cold.code == 0, cold
        extract = mine(api, project)["extract"]["id"]
        held = [a for a in cloud.metric_automations.values()
                if any(x.get("deployment_id") == extract for x in a["actions"])]
        assert [a["trigger"]["metric"]["threshold"] for a in held] == [600], cloud.metric_automations
        again = through(cloud, project)
        assert again.code == 0 and again.json["requests"]["writes"] == 0, again


def test_a_cloud_that_drops_automation_tags_still_finds_and_replaces_the_triggers(project, api, prefect_server):
    with CloudStandIn(prefect_server.api_url, keeps_automation_tags=False) as cloud:
        cold = through(cloud, project)
        assert cold.code == 0, cold
        extract = mine(api, project)["extract"]["id"]
        [automation] = api.automations_of(extract)
        assert automation["tags"] == []  # the stand-in's Cloud kept none
        assert "did not keep the tags of the automations written: flow-register finds its triggers by their " \
               "names there instead" in cold.err, cold
        again = through(cloud, project)
        assert again.code == 0, again
        assert again.json["requests"]["writes"] == 0, again  # found by name: not rewritten
        project.manifest["deployments"][0]["triggers"] = []
        project.write()
        dropped = through(cloud, project)
        assert dropped.code == 0, dropped
        assert api.automations_of(extract) == []  # the old one was found and deleted, not left running


def test_a_managed_pool_takes_code_from_git_and_prefects_image(tmp_path, api, prefect_server):
    pool = unique("managed")
    api.post("/work_pools/", {"name": pool, "type": "prefect:managed", "base_job_template": MANAGED_TEMPLATE})
    project = Project(tmp_path / "repo", prefect_server.api_url, unique("hobby"))
    project.write({"version": 1, "project": project.name,  # no image: Prefect's runs the flows
                   "defaults": {"work_pool": {"name": pool, "type": "prefect:managed"}, "name_template": "{name}-{project}",
                                "code": {"git": {"repository": "https://github.com/acme/flows", "ref": "0" * 40}}},
                   "environments": {"dev": {}},
                   "deployments": [{"name": "extract", "entrypoint": "flows/etl.py:extract",
                                    "job_variables": {"pip_packages": ["pandas"]}}]})
    with CloudStandIn(prefect_server.api_url) as cloud:
        result = through(cloud, project)
        assert result.code == 0, result
    [deployment] = api.deployments(f"project:{project.name}").values()
    assert deployment["job_variables"] == {"pip_packages": ["pandas"]}
    assert deployment["pull_steps"][0].keys() == {"prefect.deployments.steps.git_clone"}


# A prefect:managed pool's template as far as Prefect's docs describe it (Cloud's own is not published).
MANAGED_TEMPLATE = {
    "job_configuration": {"command": "{{ command }}", "env": "{{ env }}", "labels": "{{ labels }}",
                          "name": "{{ name }}", "image": "{{ image }}", "pip_packages": "{{ pip_packages }}"},
    "variables": {"type": "object", "properties": {
        "command": {"type": "string"}, "env": {"type": "object", "additionalProperties": {"type": "string"}},
        "labels": {"type": "object"}, "name": {"type": "string"},
        "image": {"type": "string", "default": "prefecthq/prefect:3-latest"},
        "pip_packages": {"type": "array", "items": {"type": "string"}}}}}


def cloud_client(cloud: CloudStandIn):
    import httpx

    return httpx.Client(base_url=cloud.api_url + "/", headers={"Authorization": f"Bearer {cloud.api_key}"}, timeout=30)
