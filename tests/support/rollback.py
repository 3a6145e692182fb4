"""Helpers of the rollback tests (integration and security tiers): two deploys of one project, v1 and v2,
that differ in image, parameters, schedules and one deployment more."""

from __future__ import annotations

import copy

from support.registration import Project, base_manifest

OWNER = "managed-by:flow-register"
PREBUILT = ("--build", "never")


def registered(api, project: Project) -> dict[str, dict]:
    found = api.deployments(OWNER, f"project:{project.name}", "environment:dev")
    return {name.removesuffix(f"-{project.name}"): d for name, d in found.items()}


def what_runs(deployment: dict) -> dict:
    """What a rollback must put back: the image, the parameters, the schedules (and the rest of the fields)."""
    return {"image": deployment["job_variables"].get("image"), "parameters": deployment["parameters"],
            "schedules": sorted((s["schedule"].get("cron"), s["active"]) for s in deployment["schedules"]),
            "version": deployment["version"], "tags": sorted(deployment["tags"])}


def variable_name(project: Project) -> str:
    return "region_" + project.name.replace("-", "_")


def deploy_v1_and_v2(project: Project, pool: str, registry: str, name_template: str | None = None):
    v1 = base_manifest(project.name, pool, image=f"{registry}/etl")
    if name_template:
        v1["defaults"]["name_template"] = name_template
    v1["variables"] = [{"name": variable_name(project), "value": "eu"}]
    project.write(v1)
    first = project.deploy(*PREBUILT)
    assert first.code == 0, first
    v2 = copy.deepcopy(v1)
    v2["deployments"][0]["parameters"] = {"region": "us"}
    v2["deployments"][0]["schedules"] = [{"cron": "0 7 * * *", "timezone": "Europe/Berlin"}]
    v2["deployments"].append({"name": "extra", "entrypoint": "flows/etl.py:extract"})
    v2["variables"][0]["value"] = "us"
    (project.root / "flows" / "etl.py").write_text((project.root / "flows" / "etl.py").read_text() + "\n# v2\n")
    project.write(v2)
    second = project.deploy(*PREBUILT)
    assert second.code == 0, second
    assert first.json["image"]["reference"] != second.json["image"]["reference"]
    return first, second
