"""The registrar's entry hands the engine its settings, built from the inputs, and leaves this process's
environment as the runner gave it: the engine reads no variable of its own (register/settings.py)."""

from __future__ import annotations

import json
import os

import pytest

from register.action import entry
from register.report import github
from support.registration import Project, base_manifest, unique

pytestmark = pytest.mark.integration


@pytest.fixture(autouse=True)
def fresh_commands(monkeypatch):
    monkeypatch.setattr(github, "_resume", None)
    monkeypatch.setattr(github, "_masked", set())


def test_the_engine_finds_its_server_by_the_input_alone_and_the_environment_is_left_as_it_was(
        prefect_server, api, monkeypatch, capsys, tmp_path):
    pool = unique("docker")
    api.create_pool(pool, "docker")
    project = Project(tmp_path / "repo", prefect_server.api_url, unique("etl"))
    project.write(base_manifest(project.name, pool))
    for name in ("PREFECT_API_URL", "PREFECT_API_KEY", "PREFECT_API_AUTH_STRING", "GITHUB_ACTIONS"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("INPUT_PREFECT_API_URL", "http://127.0.0.1:9/api")  # this process's own: never read
    monkeypatch.chdir(tmp_path)  # the entry moves to the working directory; this comes back after the test
    before = dict(os.environ)
    outputs = tmp_path / "outputs"
    environ = {"PATH": os.environ["PATH"], "HOME": str(project.home), "GITHUB_WORKSPACE": str(project.root),
               "GITHUB_OUTPUT": str(outputs), "INPUT_ENVIRONMENT": "dev", "INPUT_DRY-RUN": "true",
               "INPUT_PREFECT-API-URL": project.api_url}
    assert entry.main(environ) == 0, capsys.readouterr()
    assert dict(os.environ) == before
    plan = next(line for line in outputs.read_text().splitlines() if line.startswith("plan="))
    planned = json.loads(plan.removeprefix("plan="))
    assert planned["server"] == project.api_url
    assert sorted(d["action"] for d in planned["deployments"]) == ["create", "create"]
