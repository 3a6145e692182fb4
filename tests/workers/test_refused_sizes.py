"""Sizes the worker would complete or pass on into something the platform refuses are refused by
`flow-register validate`, at the line that wrote them, naming the default the worker would use.

tests/workers/manifests/refused/<pool type>.yaml print exactly their .expected lines. The defaults
flow-register names are the workers' own, read from the installed worker packages.
"""

from __future__ import annotations

from pathlib import Path

import pytest
from prefect_aws.workers.ecs_worker import ECS_DEFAULT_CPU, ECS_DEFAULT_MEMORY
from prefect_gcp.workers.cloud_run_v2 import CloudRunWorkerV2

from register.prefect import resources
from register.cli import main

from registered import mib

REFUSED = sorted((Path(__file__).parent / "manifests" / "refused").glob("*.yaml"))


@pytest.mark.parametrize("path", REFUSED, ids=lambda p: p.stem)
def test_a_size_the_platform_would_refuse_is_refused_at_its_line(path, capsys, monkeypatch):
    monkeypatch.chdir(path.parent)
    code = main(["validate", "-f", path.name])
    reported = [line for line in capsys.readouterr().err.splitlines() if line.startswith(f"{path.name}:")]
    assert code == 1
    assert reported == path.with_suffix(".expected").read_text().splitlines()


def test_the_defaults_flow_register_assumes_are_the_workers():
    assert resources.ECS_WORKER_DEFAULTS == (ECS_DEFAULT_CPU, ECS_DEFAULT_MEMORY)
    template = CloudRunWorkerV2.get_default_base_job_template()["variables"]["properties"]
    assert resources.CLOUD_RUN_DEFAULT_MEMORY == mib(template["memory"]["default"])
    assert resources.parse_cpu(template["cpu"]["default"]) == 1  # what the Cloud Run checks assume


@pytest.mark.integration
def test_an_ecs_pool_on_ec2_is_held_to_ec2s_sizes_at_plan_time(project, api):
    """The launch type is the pool's own (its base job template's default): 3 vCPU with 3000 MiB is no Fargate
    pair, and runs on EC2. Offline it is a warning; the plan reads the template and decides."""
    import copy

    from support.registration import unique, worker_templates

    pools = {}
    for launch in ("EC2", "FARGATE"):
        template = copy.deepcopy(worker_templates()["ecs"])
        template["variables"]["properties"]["launch_type"]["default"] = launch
        pools[launch] = unique(f"ecs-{launch.lower()}")
        api.create_pool(pools[launch], "ecs", template)
    manifest = copy.deepcopy(project.manifest)
    manifest["defaults"]["work_pool"] = {"name": pools["EC2"], "type": "ecs"}
    manifest["deployments"][0]["resources"] = {"cpu": 3, "memory": 3000}
    project.write(manifest)
    on_ec2 = project.plan()
    assert on_ec2.code == 0, on_ec2
    assert "warning: environment 'dev', ecs pool '" + pools["EC2"] + "': cpu 3 is not a Fargate size; valid vCPU are " \
           "0.25, 0.5, 1, 2, 4, 8, 16 (if the pool launches on Fargate" in on_ec2.err  # offline, told only

    manifest["deployments"][1]["resources"] = {"cpu": 0.1}  # 102.4 CPU units: EC2 refuses it too
    project.write(manifest)
    refused = project.plan()
    assert refused.code == 1, refused
    assert "cpu 0.1 (102.4 CPU units) is not a size ECS runs on EC2 (launch_type EC2 in the pool's base job " \
           "template): give whole CPU units from 128 to 196608 (0.125 to 192 vCPU) [resources-ec2]" in refused.err

    del manifest["deployments"][1]["resources"]
    manifest["defaults"]["work_pool"]["name"] = pools["FARGATE"]
    project.write(manifest)
    on_fargate = project.plan()
    assert on_fargate.code == 1, on_fargate
    assert "error: environment 'dev', ecs pool '" + pools["FARGATE"] + "': cpu 3 is not a Fargate size" in on_fargate.err
