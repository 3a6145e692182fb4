"""The example repository's own workflows, run by act as GitHub would run them, against the
session's Prefect server: a `workflow_dispatch` with inputs registers the deployments, and a pull
request prints the plan in the summary and changes nothing.

The action runs from source here (FLOW_REGISTER_RUNTIME=source): the released image cannot be
pulled offline; tests/action/test_docker.py covers the image.
"""

from __future__ import annotations

import json
import re
import subprocess

import pytest
from act import local_repositories, run_act
from support.action_repos import deployments_on
from fake_github import BOT, TOKEN, fake_github, user

pytestmark = pytest.mark.e2e

DEPLOYMENTS = ("daily-sales", "sales-backfill", "ingest-forecast", "weekly-report")
TEST_DEPLOYMENTS = {f"{name}-test" for name in DEPLOYMENTS}
DEV_DEPLOYMENTS = {f"{name}-dev" for name in DEPLOYMENTS}


def test_workflow_dispatch_registers_with_the_inputs(flows_repo, prefect_server, work_pools, host_env,
                                                      repository, action_checkout, act_cache, project):
    run = run_act(
        flows_repo, ".github/workflows/deploy-manual.yml",
        inputs={"environment": "test", "work-pool": "act-ecs", "cpu": "1", "memory": "2Gi"},
        secrets={"PREFECT_API_URL": prefect_server.api_url},
        env={"FLOW_REGISTER_RUNTIME": "source"}, host_env=host_env, cache=act_cache,
        extra=local_repositories(flows_repo / ".github/workflows", action_checkout))
    assert run.succeeded, run.explain()

    outputs = run.outputs("flows")
    assert outputs["created"] == "4", outputs
    assert (outputs["updated"], outputs["unchanged"], outputs["deleted"]) == ("0", "0", "0"), outputs
    assert re.fullmatch(re.escape(repository) + r"@sha256:[0-9a-f]{64}", outputs["image"]), outputs["image"]
    reported = {d["name"]: d for d in json.loads(outputs["deployments"])}
    assert set(reported) == TEST_DEPLOYMENTS
    assert {d["action"] for d in reported.values()} == {"create"}
    json.loads(outputs["plan"])

    # what the server has: every deployment in the pool and size the inputs gave
    registered = {d["name"]: d for d in deployments_on(prefect_server.api_url, project, "test")}
    assert set(registered) == TEST_DEPLOYMENTS
    for name, deployment in registered.items():
        assert deployment["id"] == reported[name]["id"]
        assert deployment["work_pool_name"] == "act-ecs"
        assert deployment["job_variables"]["cpu"] == 1024 and deployment["job_variables"]["memory"] == 2048
        assert deployment["job_variables"]["image"] == outputs["image"]

    summary = run.summary("flows")
    for name in TEST_DEPLOYMENTS:
        assert re.search(rf"^\|.*\b{name}\b.*\|$", summary, re.M), summary
    assert "create" in summary


def test_pull_request_plans_in_the_summary_and_a_comment_and_changes_nothing(
        flows_repo, prefect_server, work_pools, host_env, action_checkout, act_cache, tmp_path, project):
    before = deployments_on(prefect_server.api_url, project, "dev")
    event = tmp_path / "pull_request.json"
    event.write_text(json.dumps({"pull_request": {"number": 7, "head": {"ref": "feature"}, "base": {"ref": "main"}}}))
    subprocess.run(["git", "-C", str(flows_repo), "remote", "add", "origin", "https://github.com/org/flows"],
                   check=True)  # act takes github.repository from it
    mark = f"<!-- flow-register plan: project={project} environment=dev -->"
    with fake_github() as github:
        # someone else's comment that carries the marker: never edited
        github.comments.append({"id": 1, "body": f"{mark}\nall good, merge it", "user": user("mallory", 666)})
        run = run_act(
            flows_repo, ".github/workflows/plan.yml", event="pull_request", event_file=event,
            secrets={"PREFECT_API_URL": prefect_server.api_url, "GITHUB_TOKEN": TOKEN},
            env={"FLOW_REGISTER_RUNTIME": "source", "GITHUB_API_URL": github.url}, host_env=host_env,
            cache=act_cache, extra=local_repositories(flows_repo / ".github/workflows", action_checkout))
    assert run.succeeded, run.explain()

    summary = run.summary("flows")
    for name in DEV_DEPLOYMENTS:
        assert re.search(rf"^\|.*\b{name}\b.*\|$", summary, re.M), summary
    theirs, comment = github.comments
    assert theirs["body"] == f"{mark}\nall good, merge it" and github.edited_others == []
    assert comment["body"].startswith(mark) and comment["user"] == BOT
    for name in DEV_DEPLOYMENTS:
        assert name in comment["body"], comment["body"]
    assert deployments_on(prefect_server.api_url, project, "dev") == before
