"""The registrar in its container, on the test Docker engine: the composite action building the image
from this checkout's Dockerfile (as the action's own CI does) and running it, then the prebuilt image
(as users get it), then the image on its own as a Docker action (`uses: docker://...`).

The Dockerfile's two public base images cannot be pulled here: local stand-ins take their place
through its build arguments (conftest.build_args).
"""

from __future__ import annotations

import json
import re

import pytest
from act import local_repositories, run_act
from support.action_repos import deployments_on
from support.services import docker

pytestmark = pytest.mark.e2e

PROD = {"daily-sales-prod", "ingest-forecast-prod", "weekly-report-prod"}  # sales-backfill is off in prod
DEV = {"daily-sales-dev", "sales-backfill-dev", "ingest-forecast-dev", "weekly-report-dev"}


def rows(summary: str) -> set[str]:
    """The deployment names in the summary's Markdown table rows."""
    return {name for name in PROD | DEV if re.search(rf"^\|.*\b{name}\b.*\|$", summary, re.M)}


def test_registrar_image_from_the_dockerfile_then_the_prebuilt_image(flows_repo, prefect_server, work_pools,
                                                                     host_env, action_checkout, act_cache,
                                                                     build_args, registrar_image, repository,
                                                                     services, project):
    inputs = {"environment": "prod", "work-pool": "act-ecs", "cpu": "1", "memory": "2Gi",
              "prefect-api-url": prefect_server.api_url}
    extra = local_repositories(flows_repo / ".github/workflows", action_checkout)

    built = run_act(flows_repo, ".github/workflows/test-register.yml", cache=act_cache, host_env=host_env,
                    inputs={**inputs, "runtime": "dockerfile"},
                    env={"FLOW_REGISTER_BUILD_ARGS": " ".join(build_args)}, extra=extra)
    assert built.succeeded, built.explain()
    version = re.search(r'^version = "(.+)"$', (action_checkout / "pyproject.toml").read_text(), re.M).group(1)
    assert f"using flow-register-action:v{version}" in built.log  # built from the checkout, then run
    docker(services, "image", "inspect", f"flow-register-action:v{version}")
    outputs = built.outputs("register")
    assert (outputs["created"], outputs["updated"], outputs["unchanged"]) == ("3", "0", "0"), outputs
    assert re.fullmatch(re.escape(repository) + r"@sha256:[0-9a-f]{64}", outputs["image"]), outputs["image"]
    assert rows(built.summary("register")) == PROD
    registered = deployments_on(prefect_server.api_url, project, "prod")
    assert {d["name"] for d in registered} == PROD
    assert {d["work_pool_name"] for d in registered} == {"act-ecs"}

    # the image a release publishes, found locally (it is pulled only when missing), run again: nothing to do
    prebuilt = run_act(flows_repo, ".github/workflows/test-register.yml", cache=act_cache, host_env=host_env,
                       inputs={**inputs, "runtime": "image"}, env={"FLOW_REGISTER_IMAGE": registrar_image},
                       extra=extra)
    assert prebuilt.succeeded, prebuilt.explain()
    assert f"using {registrar_image}" in prebuilt.log
    outputs = prebuilt.outputs("register")
    assert (outputs["created"], outputs["updated"], outputs["unchanged"]) == ("0", "0", "3"), outputs
    assert {d["action"] for d in json.loads(outputs["deployments"])} == {"unchanged"}


def test_registrar_image_as_a_docker_action(flows_repo, prefect_server, work_pools, host_env, action_checkout,
                                           act_cache, registrar_image, project):
    run = run_act(flows_repo, ".github/workflows/test-docker-action.yml", cache=act_cache, host_env=host_env,
                  inputs={"prefect-api-url": prefect_server.api_url},
                  # act passes the host's paths (workspace, output and summary files) to a Docker action in a
                  # self-hosted job but mounts none of them; GitHub mounts them. Mount act's folder under the
                  # same path, and use the host's network, where the server listens.
                  extra=[*local_repositories(flows_repo / ".github/workflows", action_checkout),
                         "--container-options", f"--network host --volume {act_cache}:{act_cache}"])
    assert run.succeeded, run.explain()

    outputs = run.outputs("plan")
    assert (outputs["created"], outputs["updated"], outputs["deleted"]) == ("4", "0", "0"), outputs
    assert rows(run.summary("plan")) == DEV
    assert deployments_on(prefect_server.api_url, project, "dev") == []  # a dry run writes nothing


def test_an_image_that_cannot_be_pulled_fails_the_step_saying_which(flows_repo, prefect_server, host_env,
                                                                    action_checkout, act_cache, services):
    missing = f"{services['REGISTRY']}/flow-register/missing:v0"
    run = run_act(flows_repo, ".github/workflows/test-register.yml", cache=act_cache, host_env=host_env,
                  inputs={"environment": "dev", "runtime": "image", "prefect-api-url": prefect_server.api_url},
                  env={"FLOW_REGISTER_IMAGE": missing},
                  extra=local_repositories(flows_repo / ".github/workflows", action_checkout))
    assert not run.succeeded
    assert [e["message"] for e in run.annotations("error")] == [
        f"cannot pull FLOW_REGISTER_IMAGE={missing}; unset it to use the released image"], run.explain()
