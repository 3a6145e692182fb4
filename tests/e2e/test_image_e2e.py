"""End to end, on a real Docker engine and real registries on loopback (`bash .ci/services up`).

The user's path: `flow-register deploy` builds the example's image, pushes it, and registers its
deployments into a Docker work pool; a real Prefect Docker worker runs one of them to Completed.
Deploying again with nothing changed builds nothing, pushes nothing and writes nothing.

These tests never skip: without the services they fail, saying how to start them.
"""

from __future__ import annotations

import os
import shutil
import stat
import subprocess
import sys
import time
import uuid
from pathlib import Path

import pytest

import register.image as image_stage
from support import stages
from register.image import registries
from register.manifest import load_manifest
from support.services import services_env
from support.worker import api, create_docker_pool, run_to_end

pytestmark = pytest.mark.e2e

EXAMPLES = Path(__file__).resolve().parents[2] / "examples"
BIN = Path(sys.executable).parent
POOL = "dev-docker"


@pytest.fixture(scope="module")
def services() -> dict[str, str]:
    return services_env()  # raises, with the command to run, when the services are not up


@pytest.fixture
def docker_env(services, monkeypatch, tmp_path) -> dict[str, str]:
    """This process and its children talk to the test engine, with a Docker config of their own."""
    monkeypatch.setenv("DOCKER_HOST", services["DOCKER_HOST"])
    monkeypatch.setenv("DOCKER_CONFIG", str(tmp_path / "docker-config"))
    for name in ("REGISTRY_HOST", "REGISTRY_USERNAME", "REGISTRY_PASSWORD", "GITHUB_ACTIONS", "GITHUB_SHA", "FLOW_REGISTER_BUILDER"):
        monkeypatch.delenv(name, raising=False)
    return services


def example_copy(tmp_path: Path, repository: str) -> Path:
    """The example flows repository, its image pointed at `repository` (unique per test: a cold registry)."""
    root = tmp_path / "sales-etl"
    shutil.copytree(EXAMPLES, root, ignore=shutil.ignore_patterns("__pycache__", ".flow-register"))
    path = root / "flows.yaml"
    path.write_text(path.read_text().replace("localhost:5000/sales-etl", repository))
    return path


def unique(registry: str, name: str = "sales-etl") -> str:
    return f"{registry}/e2e-{uuid.uuid4().hex[:8]}/{name}"


@pytest.fixture
def argv_log(tmp_path, monkeypatch) -> Path:
    """A `docker` in front of the real one that records every command line it is given."""
    real = shutil.which("docker")
    assert real, "the Docker CLI is not installed"
    shim_dir = tmp_path / "shim"
    shim_dir.mkdir()
    log = tmp_path / "docker-argv.log"
    shim = shim_dir / "docker"
    shim.write_text(f'#!/bin/sh\nprintf "%s\\n" "$*" >> "{log}"\nexec "{real}" "$@"\n')
    shim.chmod(shim.stat().st_mode | stat.S_IEXEC)
    monkeypatch.setenv("PATH", f"{shim_dir}:{os.environ['PATH']}")
    return log


def test_basic_auth_registry_login_build_push_and_no_secret_anywhere(docker_env, argv_log, tmp_path, monkeypatch,
                                                                    capfd):
    password = docker_env["AUTH_REGISTRY_PASSWORD"]
    path = example_copy(tmp_path, unique(docker_env["AUTH_REGISTRY"]))

    with pytest.raises(image_stage.ImageError, match="REGISTRY_USERNAME and REGISTRY_PASSWORD"):
        stages.prepare(load_manifest(path), "dev")

    monkeypatch.setenv("REGISTRY_HOST", docker_env["AUTH_REGISTRY"])
    monkeypatch.setenv("REGISTRY_USERNAME", docker_env["AUTH_REGISTRY_USER"])
    monkeypatch.setenv("REGISTRY_PASSWORD", "wrong-pw-123")
    with pytest.raises(image_stage.ImageError, match="credentials were refused") as refused:
        stages.prepare(load_manifest(path), "dev")
    assert "wrong-pw-123" not in str(refused.value)

    monkeypatch.setenv("GITHUB_ACTIONS", "true")  # masks, folded groups
    monkeypatch.setenv("REGISTRY_HOST", docker_env["AUTH_REGISTRY"])
    monkeypatch.setenv("REGISTRY_USERNAME", docker_env["AUTH_REGISTRY_USER"])
    monkeypatch.setenv("REGISTRY_PASSWORD", password)
    image = stages.prepare(load_manifest(path), "dev")
    assert image.built and image.pushed and image.reference.startswith(f"{image.repository}@sha256:")
    again = stages.prepare(load_manifest(path), "dev")
    assert (again.built, again.pushed, again.exists, again.reference) == (False, False, True, image.reference)
    # A release tag on an unchanged image: added in the registry itself, no build, no push.
    released = stages.prepare(load_manifest(path), "dev", image_tag="release-1")
    assert (released.built, released.pushed, released.tags) == (False, False, ["release-1"])
    registry = stages.registry(registries.Repository.parse(image.repository))
    assert registry.digest("release-1") == image.digest

    out, err = capfd.readouterr()
    argv = argv_log.read_text()
    assert "login" in argv and "--password-stdin" in argv
    assert password not in argv, "the registry password reached a docker command line"
    assert f"::add-mask::{password}" in err.splitlines()  # on stderr: stdout may be JSON
    assert password not in out + err.replace(f"::add-mask::{password}", "")
    assert "::group::Image " in err and "Successfully built" in err  # the build's output, folded


def test_dockerfile_auto_builds_an_image_with_the_code_at_workdir(docker_env, tmp_path):
    path = example_copy(tmp_path, unique(docker_env["REGISTRY"]))
    (path.parent / "Dockerfile").unlink()
    path.write_text(path.read_text().replace(
        "dockerfile: Dockerfile", f"dockerfile: auto\n  base: {docker_env['BASE_IMAGE']}"))
    image = stages.prepare(load_manifest(path), "dev")
    assert image.built and image.pushed
    assert image.dockerfile.startswith("# Generated by flow-register")
    assert not (path.parent / ".flow-register").exists()  # built from a folder of its own, not the repository's
    listing = subprocess.run(["docker", "run", "--rm", "--network", "none", image.reference,
                              "python", "-c", "import os; print(sorted(os.listdir('flows')), os.getcwd())"],
                             capture_output=True, text=True, timeout=120)
    assert listing.returncode == 0, listing.stderr
    assert "'sales.py'" in listing.stdout and "/opt/prefect/sales-etl" in listing.stdout
    # Built by this run: reused ("the same run built it"); the registry's tag is what was pushed.
    assert stages.prepare(load_manifest(path), "dev").built is False


# --- the user's path ------------------------------------------------------------------------------

def deploy(path: Path, env: dict) -> tuple[subprocess.CompletedProcess, float]:
    started = time.monotonic()
    result = subprocess.run([str(BIN / "flow-register"), "deploy", "-f", str(path), "--environment", "dev"],
                            capture_output=True, text=True, env=env, timeout=900)
    return result, time.monotonic() - started


def test_deploy_build_push_register_run_to_completed_then_redeploy_changes_nothing(
        docker_env, prefect_server, tmp_path):
    repository = unique(docker_env["REGISTRY"])
    path = example_copy(tmp_path, repository)
    create_docker_pool(prefect_server, POOL)
    env = {**os.environ, "PREFECT_API_URL": prefect_server.api_url, "PREFECT_SERVER_EPHEMERAL_ENABLED": "false",
           "PREFECT_HOME": str(tmp_path / "prefect-home")}
    env.pop("PREFECT_API_KEY", None)

    first, first_seconds = deploy(path, env)
    shown = f"stdout:\n{first.stdout}\nstderr:\n{first.stderr}"
    assert first.returncode == 0, shown
    assert "image: built" in first.stderr and "image: pushed" in first.stderr, shown
    assert "4 created" in first.stdout, shown

    deployment = api(prefect_server, "GET", "/deployments/name/ingest-forecast/ingest-forecast")
    image = load_manifest(path)
    tag = image_stage.offline(image, "dev").content_tag
    assert deployment["job_variables"]["image"].startswith(f"{repository}@sha256:")
    assert deployment["version"] == tag

    state, shown = run_to_end(prefect_server, deployment["id"], POOL, env, tmp_path / "worker.log")
    assert state and state["type"] == "COMPLETED", f"flow run ended {state}:\n{shown}"

    second, second_seconds = deploy(path, env)
    shown = f"stdout:\n{second.stdout}\nstderr:\n{second.stderr}"
    assert second.returncode == 0, shown
    assert "no build, no push" in second.stderr, shown
    assert "image: built" not in second.stderr and "image: pushed" not in second.stderr, shown
    assert "Nothing to change: 4 unchanged, no write made" in second.stdout, shown
    print(f"\nfirst deploy {first_seconds:.1f} s; unchanged re-deploy {second_seconds:.1f} s")
