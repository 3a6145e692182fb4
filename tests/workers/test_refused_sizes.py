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

from register import resources
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
