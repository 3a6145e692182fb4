"""The Kubernetes worker (prefect-kubernetes) builds the Job manifest it would create from
flow-register's job variables: the container's requests and limits are the manifest's CPU and memory.

Stops at the Job manifest: no Kubernetes API server runs here. The manifest is the worker's own
`job_manifest` after `prepare_for_flow_run`, what it sends to `create_namespaced_job`.
"""

from __future__ import annotations

import pytest
from prefect_kubernetes.worker import KubernetesWorker

from registered import ids, job_configuration, mib, registered, vcpu

KUBERNETES = registered("kubernetes")


@pytest.mark.parametrize("deployment", KUBERNETES, ids=ids(KUBERNETES))
def test_the_job_container_requests_and_limits_the_manifests_cpu_and_memory(deployment):
    manifest = job_configuration(KubernetesWorker, deployment).job_manifest
    [container] = manifest["spec"]["template"]["spec"]["containers"]
    resources = container["resources"]

    written = deployment.resources
    expected = {"cpu": written.get("cpu"), "memory": written.get("memory")}
    for kind in ("requests", "limits"):
        # a size not written is not set at all: the cluster's defaults (LimitRange) apply
        assert set(resources.get(kind, {})) == {name for name, value in expected.items() if value is not None}
        for name, parse in (("cpu", vcpu), ("memory", mib)):
            if expected[name] is not None:
                assert parse(resources[kind][name]) == parse(expected[name]), \
                    f"{kind}.{name}: the manifest says {expected[name]}, the Job gets {resources[kind][name]}"
