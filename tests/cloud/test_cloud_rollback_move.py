"""rollback and move on Prefect Cloud, through the STAND-IN for Cloud (tests/support/cloud.py: a proxy that
plays Cloud's documented behaviour in front of the session's real open-source server). The deploy history
is artifacts, which Cloud serves at the same workspace-scoped paths."""

from __future__ import annotations

import copy

import pytest

from support.cloud import CloudStandIn
from support.registration import Project, base_manifest, fake_registry, unique

pytestmark = pytest.mark.integration

OWNER = "managed-by:flow-register"
FAST = {"PREFECT_API_REQUEST_TIMEOUT": "10", "FLOW_REGISTER_RETRY_SECONDS": "90"}


def on_cloud(cloud: CloudStandIn, project: Project, *args: str):
    return project.cli(*args, api_url=cloud.api_url, PREFECT_API_KEY=cloud.api_key, **FAST)


def test_rollback_and_move_on_cloud(tmp_path, api, prefect_server):
    pool = unique("docker")
    api.create_pool(pool, "docker")
    old, new, suffix = unique("cloudold"), unique("cloudnew"), unique("c")
    project = Project(tmp_path / "repo", prefect_server.api_url, old)
    with fake_registry() as (registry, _), CloudStandIn(prefect_server.api_url, plan="hobby") as cloud:
        v1 = base_manifest(old, pool, image=f"{registry}/etl")
        v1["defaults"]["name_template"] = "{name}-" + suffix
        project.write(v1)
        first = on_cloud(cloud, project, "deploy", "-e", "dev", "--build", "never", "--output", "json")
        assert first.code == 0, first
        v2 = copy.deepcopy(v1)
        v2["deployments"][0]["parameters"] = {"region": "us"}
        project.write(v2)
        second = on_cloud(cloud, project, "deploy", "-e", "dev", "--build", "never")
        assert second.code == 0, second

        listed = on_cloud(cloud, project, "rollback", "-e", "dev", "--list")
        assert listed.code == 0 and listed.out.startswith("revision 2: "), listed
        rolled = on_cloud(cloud, project, "rollback", "-e", "dev")  # default: the revision before the newest
        assert rolled.code == 0, rolled
        extract = api.deployments(OWNER, f"project:{old}")[f"extract-{suffix}"]
        assert extract["parameters"] == {"region": "eu"}
        assert extract["job_variables"]["image"] == first.json["image"]["reference"]
        again = on_cloud(cloud, project, "rollback", "-e", "dev", "--to", "1", "--output", "json")
        assert again.code == 0 and again.json["requests"]["writes"] == 0, again

        v2["project"] = new
        project.write(v2)
        moved = on_cloud(cloud, project, "move", "-e", "dev", "--from-project", old)
        assert moved.code == 0, moved
        after = api.deployments(OWNER, f"project:{new}")
        assert after[f"extract-{suffix}"]["id"] == extract["id"]
    assert 411 not in cloud.statuses("deploy"), cloud.statuses("deploy")
