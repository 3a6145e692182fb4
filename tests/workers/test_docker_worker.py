"""The Docker worker (prefect-docker) creates the container for flow-register's job variables in the
real Docker engine (started by .ci/services), and the memory limit the engine stores is the manifest's.

The worker's own steps, as `DockerWorker._create_and_start_container` runs them, without the start:
build the container settings, create the container; then the engine's inspect is read back.
"""

from __future__ import annotations

import pytest
from prefect_docker.worker import DockerWorker

from registered import ids, job_configuration, mib, registered
from support.services import services_env

DOCKER = registered("docker")


@pytest.fixture(scope="module")
def engine():
    env = services_env()
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("DOCKER_HOST", env["DOCKER_HOST"])
        yield env


@pytest.mark.parametrize("deployment", DOCKER, ids=ids(DOCKER))
def test_the_container_the_engine_stores_has_the_manifests_memory_limit(deployment, engine):
    # the registrar sets the image it built; any image present in the engine stands for it
    configuration = job_configuration(DockerWorker, deployment, extra={"image": engine["BASE_IMAGE"]})
    worker = DockerWorker(work_pool_name=deployment.work_pool)
    client = worker._get_client()
    container = worker._create_container(client, **worker._build_container_settings(client, configuration))
    try:
        host_config = client.api.inspect_container(container.id)["HostConfig"]
    finally:
        container.remove(force=True)
        client.close()

    memory = deployment.resources.get("memory")
    assert host_config["Memory"] == (mib(memory) * 1024 * 1024 if memory is not None else 0)  # 0: no limit
    assert host_config["NanoCpus"] == 0  # docker pools take no cpu (flow-register refuses resources.cpu)
