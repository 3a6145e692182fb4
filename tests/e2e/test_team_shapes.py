"""The four teams' shapes, end to end: each is a small flows repository of this test's own
(tests/e2e/teams/<name>/) built by the real Docker engine, pushed to the local registry, checked against its
deployments without running it, and registered on the session's real Prefect server.

- ecs-inputs: an ECS pool per environment, CPU and memory given on the command line; the Dockerfile's
  WORKDIR is the code's directory (image.workdir left out);
- multi-cloud: one environment per cloud's pool type, a build context that is a subfolder;
- ecs-push-webhook: an ECS push pool, deployments started by events;
- cloud-run-runner: a Cloud Run pool on Prefect Cloud (through the Cloud STAND-IN, tests/support/cloud.py).

Each deploy is asserted by what the server holds afterwards, and a second deploy writes nothing.
These tests never skip: without the services they fail, saying how to start them.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
import uuid
from pathlib import Path

import pytest

from register.problems import Exit
from support.cloud import CloudStandIn
from support.registration import worker_templates
from support.services import docker, services_env
from support.worker import api

pytestmark = pytest.mark.e2e

TEAMS = Path(__file__).resolve().parent / "teams"
BIN = Path(sys.executable).parent
SUFFIX = uuid.uuid4().hex[:6]


@pytest.fixture(scope="module")
def services() -> dict[str, str]:
    return services_env()


@pytest.fixture
def env(services, tmp_path) -> dict[str, str]:
    out = {k: v for k, v in os.environ.items() if not k.startswith(("PREFECT_", "GITHUB_", "REGISTRY_"))}
    out.update({"PREFECT_SERVER_EPHEMERAL_ENABLED": "false", "PREFECT_HOME": str(tmp_path / "prefect-home"),
                "DOCKER_HOST": services["DOCKER_HOST"], "DOCKER_CONFIG": str(tmp_path / "docker-config"),
                "DO_NOT_TRACK": "1"})
    out.pop("FLOW_REGISTER_BUILDER", None)
    return out


def team(name: str, tmp_path: Path, services: dict[str, str]) -> Path:
    """The team's repository, its names made the test's own and its image pointed at the local registry."""
    root = tmp_path / name
    shutil.copytree(TEAMS / name, root)
    path = root / "flows.yaml"
    path.write_text(path.read_text().replace("@SUFFIX@", SUFFIX).replace("@REGISTRY@", services["REGISTRY"]))
    return path


def create_pool(server, name: str, kind: str) -> None:
    """What the platform team provisions: the pool, from its worker's default template (a push pool from
    the same template as its hybrid type)."""
    template = worker_templates()[kind.removesuffix(":push")]
    api(server, "POST", "/work_pools/", json={"name": name, "type": kind, "base_job_template": template})


def deploy(path: Path, env: dict, environment: str, *args: str, api_url: str) -> subprocess.CompletedProcess:
    return subprocess.run([str(BIN / "flow-register"), "deploy", "-f", str(path), "-e", environment,
                           "--output", "json", *args],
                          capture_output=True, text=True, env={**env, "PREFECT_API_URL": api_url}, timeout=1200)


def shown(result: subprocess.CompletedProcess) -> str:
    return f"exit {result.returncode}\nstdout:\n{result.stdout}\nstderr:\n{result.stderr}"


def actions(result: subprocess.CompletedProcess) -> dict[str, str]:
    report = json.loads(result.stdout)
    return {d["name"]: d["action"] for d in report["deployments"]}


def registered(server, project: str) -> dict[str, dict]:
    found = api(server, "POST", "/deployments/filter",
                json={"deployments": {"tags": {"all_": [f"project:{project}"]}}, "limit": 200})
    return {d["name"]: d for d in found}


def image_facts(services: dict[str, str], reference: str) -> tuple[str, str]:
    """The image's WORKDIR and its repository digest, as the engine that built it reports them."""
    out = docker(services, "image", "inspect", "--format", "{{.Config.WorkingDir}} {{json .RepoDigests}}",
                 reference).stdout.strip().split(" ", 1)
    return out[0], out[1]


def assert_runnable(services, deployment: dict, pool: str, workdir: str) -> None:
    """Registered where the image has the code: the pool, the image pinned by digest, and the pull step
    setting the directory the image's WORKDIR is."""
    assert deployment["work_pool_name"] == pool, deployment
    image = deployment["job_variables"]["image"]
    assert re.fullmatch(rf"{re.escape(services['REGISTRY'])}/.+@sha256:[0-9a-f]{{64}}", image), image
    image_workdir, digests = image_facts(services, image)
    assert image.split("@")[1] in digests, (image, digests)
    assert image_workdir == workdir
    assert deployment["pull_steps"] == [
        {"prefect.deployments.steps.set_working_directory": {"directory": workdir}}], deployment["pull_steps"]


def test_ecs_inputs_cpu_and_memory_from_the_command_line_in_three_environments(
        services, env, prefect_server, tmp_path):
    path = team("ecs-inputs", tmp_path, services)
    for environment in ("dev", "test", "prod"):
        create_pool(prefect_server, f"ecs-{environment}-{SUFFIX}", "ecs")
    project = f"ecs-inputs-{SUFFIX}"
    url = prefect_server.api_url

    refused = deploy(path, env, "dev", "--cpu", "512", "--memory", "2Gi", api_url=url)
    assert refused.returncode == Exit.INVALID, shown(refused)
    # ECS's CPU units given where vCPU are meant: refused, naming the valid sizes and the likely intent
    assert re.search(rf"--cpu: error: environment 'dev', ecs pool 'ecs-dev-{SUFFIX}': cpu 512 is not a Fargate size; "
                     r"valid vCPU are [^\n]*0\.5[^\n]*; did you mean 0\.5\? "
                     r"cpu is in vCPU \(512 CPU units are 0\.5 vCPU\)", refused.stderr), shown(refused)
    assert "image: built" not in refused.stdout + refused.stderr, "a refused deploy built an image"
    assert registered(prefect_server, project) == {}, "a refused deploy wrote a deployment"

    for environment in ("dev", "test", "prod"):
        result = deploy(path, env, environment, "--cpu", "1", "--memory", "2Gi", api_url=url)
        assert result.returncode == Exit.OK, shown(result)
        assert actions(result) == {f"nightly-load-{environment}": "create"}, shown(result)
    found = registered(prefect_server, project)
    assert sorted(found) == ["nightly-load-dev", "nightly-load-prod", "nightly-load-test"]
    for environment in ("dev", "test", "prod"):
        deployment = found[f"nightly-load-{environment}"]
        assert_runnable(services, deployment, f"ecs-{environment}-{SUFFIX}", "/opt/prefect/flows")
        # Fargate's units: 1 vCPU is 1024 CPU units, 2Gi is 2048 MiB
        assert (deployment["job_variables"]["cpu"], deployment["job_variables"]["memory"]) == (1024, 2048)

    again = deploy(path, env, "prod", "--cpu", "1", "--memory", "2Gi", api_url=url)
    assert again.returncode == Exit.OK, shown(again)
    assert actions(again) == {"nightly-load-prod": "unchanged"}, shown(again)
    assert json.loads(again.stdout)["requests"]["writes"] == 0, shown(again)


def test_multi_cloud_a_subfolder_context_is_refused_until_the_image_holds_the_entrypoint(
        services, env, prefect_server, tmp_path):
    path = team("multi-cloud", tmp_path, services)
    pools = {"aws": ("aws-ecs", "ecs"), "gcp": ("gcp-run", "cloud-run-v2"),
             "azure": ("azure-aci", "azure-container-instance")}
    for name, kind in pools.values():
        create_pool(prefect_server, f"{name}-{SUFFIX}", kind)
    project = f"multi-cloud-{SUFFIX}"
    url = prefect_server.api_url

    refused = deploy(path, env, "aws", api_url=url)
    assert refused.returncode == Exit.INVALID, shown(refused)
    # the file, the path in the image, where the image has it, and the fix, at the entrypoint's line
    line = next(i for i, text in enumerate(path.read_text().splitlines(), 1) if "entrypoint: workflow/" in text)
    assert re.search(rf"flows\.yaml:{line}:\d+: error: deployment 'sync' runs workflow/flow\.py from "
                     r"/opt/prefect/platform .*has no file /opt/prefect/platform/workflow/flow\.py; "
                     r"the image has flow\.py at /opt/prefect/platform/flow\.py.*copy the code so that "
                     r"workflow/flow\.py lies under /opt/prefect/platform .*\[image-entrypoint\]",
                     refused.stderr), shown(refused)
    assert registered(prefect_server, project) == {}, "a refused deploy wrote a deployment"

    # the fix: the image keeps the manifest's layout, workflow/ under the WORKDIR
    dockerfile = path.parent / "workflow" / "Dockerfile"
    dockerfile.write_text(dockerfile.read_text().replace("COPY flow.py .", "COPY flow.py workflow/"))
    for environment in pools:
        result = deploy(path, env, environment, api_url=url)
        assert result.returncode == Exit.OK, shown(result)
        assert actions(result) == {f"sync-{environment}": "create"}, shown(result)
    found = registered(prefect_server, project)
    for environment, (name, _) in pools.items():
        deployment = found[f"sync-{environment}"]
        assert deployment["entrypoint"] == "workflow/flow.py:sync"
        assert_runnable(services, deployment, f"{name}-{SUFFIX}", "/opt/prefect/platform")
    sizes = {environment: (found[f"sync-{environment}"]["job_variables"].get("cpu"),
                           found[f"sync-{environment}"]["job_variables"].get("memory")) for environment in pools}
    # each cloud's own units: ECS CPU units and MiB, Cloud Run's quantities, ACI's cores and GB
    assert sizes == {"aws": (512, 1024), "gcp": ("1000m", "512Mi"), "azure": (1.0, 1.5)}, sizes

    for environment in pools:
        again = deploy(path, env, environment, api_url=url)
        assert again.returncode == Exit.OK and actions(again) == {f"sync-{environment}": "unchanged"}, shown(again)
        assert json.loads(again.stdout)["requests"]["writes"] == 0, shown(again)


def test_ecs_push_pool_with_event_triggers_and_a_rerun_that_writes_nothing(services, env, prefect_server, tmp_path):
    path = team("ecs-push-webhook", tmp_path, services)
    pool = f"ecs-push-{SUFFIX}"
    create_pool(prefect_server, pool, "ecs:push")
    project = f"ecs-push-webhook-{SUFFIX}"
    url = prefect_server.api_url

    cold = deploy(path, env, "prod", api_url=url)
    assert cold.returncode == Exit.OK, shown(cold)
    assert actions(cold) == {"on-upload-prod": "create", "on-delete-prod": "create"}, shown(cold)
    found = registered(prefect_server, project)
    for name in ("on-upload-prod", "on-delete-prod"):
        assert_runnable(services, found[name], pool, "/opt/prefect/ecs-push-webhook")
        assert (found[name]["job_variables"]["cpu"], found[name]["job_variables"]["memory"]) == (256, 512)
    automations = api(prefect_server, "POST", "/automations/filter", json={})
    expected = {a["trigger"]["expect"][0]: a["actions"][0] for a in automations
                if any(x.get("deployment_id") in {found[n]["id"] for n in found} for x in a["actions"])}
    assert sorted(expected) == ["webhook.file.deleted", "webhook.file.uploaded"], automations
    assert expected["webhook.file.uploaded"]["deployment_id"] == found["on-upload-prod"]["id"]
    assert expected["webhook.file.uploaded"]["parameters"] == {"key": "{{ event.resource.id }}"}

    again = deploy(path, env, "prod", api_url=url)
    assert again.returncode == Exit.OK, shown(again)
    assert set(actions(again).values()) == {"unchanged"}, shown(again)
    assert json.loads(again.stdout)["requests"]["writes"] == 0, shown(again)


def test_cloud_run_runner_deploys_through_prefect_cloud(services, env, prefect_server, tmp_path):
    path = team("cloud-run-runner", tmp_path, services)
    pool = f"cloud-run-{SUFFIX}"
    create_pool(prefect_server, pool, "cloud-run-v2")
    project = f"cloud-run-runner-{SUFFIX}"

    with CloudStandIn(prefect_server.api_url) as cloud:
        cloud_env = {**env, "PREFECT_API_KEY": cloud.api_key}
        cold = deploy(path, cloud_env, "dev", api_url=cloud.api_url)
        assert cold.returncode == Exit.OK, shown(cold)
        assert actions(cold) == {"score-dev": "create"}, shown(cold)
        again = deploy(path, cloud_env, "dev", api_url=cloud.api_url)
    assert again.returncode == Exit.OK, shown(again)
    assert actions(again) == {"score-dev": "unchanged"}, shown(again)
    assert json.loads(again.stdout)["requests"]["writes"] == 0, shown(again)
    assert cloud.api_key not in cold.stdout + cold.stderr + again.stdout + again.stderr

    deployment = registered(prefect_server, project)["score-dev"]
    assert_runnable(services, deployment, pool, "/code")
    assert (deployment["job_variables"]["cpu"], deployment["job_variables"]["memory"]) == ("2000m", "4Gi")
