"""The ECS worker (prefect-aws) registers the task definition for flow-register's job variables in
moto's ECS, and the CPU and memory read back are the ones the manifest asked for: a Fargate pair.

The worker's own steps, as `ECSWorker._create_task_and_wait_for_start` runs them: prepare the task
definition, validate it, register it, prepare the RunTask request. Moto's ECS stores what it is given
without Fargate's pair rule, so the pair read back is checked with flow-register's Fargate table.
"""

from __future__ import annotations

import logging
from decimal import Decimal

import boto3
import pytest
from prefect_aws.workers.ecs_worker import ECS_DEFAULT_CPU, ECS_DEFAULT_MEMORY, ECSWorker

from register.prefect.resources import FARGATE
from registered import accepted, flow_run, ids, job_configuration, mib, registered, vcpu
from support.services import services_env

REGION = "eu-west-1"
ECS = registered("ecs", "ecs:push")


@pytest.fixture(scope="module")
def moto_ecs():
    """Credentials and endpoint for moto's server (started by .ci/services), read by boto3 itself."""
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("AWS_ENDPOINT_URL", services_env()["MOTO_URL"])
        patch.setenv("AWS_ACCESS_KEY_ID", "testing")
        patch.setenv("AWS_SECRET_ACCESS_KEY", "testing")
        patch.setenv("AWS_DEFAULT_REGION", REGION)
        for name in ("AWS_PROFILE", "AWS_SESSION_TOKEN", "AWS_REGION"):
            patch.delenv(name, raising=False)
        yield boto3.client("ecs", region_name=REGION)


def run_on_ecs(deployment, ecs):
    """The task definition moto stores for this deployment's flow run, and the RunTask request the worker sends."""
    run = flow_run(deployment)
    configuration = job_configuration(ECSWorker, deployment, run)
    worker = ECSWorker(work_pool_name=deployment.work_pool)
    task_definition = worker._prepare_task_definition(configuration, region=REGION, flow_run=run)
    worker._validate_task_definition(task_definition, configuration)
    client = worker._get_client(configuration, "ecs")
    arn, _ = worker._get_or_register_task_definition(logging.getLogger(__name__), client, configuration, run,
                                                     task_definition)
    request = worker._prepare_task_run_request(configuration, task_definition, arn)
    return ecs.describe_task_definition(taskDefinition=arn)["taskDefinition"], request


@pytest.mark.parametrize("deployment", ECS, ids=ids(ECS))
def test_the_task_definition_ecs_stores_has_the_cpu_and_memory_of_the_manifest(deployment, moto_ecs):
    stored, request = run_on_ecs(deployment, moto_ecs)

    written = deployment.resources
    cpu_units = int(vcpu(written["cpu"]) * 1024) if written.get("cpu") is not None else ECS_DEFAULT_CPU
    memory = int(mib(written["memory"])) if written.get("memory") is not None else ECS_DEFAULT_MEMORY
    assert (stored["cpu"], stored["memory"]) == (str(cpu_units), str(memory))
    assert stored["requiresCompatibilities"] == ["FARGATE"]
    assert accepted("ecs", Decimal(stored["cpu"]) / 1024, int(stored["memory"])) == []

    # RunTask's overrides win over the task definition: they say the same, or nothing
    overrides = request["overrides"]
    [container] = overrides["containerOverrides"]
    for name in ("cpu", "memory"):
        assert overrides.get(name) in (None, stored[name])
        assert container.get(name) in (None, int(stored[name]))


def test_every_fargate_cpu_class_is_covered_at_its_smallest_and_largest_memory():
    stated = {(int(vcpu(d.resources["cpu"]) * 1024), int(mib(d.resources["memory"])))
              for d in ECS if d.resources.get("cpu") is not None and d.resources.get("memory") is not None}
    assert stated >= {(units, memory) for units, valid in FARGATE.items() for memory in (valid[0], valid[-1])}
