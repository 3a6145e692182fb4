"""The Azure Container Instances worker (prefect-azure) builds the ARM template it would deploy from
flow-register's job variables: the container's requests are the manifest's CPU and memory (in GB).

Stops at the template: Azure's endpoints cannot run here. The template is the worker's own
`arm_template` after `prepare_for_flow_run`, what `_provision_container_group` deploys.
"""

from __future__ import annotations

from decimal import Decimal

import pytest
from prefect_azure.workers.container_instance import AzureContainerWorker

from registered import ids, job_configuration, mib, registered, vcpu

ACI = registered("azure-container-instance")
DEFAULTS = {name: AzureContainerWorker.get_default_base_job_template()["variables"]["properties"][name]["default"]
            for name in ("cpu", "memory")}  # vCPU, GB
POOL = {"resource_group_name": "flows", "subscription_id": "00000000-0000-0000-0000-000000000000"}  # set on the pool
GB_PER_MIB = Decimal(1024 * 1024) / 10**9


@pytest.mark.parametrize("deployment", ACI, ids=ids(ACI))
def test_the_container_group_requests_the_manifests_cpu_and_memory(deployment):
    template = job_configuration(AzureContainerWorker, deployment, extra=POOL).arm_template
    [group] = template["resources"]
    [container] = group["properties"]["containers"]
    requests = container["properties"]["resources"]["requests"]

    written = deployment.resources
    cpu = vcpu(written["cpu"]) if written.get("cpu") is not None else Decimal(str(DEFAULTS["cpu"]))
    gb = mib(written["memory"]) * GB_PER_MIB if written.get("memory") is not None else Decimal(str(DEFAULTS["memory"]))
    assert Decimal(str(requests["cpu"])) == cpu
    # ACI takes memory in GB; flow-register rounds to 0.01 GB
    assert abs(Decimal(str(requests["memoryInGB"])) - gb) <= Decimal("0.005")
