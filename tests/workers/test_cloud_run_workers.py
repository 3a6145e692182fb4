"""The Cloud Run workers (prefect-gcp) build the job they would create from flow-register's job
variables, and its container limits are the CPU and memory of the manifest.

Stops at the request body: GCP's endpoints cannot run here, and no local stand-in implements Cloud
Run's API. The body is what the worker hands to `jobs.create` (v2: `configuration.job_body`; v1: the
`job_body` of `CloudRunWorkerJobConfiguration`), prepared by the worker's own `prepare_for_flow_run`.
Cloud Run's own size rules are checked with flow-register's, on the complete pair in the body.
"""

from __future__ import annotations

import json

import pytest
from prefect_gcp.workers.cloud_run import CloudRunWorker
from prefect_gcp.workers.cloud_run_v2 import CloudRunWorkerV2

from registered import accepted, ids, job_configuration, mib, registered, vcpu

V2 = registered("cloud-run-v2", "cloud-run-v2:push")
V1 = registered("cloud-run", "cloud-run:push")
TEMPLATE_DEFAULTS = {name: CloudRunWorkerV2.get_default_base_job_template()["variables"]["properties"][name]["default"]
                     for name in ("cpu", "memory")}


@pytest.fixture(autouse=True, scope="module")
def application_default_credentials(tmp_path_factory):
    """The workers' GcpCredentials block loads Google's application default credentials when it is built;
    a user's credentials file (as `gcloud auth application-default login` writes it) is enough offline."""
    path = tmp_path_factory.mktemp("gcloud") / "application_default_credentials.json"
    path.write_text(json.dumps({"type": "authorized_user", "client_id": "flow-register-tests",
                                "client_secret": "unused", "refresh_token": "unused", "quota_project_id": "flows"}))
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("GOOGLE_APPLICATION_CREDENTIALS", str(path))
        yield


def assert_limits_are_the_manifests(limits: dict, deployment, defaults: dict, pool_type: str):
    written = deployment.resources
    for name, parse in (("cpu", vcpu), ("memory", mib)):
        expected = written.get(name) if written.get(name) is not None else defaults.get(name)
        if expected is None:
            assert name not in limits  # left to Cloud Run's own default
        else:
            assert parse(limits[name]) == parse(expected), \
                f"{name}: the manifest says {expected}, the job gets {limits[name]}"
    assert accepted(pool_type, limits.get("cpu"), limits.get("memory")) == []


@pytest.mark.parametrize("deployment", V2, ids=ids(V2))
def test_cloud_run_v2_job_body_limits_are_the_manifests_cpu_and_memory(deployment):
    body = job_configuration(CloudRunWorkerV2, deployment).job_body
    [container] = body["template"]["template"]["containers"]
    assert_limits_are_the_manifests(container["resources"]["limits"], deployment, TEMPLATE_DEFAULTS, "cloud-run-v2")


@pytest.mark.parametrize("deployment", V1, ids=ids(V1))
def test_cloud_run_v1_job_body_requests_and_limits_are_the_manifests_cpu_and_memory(deployment):
    body = job_configuration(CloudRunWorker, deployment).job_body
    [container] = body["spec"]["template"]["spec"]["template"]["spec"]["containers"]
    assert container["resources"]["limits"] == container["resources"]["requests"]
    # the v1 template has no default sizes: what is not written is left to Cloud Run
    assert_limits_are_the_manifests(container["resources"]["limits"], deployment, {}, "cloud-run")


def test_the_fixtures_cover_cloud_run_sizes():
    """Fractional and whole CPUs, more than 4Gi on 2 CPUs, 32Gi on 8, each side alone; v1's whole CPUs."""
    sizes = [(d.resources.get("cpu"), d.resources.get("memory")) for d in V2]
    stated = [(vcpu(c), mib(m)) for c, m in sizes if c is not None and m is not None]
    assert any(c < 1 for c, _ in stated)
    assert any(c == 2 and m > 4 * 1024 for c, m in stated)
    assert (8, 32 * 1024) in stated
    assert any(c is None for c, _ in sizes) and any(m is None for _, m in sizes)
    assert {vcpu(d.resources["cpu"]) for d in V1} >= {1, 2, 4, 8}
