"""plan and deploy read flows, never run them: a flow file every part of which would leave a mark if
Python ran it (top level, decorators, annotations, defaults, class bodies, an imported project module)
is registered, and no mark appears. validate and render: tests/unit/test_flows.py."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from support.registration import Api, Project, base_manifest, unique

pytestmark = pytest.mark.integration

MARKED = Path(__file__).parents[1] / "unit" / "flows" / "marked"


def test_plan_and_deploy_run_no_user_code(tmp_path, prefect_server):
    api = Api(prefect_server.api_url)
    pool = unique("docker")
    api.create_pool(pool, "docker")
    project = Project(tmp_path / "repo", prefect_server.api_url, unique("marked"))
    shutil.copytree(MARKED, project.root, dirs_exist_ok=True)
    manifest = base_manifest(project.name, pool)
    manifest["deployments"] = [{"name": "marked", "entrypoint": "flows/marked.py:marked",
                                "parameters": {"region": "us"}}]
    project.write(manifest)
    marks = tmp_path / "marks"
    marks.mkdir()

    plan = project.plan(MARKS=str(marks))
    assert plan.code == 0, plan
    deploy = project.deploy(MARKS=str(marks))
    assert deploy.code == 0, deploy
    assert list(marks.iterdir()) == []

    registered = api.deployments(f"project:{project.name}")
    schema = next(iter(registered.values()))["parameter_openapi_schema"]
    assert schema["properties"]["region"]["default"] == "eu"  # read from flows/helpers.py, not imported
    assert "default" not in schema["properties"]["size"]  # stamp("default") is not run: no default
    assert "flows/marked.py:29:17: warning: the default of parameter 'size'" in deploy.err + deploy.out
