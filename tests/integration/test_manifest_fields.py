"""The manifest's own fields reach the server, read back from a real Prefect server: a version per
environment from the caller's environment, enforce_parameter_schema and concurrency options."""

from __future__ import annotations

import pytest

from support.registration import Api, Project

pytestmark = pytest.mark.integration


def registered(api: Api, project: Project) -> dict[str, dict]:
    return {name.removesuffix(f"-{project.name}"): d for name, d in api.deployments(f"project:{project.name}").items()}


def test_a_version_per_environment_from_the_callers_environment(project, api):
    project.manifest["environments"]["dev"] = {"version": "release-${RELEASE:-none}"}
    project.write()
    first = project.deploy(RELEASE="v1.2.3")
    assert first.code == 0, first
    assert {d["version"] for d in registered(api, project).values()} == {"release-v1.2.3"}
    assert {d["action"] for d in project.deploy(RELEASE="v1.2.3").json["deployments"]} == {"unchanged"}

    unset = project.deploy()  # the same manifest where RELEASE is not set: its default
    assert unset.code == 0, unset
    assert {d["version"] for d in registered(api, project).values()} == {"release-none"}


def test_parameter_enforcement_and_concurrency_options(project, api):
    extract, weekly = project.manifest["deployments"]
    extract.update(enforce_parameter_schema=False,
                   concurrency_limit={"limit": 2, "collision_strategy": "CANCEL_NEW", "grace_period_seconds": 120})
    weekly["concurrency_limit"] = {"limit": 1, "collision_strategy": "ENQUEUE"}  # the server's grace period
    project.write()
    first = project.deploy()
    if api.release() < (3, 6, 6):  # a server without grace periods would drop it: refused where it is written
        assert first.code == 1, first
        assert "flows.yaml:" in first.err and "does not keep a concurrency grace period" in first.err, first
        assert "Prefect 3.6.6 or newer" in first.err and "[server-release]" in first.err, first
        assert registered(api, project) == {}
        del extract["concurrency_limit"]["grace_period_seconds"]
        project.write()
        assert project.deploy().code == 0
        found = registered(api, project)
        assert found["extract"]["concurrency_options"] == {"collision_strategy": "CANCEL_NEW"}
        assert {d["action"] for d in project.deploy().json["deployments"]} == {"unchanged"}
        return
    assert first.code == 0, first
    found = registered(api, project)
    assert (found["extract"]["enforce_parameter_schema"], found["weekly"]["enforce_parameter_schema"]) == (False, True)
    assert found["extract"]["concurrency_options"] == {"collision_strategy": "CANCEL_NEW", "grace_period_seconds": 120}
    assert found["weekly"]["concurrency_options"]["collision_strategy"] == "ENQUEUE"
    assert {d["action"] for d in project.deploy().json["deployments"]} == {"unchanged"}
