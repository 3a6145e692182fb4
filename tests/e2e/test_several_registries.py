"""One environment, one image, several registries (image.repositories), on the real Docker engine, the two
local registries (one with basic auth, named by the explicit registry-host credentials) and a real Prefect
server: built once, pushed to each, every deployment runs its own work pool's repository@digest; deploying
again pushes and writes nothing; a tag in a repository this environment does not run is pushed over.
"""

from __future__ import annotations

import base64
import json
import os
import shutil
import stat
import subprocess
from pathlib import Path

import pytest

from register.image import docker, registries
from register.settings import Settings
from support import stages
from support.registration import client_env, unique
from support.services import services_env

pytestmark = [pytest.mark.e2e, pytest.mark.integration]


@pytest.fixture
def docker_argv(tmp_path) -> tuple[Path, Path]:
    """A `docker` in front of the real one recording every command line: (its folder, the log)."""
    real = shutil.which("docker")
    assert real, "the Docker CLI is not installed"
    folder = tmp_path / "shim"
    folder.mkdir()
    log = tmp_path / "docker-argv.log"
    log.write_text("")
    shim = folder / "docker"
    shim.write_text(f'#!/bin/sh\nprintf "%s\\n" "$*" >> "{log}"\nexec "{real}" "$@"\n')
    shim.chmod(shim.stat().st_mode | stat.S_IEXEC)
    return folder, log


def commands(log: Path, since: int = 0) -> list[str]:
    return log.read_text().splitlines()[since:]


def builds(lines: list[str]) -> list[str]:
    return [line for line in lines if line.startswith(("build ", "buildx build "))]


def pushes(lines: list[str]) -> list[str]:
    return [line for line in lines if line.startswith("push ")]


def test_one_build_pushed_to_each_pool_s_repository_and_each_deployment_runs_its_own(project, api, docker_argv,
                                                                                   tmp_path, monkeypatch):
    services = services_env()
    shim, log = docker_argv
    default = f"{services['REGISTRY']}/{unique('several')}/etl"
    other = f"{services['AUTH_REGISTRY']}/{unique('several')}/etl"  # e.g. ACR's: another host, its own login
    kubernetes = unique("k8s")
    api.create_pool(kubernetes, "kubernetes")
    manifest = project.manifest
    manifest["image"] = {"repository": default, "dockerfile": "Dockerfile", "workdir": "/opt/prefect/etl",
                         "repositories": {kubernetes: other}}
    manifest["deployments"][1]["work_pool"] = {"name": kubernetes, "type": "kubernetes"}
    project.write(manifest)
    (project.root / "Dockerfile").write_text(f"FROM {services['BASE_IMAGE']}\nWORKDIR /opt/prefect/etl\nCOPY flows/ flows/\n")
    env = client_env(project.api_url, project.home, DOCKER_HOST=services["DOCKER_HOST"],
                     DOCKER_CONFIG=str(tmp_path / "docker-config"), PATH=f"{shim}:{os.environ['PATH']}",
                     REGISTRY_HOST=services["AUTH_REGISTRY"], REGISTRY_USERNAME=services["AUTH_REGISTRY_USER"],
                     REGISTRY_PASSWORD=services["AUTH_REGISTRY_PASSWORD"])
    for name in ("REGISTRY_HOST", "REGISTRY_USERNAME", "REGISTRY_PASSWORD"):  # for this test's own look-ups
        monkeypatch.setenv(name, env[name])

    planned = project.plan(env=env, timeout=600)
    assert planned.code == 0, planned
    assert f"would build and push {default}:ct-" in planned.err and f", {other}:ct-" in planned.err, planned
    assert builds(commands(log)) == [] and pushes(commands(log)) == []

    first = project.deploy(env=env, timeout=900)
    assert first.code == 0, first
    done = commands(log)
    assert len(builds(done)) == 1, done  # built once ...
    pushed = [line.split()[-1] for line in pushes(done)] or [builds(done)[0]]
    assert any(default in line for line in pushed) and any(other in line for line in pushed), done  # ... to both
    assert services["AUTH_REGISTRY_PASSWORD"] not in log.read_text() + first.out + first.err

    registered = {d["name"]: d for d in api.post("/deployments/filter", {}) if d["name"].endswith(project.name)}
    extract, weekly = registered[f"extract-{project.name}"], registered[f"weekly-{project.name}"]
    tag = extract["version"]
    assert tag.startswith("ct-") and weekly["version"] == tag  # the version does not depend on the repository
    assert extract["job_variables"]["image"].startswith(f"{default}@sha256:")
    assert weekly["job_variables"]["image"].startswith(f"{other}@sha256:")
    for reference in (extract["job_variables"]["image"], weekly["job_variables"]["image"]):
        repository, digest = reference.split("@")
        assert stages.registry(registries.Repository.parse(repository)).digest(tag) == digest
    outputs = first.json
    assert outputs["image"]["references"] == {default: extract["job_variables"]["image"],
                                              other: weekly["job_variables"]["image"]}

    mark = len(commands(log))
    again = project.deploy(env=env, timeout=600)
    assert again.code == 0, again
    assert builds(commands(log, mark)) == [] and pushes(commands(log, mark)) == [], commands(log, mark)
    assert {d["action"] for d in again.json["deployments"]} == {"unchanged"}, again

    # Whoever can push to the other repository pushes another image under the content tag: this environment
    # does not run that digest from there, so the image is pushed over it (pulled by digest, not built).
    planted = f"{other}:{tag}"
    subprocess.run(["docker", "tag", services["BASE_IMAGE"], planted], env=env, check=True)
    login = subprocess.run(["docker", "login", services["AUTH_REGISTRY"], "-u", services["AUTH_REGISTRY_USER"],
                            "--password-stdin"], input=services["AUTH_REGISTRY_PASSWORD"], env=env, text=True,
                           capture_output=True)
    assert login.returncode == 0, login.stderr
    subprocess.run(["docker", "push", "-q", planted], env=env, check=True, capture_output=True)
    other_registry = stages.registry(registries.Repository.parse(other))
    planted_digest = other_registry.digest(tag)
    assert planted_digest and f"@{planted_digest}" not in weekly["job_variables"]["image"]
    mark = len(commands(log))
    third = project.deploy(env=env, timeout=600)
    assert third.code == 0, third
    assert (f"{other}:{tag} is in the registry as {planted_digest}, but no deploy of project '{project.name}' "
            f"in environment 'dev' runs that image from {other}") in third.err, third
    assert builds(commands(log, mark)) == [], commands(log, mark)
    assert [line.split()[-1] for line in pushes(commands(log, mark))] == [planted], commands(log, mark)
    assert other_registry.digest(tag) != planted_digest
    weekly = api.deployment(weekly["id"])
    assert weekly["job_variables"]["image"] == f"{other}@{other_registry.digest(tag)}"
    assert json.dumps(weekly).count(planted_digest) == 0


ACR_TOKEN_USER = "00000000-0000-0000-0000-000000000000"  # the user name `az acr login` stores with its token


def test_a_repository_no_deployment_of_the_run_pulls_from_is_not_pushed_to(project, docker_argv, tmp_path):
    """A pool in image.repositories that none of the run's deployments goes to (renamed, or a typo): validate
    warns at its line, and the image stage leaves that repository alone and says so."""
    services = services_env()
    shim, log = docker_argv
    default = f"{services['REGISTRY']}/{unique('unused')}/etl"
    stray = f"{services['AUTH_REGISTRY']}/{unique('unused')}/etl"
    manifest = project.manifest
    manifest["image"] = {"repository": default, "dockerfile": "Dockerfile", "workdir": "/opt/prefect/etl",
                         "repositories": {"no-such-pool": stray}}
    project.write(manifest)
    (project.root / "Dockerfile").write_text(f"FROM {services['BASE_IMAGE']}\nWORKDIR /opt/prefect/etl\nCOPY flows/ flows/\n")
    env = client_env(project.api_url, project.home, DOCKER_HOST=services["DOCKER_HOST"],
                     DOCKER_CONFIG=str(tmp_path / "docker-config"), PATH=f"{shim}:{os.environ['PATH']}")

    planned = project.plan(env=env, timeout=600)
    assert planned.code == 0, planned
    assert "no deployment of environment 'dev' runs on work pool 'no-such-pool'" in planned.err, planned
    push_line = next(line for line in planned.err.splitlines() if "would build and push" in line)
    assert f"would build and push {default}:ct-" in push_line and stray not in push_line, planned
    assert f"not pushed to {stray}: no deployment of this run goes to work pool 'no-such-pool'" in planned.err
    assert stray not in json.dumps(planned.json["image"]), planned.json["image"]
    assert pushes(commands(log)) == []


def test_a_docker_login_made_before_the_step_serves_its_own_host_inside_the_private_config(tmp_path):
    """`az acr login --name acme` (after azure/login) writes acme.azurecr.io's token into the user's Docker
    config, as `docker login` does for any host: flow-register's own Docker config starts from a copy of it, each
    registry gets its own host's login, and registry-host credentials go to their host only. The local
    basic-auth registry stands in for a second cloud's (ACR itself cannot run here)."""
    services = services_env()
    user_config = tmp_path / "docker-config"
    user_config.mkdir()

    def auth(user: str, password: str) -> dict:
        return {"auth": base64.b64encode(f"{user}:{password}".encode()).decode()}

    (user_config / "config.json").write_text(json.dumps({"auths": {
        "acme.azurecr.io": auth(ACR_TOKEN_USER, "acr-token-from-az"),
        services["AUTH_REGISTRY"]: auth(services["AUTH_REGISTRY_USER"], services["AUTH_REGISTRY_PASSWORD"])}}))
    environ = {**client_env(None, tmp_path / "home"), "DOCKER_CONFIG": str(user_config),
               "DOCKER_HOST": services["DOCKER_HOST"],
               # explicit credentials for another host: never sent to ACR or to the local registry
               "REGISTRY_HOST": "ghcr.io", "REGISTRY_USERNAME": "someone", "REGISTRY_PASSWORD": "ghcr-only-pw"}
    told: list[str] = []
    settings = Settings.from_environ(environ)
    with docker.private_config(settings.environ):
        private = {**environ, "DOCKER_CONFIG": docker._CONFIG}
        assert docker._CONFIG != str(user_config)
        acr = registries.docker_config_credentials(private, told.append, "acme.azurecr.io")
        assert (acr.username, acr.password) == (ACR_TOKEN_USER, "acr-token-from-az")
        assert registries.for_repository(registries.Repository.parse("acme.azurecr.io/flows/etl"), settings,
                                         told.append).credentials() is None  # Docker's own login serves it
        local = registries.for_repository(registries.Repository.parse(
            f"{services['AUTH_REGISTRY']}/{unique('acr-shaped')}/etl"), settings, told.append)
        assert local.credentials() is None
        assert local.digest("ct-not-there") is None  # answered with the stored login, not refused (HTTP 401)
        ghcr = registries.for_repository(registries.Repository.parse("ghcr.io/acme/etl"), settings, told.append)
        assert ghcr.credentials().password == "ghcr-only-pw"
    assert "acr-token-from-az" in told and services["AUTH_REGISTRY_PASSWORD"] in told  # masked when read
    assert json.loads((user_config / "config.json").read_text())["auths"].keys() == {
        "acme.azurecr.io", services["AUTH_REGISTRY"]}  # the user's config is left as it was
