"""The example's preview workflow (examples/.github/workflows/preview.yml), run by act as GitHub runs
it for a pull request: `opened` registers the pull request's preview next to dev's deployments, with
schedules off; `closed` removes exactly those deployments, and dev's own are left alone."""

from __future__ import annotations

import json
import subprocess

import httpx
import pytest
from act import local_repositories, run_act

pytestmark = pytest.mark.e2e

REPOSITORY = "org/flows"


def previews(api_url: str, project: str, name: str) -> list[dict]:
    body = {"deployments": {"tags": {"all_": ["managed-by:flow-register", f"project:{project}"]},
                            "name": {"like_": name}}}
    response = httpx.post(f"{api_url}/deployments/filter", json=body, timeout=30)
    response.raise_for_status()
    return response.json()


def pull_request_event(path, action: str) -> str:
    repo = {"full_name": REPOSITORY}
    path.write_text(json.dumps({"action": action, "number": 7, "repository": repo,
                                "pull_request": {"number": 7, "head": {"ref": "feature", "repo": repo},
                                                 "base": {"ref": "main", "repo": repo}}}))
    return path


def test_a_preview_per_pull_request_registered_on_opened_and_removed_on_closed(
        flows_repo, prefect_server, work_pools, host_env, action_checkout, act_cache, tmp_path, project):
    subprocess.run(["git", "-C", str(flows_repo), "remote", "add", "origin", f"https://github.com/{REPOSITORY}"],
                   check=True)  # act takes github.repository from it; preview.yml compares the head's
    kwargs = dict(secrets={"PREFECT_API_URL": prefect_server.api_url}, env={"FLOW_REGISTER_RUNTIME": "source"},
                  host_env=host_env, cache=act_cache,
                  extra=local_repositories(flows_repo / ".github/workflows", action_checkout))

    opened = run_act(flows_repo, ".github/workflows/preview.yml", event="pull_request",
                     event_file=pull_request_event(tmp_path / "opened.json", "opened"), **kwargs)
    assert opened.succeeded, opened.explain()
    registered = previews(prefect_server.api_url, project, "pr-7")
    assert len(registered) == 4, [d["name"] for d in registered]
    assert all("pr-7" in d["name"] for d in registered)
    assert not [s for d in registered for s in d.get("schedules") or [] if s.get("active")]  # off unless asked

    closed = run_act(flows_repo, ".github/workflows/preview.yml", event="pull_request",
                     event_file=pull_request_event(tmp_path / "closed.json", "closed"), **kwargs)
    assert closed.succeeded, closed.explain()
    assert previews(prefect_server.api_url, project, "pr-7") == []
