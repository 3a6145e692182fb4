"""Fixtures of the action tests: the test services, the work pools, a copy of the example flows
repository, the registrar image built from this checkout."""

from __future__ import annotations

import shutil
import subprocess
import uuid
from pathlib import Path

import httpx
import pytest

from support.action_repos import (ACTION_FILES, BIN, DOCKER_CLI_IMAGE, EXAMPLES, POOLS, REGISTRAR_IMAGE, ROOT,  # noqa: F401
                                  add_test_workflows, git_repository)
from support.services import docker, services_env, stand_in_docker_cli

@pytest.fixture(scope="session")
def action_checkout(tmp_path_factory) -> Path:
    """The action as a runner gets it, from this working tree: act runs it in place of org/flow-register@v1."""
    root = tmp_path_factory.mktemp("action") / "flow-register"
    root.mkdir()
    for name in ACTION_FILES:
        source = ROOT / name
        if source.is_dir():
            shutil.copytree(source, root / name, ignore=shutil.ignore_patterns("__pycache__", "*.pyc"))
        else:
            shutil.copy2(source, root / name)
    return root


@pytest.fixture(scope="session")
def act_cache(tmp_path_factory) -> Path:
    """act's cache for this session: its workspace copies and the runner's tool cache (the
    registrar's venv) go here, not to ~/.cache/act, which act never cleans."""
    return tmp_path_factory.mktemp("act-cache")


@pytest.fixture(scope="session")
def host_env(services) -> dict[str, str]:
    """Added to act's environment, which the steps it runs on the host inherit: the test engine,
    and uv's usual cache (steps that install the registrar from source find the wheels there)."""
    uv_cache = subprocess.run(["uv", "cache", "dir"], capture_output=True, text=True, check=True).stdout.strip()
    return {"DOCKER_HOST": services["DOCKER_HOST"], "UV_CACHE_DIR": uv_cache}


@pytest.fixture(scope="session")
def services() -> dict[str, str]:
    return services_env()  # raises, with the command to run, when the services are not up


@pytest.fixture(scope="session")
def repository(services) -> str:
    """Where the example's image goes in these tests: a fresh repository in the test registry."""
    return f"{services['REGISTRY']}/act-{uuid.uuid4().hex[:8]}/sales-etl"


@pytest.fixture(scope="session")
def project() -> str:
    """The example's project under a name of its own: other tiers deploy the example to the same server."""
    return f"sales-etl-act-{uuid.uuid4().hex[:6]}"


@pytest.fixture(scope="session")
def work_pools(prefect_server) -> dict[str, str]:
    env = {"PREFECT_API_URL": prefect_server.api_url, "PREFECT_SERVER_EPHEMERAL_ENABLED": "false",
           "PATH": f"{BIN}:/usr/bin:/bin"}
    for name, kind in POOLS.items():
        if httpx.get(f"{prefect_server.api_url}/work_pools/{name}").status_code == 404:
            subprocess.run([str(BIN / "prefect"), "--no-prompt", "work-pool", "create", name, "--type", kind],
                           env=env, check=True, capture_output=True, timeout=120)
    return POOLS


@pytest.fixture
def flows_repo(tmp_path, repository, project) -> Path:
    """examples/ copied as the team's own repository (workflows included), its image in the test
    registry, its project named for this session.

    One Prefect server stands in for the team's three (a workspace per environment), so the
    deployment names carry the environment, as the manifest's prod names already do."""
    root = tmp_path / "sales-etl"
    shutil.copytree(EXAMPLES, root, ignore=shutil.ignore_patterns("__pycache__", ".flow-register"))
    manifest = root / "flows.yaml"
    text = manifest.read_text()
    for old, new in (("localhost:5000/sales-etl", repository), ("project: sales-etl\n", f"project: {project}\n"),
                     ('name_template: "{name}"', 'name_template: "{name}-{environment}"')):
        assert text.count(old) == 1, f"the example manifest changed ({old!r}): update this fixture"
        text = text.replace(old, new)
    manifest.write_text(text)
    add_test_workflows(root)
    return git_repository(root)


@pytest.fixture(scope="session")
def build_args(services, tmp_path_factory) -> list[str]:
    """The registrar Dockerfile's build arguments here: local stand-ins for its two public images."""
    cli = stand_in_docker_cli(services, tmp_path_factory.mktemp("docker-cli"), DOCKER_CLI_IMAGE)
    return ["--build-arg", f"BASE={services['BASE_IMAGE']}", "--build-arg", f"DOCKER_CLI={cli}"]


@pytest.fixture(scope="session")
def registrar_image(services, build_args) -> str:
    """The registrar image built from this checkout's Dockerfile, as the release workflow builds it."""
    docker(services, "build", *build_args, "--tag", REGISTRAR_IMAGE, str(ROOT), timeout=900)
    return REGISTRAR_IMAGE
