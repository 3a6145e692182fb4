"""Fixtures shared by every tier. The integration tier's Prefect server is real: `prefect server
start` on SQLite and a free loopback port, started once per test session."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
EXAMPLES = ROOT / "examples"


@pytest.fixture(scope="session")
def prefect_server(tmp_path_factory):
    """A real local Prefect server for the whole session; its API URL is `prefect_server.api_url`.

    FLOW_REGISTER_PREFECT_SERVER=3.4.9 runs that Prefect release's server instead of the installed one
    (from a uv tool environment), so the tiers run against every server release flow-register supports."""
    from devtools.local_server import start

    server = start(tmp_path_factory.mktemp("prefect-server"), release=os.environ.get("FLOW_REGISTER_PREFECT_SERVER"))
    yield server
    server.stop()


@pytest.fixture
def prefect_env(prefect_server, monkeypatch):
    """Point the Prefect client of this process at the session's server, and never at an ephemeral one."""
    monkeypatch.setenv("PREFECT_API_URL", prefect_server.api_url)
    monkeypatch.setenv("PREFECT_SERVER_EPHEMERAL_ENABLED", "false")
    monkeypatch.delenv("PREFECT_API_KEY", raising=False)
    return {**os.environ}


@pytest.fixture(autouse=True)
def _github_context():
    """A run's GitHub context is set where it starts (the CLI, the action's entry): the next test starts
    outside Actions again, as a new process would."""
    yield
    from register.report import github

    github.use(github.Context())


@pytest.fixture
def api(prefect_server):
    """The session server's API, read and arranged directly (not through flow-register)."""
    from support.registration import Api

    return Api(prefect_server.api_url)


@pytest.fixture
def pool(api) -> str:
    """A Docker work pool of the test's own on the session's server (its name)."""
    from support.registration import unique

    name = unique("docker")
    api.create_pool(name, "docker")
    return name


@pytest.fixture
def project(tmp_path, prefect_server, pool):
    """A flows repository of the test's own (project name, the `pool` fixture's Docker work pool), registering
    into the session's server; `project.manifest` is the base manifest of support.registration, written."""
    from support.registration import Project, base_manifest, unique

    project = Project(tmp_path / "repo", prefect_server.api_url, unique("etl"))
    project.write(base_manifest(project.name, pool))
    return project


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item, call):
    """Under scripts/test (and so in CI) a skipped test is a failure: every tier must really run."""
    outcome = yield
    report = outcome.get_result()
    if report.skipped and os.environ.get("FLOW_REGISTER_NO_SKIP") == "1" and not hasattr(report, "wasxfail"):
        report.outcome = "failed"
        report.longrepr = f"skipped, which scripts/test does not allow: {report.longrepr}"
