"""What flow-register registers, handed to the workers' own code the way a worker receives it.

Every deployment of the fixtures (tests/unit/manifests/valid-*.yaml, examples/flows.yaml,
tests/workers/manifests/*.yaml) is rendered with `flow-register render -f M -e ENV`, environment by
environment. A worker then builds its job configuration exactly as Prefect does when a flow run
starts: the pool's default base job template (`get_default_base_job_template()`), the deployment's
job variables checked against that template's variables schema (what the server does on
`POST /deployments/`), merged by `BaseJobConfiguration.from_template_and_values`, then
`prepare_for_flow_run`. No Prefect server is involved: the templates reference no block or variable.
"""

from __future__ import annotations

import asyncio
import contextlib
import io
import json
import uuid
from dataclasses import dataclass
from decimal import Decimal
from pathlib import Path

from register.prefect import resources
from register.cli import main
from register.manifest import load_manifest

TESTS = Path(__file__).resolve().parents[1]
MANIFESTS = [*sorted((TESTS / "unit" / "manifests").glob("valid-*.yaml")), TESTS.parent / "examples" / "flows.yaml",
             *sorted((TESTS / "workers" / "manifests").glob("*.yaml"))]


@dataclass(frozen=True)
class Registered:
    """One deployment as flow-register registers it: its pool and job variables, and the resources written."""

    manifest: Path
    environment: str
    name: str
    work_pool: str
    pool_type: str
    job_variables: dict
    resources: dict  # as written in the manifest (merged over defaults and environments)

    @property
    def id(self) -> str:
        return f"{self.manifest.parent.name}/{self.manifest.name}:{self.environment}:{self.name}"


def render(manifest: Path, environment: str) -> dict:
    """`flow-register render -f MANIFEST -e ENVIRONMENT`'s JSON."""
    out = io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(io.StringIO()):
        code = main(["render", "-f", str(manifest), "-e", environment])
    assert code == 0, f"flow-register render -f {manifest} -e {environment} exited {code}"
    return json.loads(out.getvalue())


def _all() -> list[Registered]:
    found = []
    for path in MANIFESTS:
        manifest = load_manifest(path)
        for environment in manifest.environments:
            written = {d.name: d.resources for d in manifest.deployments(environment)}
            for entry in render(path, environment)["deployments"]:
                found.append(Registered(path, environment, entry["name"], entry["work_pool"],
                                        entry["work_pool_type"], entry["job_variables"], written[entry["name"]] or {}))
    return found


ALL = _all()


def registered(*pool_types: str) -> list[Registered]:
    return [r for r in ALL if r.pool_type in pool_types]


def ids(deployments: list[Registered]) -> list[str]:
    return [d.id for d in deployments]


class NoPrefectServer:
    """Handed to Prefect as its client: templating asks it only for block or variable references, which
    these templates do not hold. If a worker ever needs the server, the test says so instead of hanging."""

    def __getattr__(self, name):
        raise AssertionError(f"the worker's preparation called the Prefect API ({name}); use the prefect_server fixture")


def flow_run(deployment: Registered):
    from prefect.client.schemas.objects import FlowRun

    return FlowRun(name=deployment.name.replace("_", "-"), flow_id=uuid.uuid4(), deployment_id=uuid.uuid4())


def job_configuration(worker_class, deployment: Registered, run=None, extra: dict | None = None):
    """The worker's job configuration for this deployment's flow run, built as Prefect builds it."""
    from prefect.utilities.schema_tools import validate

    template = worker_class.get_default_base_job_template()
    values = {**deployment.job_variables, **(extra or {})}
    # the server's own check on POST /deployments/ (prefect.server.api.validation)
    validate(values, template["variables"], raise_on_error=True, preprocess=True, ignore_required=True,
             allow_none_with_default=True)
    configuration = asyncio.run(worker_class.job_configuration.from_template_and_values(
        template, values, client=NoPrefectServer()))
    configuration.prepare_for_flow_run(run or flow_run(deployment))
    return configuration


def vcpu(value) -> Decimal:
    return resources.parse_cpu(value)


def mib(value) -> Decimal:
    return resources.parse_memory(value)


def accepted(pool_type: str, cpu, memory) -> list[str]:
    """flow-register's own check of the complete pair that reaches the platform (both sides stated)."""
    translation = resources.translate({"cpu": cpu, "memory": memory}, pool_type)
    return [message for _, message, _ in translation.errors]
