"""Every pool type flow-register translates resources for has its worker's test in this tier."""

from __future__ import annotations

from register.prefect import resources

from registered import ALL

WORKER_TESTS = {  # pool type -> the test module that runs its worker
    "ecs": "test_ecs_worker", "cloud-run-v2": "test_cloud_run_workers", "cloud-run": "test_cloud_run_workers",
    "azure-container-instance": "test_aci_worker", "kubernetes": "test_kubernetes_worker",
    "docker": "test_docker_worker",
}


def test_every_pool_type_that_takes_resources_is_run_through_its_worker():
    assert set(resources.VARIABLES) == set(WORKER_TESTS)
    exercised = {resources.base_type(d.pool_type) for d in ALL if d.resources}
    assert exercised == set(WORKER_TESTS)
