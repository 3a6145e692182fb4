"""examples/monorepo's workflow, run by act as GitHub would run it: the `changed` job names the projects a
commit touched, and the matrix job deploys each of them (and only them) against the session's server.

The action runs from source (FLOW_REGISTER_RUNTIME=source), as in test_dispatch.py."""

from __future__ import annotations

import json
import shutil
import subprocess
import uuid

import pytest
from act import local_repositories, run_act
from support.action_repos import EXAMPLES, deployments_on, git_repository

pytestmark = pytest.mark.e2e

PROJECTS = ("reports", "sales", "stock")


@pytest.fixture
def monorepo(tmp_path) -> tuple:
    """examples/monorepo as a team's repository, its projects named for this test; then one commit that
    edits the stock pipeline's flow file."""
    root = tmp_path / "pipelines-repo"
    shutil.copytree(EXAMPLES / "monorepo", root, ignore=shutil.ignore_patterns("__pycache__"))
    names = {}
    for project in PROJECTS:
        manifest = root / "pipelines" / project / "flows.yaml"
        names[project] = f"{project}-{uuid.uuid4().hex[:6]}"
        text = manifest.read_text().replace(f"project: {project}\n", f"project: {names[project]}\n")
        # other tests deploy the example to the same server: names of this test's own
        manifest.write_text(text.replace("defaults:\n", 'defaults:\n  name_template: "{name}-{project}"\n'))
    git_repository(root)
    flow = root / "pipelines" / "stock" / "flows" / "stock.py"
    flow.write_text(flow.read_text() + "\n# counted twice a day now\n")
    subprocess.run(["git", "-C", str(root), "-c", "user.name=t", "-c", "user.email=t@example.com", "commit", "-qam",
                    "stock: twice a day"], check=True)
    return root, names


def test_a_commit_to_one_project_deploys_that_project_only(monorepo, prefect_server, work_pools, host_env,
                                                            action_checkout, act_cache):
    root, names = monorepo
    run = run_act(root, ".github/workflows/deploy.yml", inputs={"since": "HEAD~1"},
                  secrets={"PREFECT_API_URL": prefect_server.api_url},
                  env={"FLOW_REGISTER_RUNTIME": "source"}, host_env=host_env, cache=act_cache,
                  extra=local_repositories(root / ".github/workflows", action_checkout))
    assert run.succeeded, run.explain()

    changed = json.loads(run.outputs("changed")["changed"])
    assert changed == {"include": [{"manifest": "pipelines/stock/flows.yaml", "project": names["stock"]}]}
    assert run.outputs("register")["created"] == "1"
    stock = deployments_on(prefect_server.api_url, names["stock"], "dev")
    assert [(d["name"], d["entrypoint"]) for d in stock] == [(f"stock-{names['stock']}", "flows/stock.py:count_stock")]
    for project in ("reports", "sales"):  # not changed by the commit: not deployed
        assert deployments_on(prefect_server.api_url, names[project], "dev") == []
