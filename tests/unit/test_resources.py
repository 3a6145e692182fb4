"""Every translation of DESIGN.md's resource table, and every limit, with the valid values named."""

from __future__ import annotations

import pytest

from register.prefect.resources import FARGATE, parse_cpu, parse_memory, translate


@pytest.mark.parametrize("text, mib", [("512Mi", 512), ("2Gi", 2048), (1024, 1024), ("1G", 953.67431640625),
                                       ("1.5Gi", 1536), ("1048576Ki", 1024)])
def test_memory_quantities(text, mib):
    assert float(parse_memory(text)) == pytest.approx(mib)


@pytest.mark.parametrize("text, vcpu", [(0.25, 0.25), (2, 2), ("250m", 0.25), ("1500m", 1.5), ("1", 1)])
def test_cpu_forms(text, vcpu):
    assert float(parse_cpu(text)) == vcpu


@pytest.mark.parametrize("pool_type, resources, variables", [
    ("ecs", {"cpu": 0.25, "memory": "512Mi"}, {"cpu": 256, "memory": 512}),
    ("ecs", {"cpu": "4000m", "memory": "30Gi"}, {"cpu": 4096, "memory": 30720}),
    ("ecs:push", {"cpu": 16, "memory": "120Gi"}, {"cpu": 16384, "memory": 122880}),
    ("cloud-run-v2", {"cpu": 0.5, "memory": "512Mi"}, {"cpu": "500m", "memory": "512Mi"}),
    ("cloud-run-v2", {"cpu": 8, "memory": "32Gi"}, {"cpu": "8000m", "memory": "32Gi"}),
    ("cloud-run", {"cpu": 2, "memory": "1Gi"}, {"cpu": "2000m", "memory": "1Gi"}),
    ("azure-container-instance", {"cpu": 1.5, "memory": "3G"}, {"cpu": 1.5, "memory": 3.0}),
    ("kubernetes", {"cpu": "250m", "memory": "1Gi"},
     {"cpu_request": "250m", "cpu_limit": "250m", "memory_request": "1024Mi", "memory_limit": "1024Mi"}),
    ("docker", {"memory": "2Gi"}, {"mem_limit": "2048m"}),
])
def test_translation(pool_type, resources, variables):
    result = translate(resources, pool_type)
    assert (result.job_variables, result.errors) == (variables, [])


def test_every_fargate_pair_is_accepted_and_its_neighbours_are_not():
    for units, memories in FARGATE.items():
        for memory in memories:
            assert translate({"cpu": units / 1024, "memory": memory}, "ecs").errors == []
        step = memories[1] - memories[0]
        assert translate({"cpu": units / 1024, "memory": memories[-1] + step}, "ecs").errors


@pytest.mark.parametrize("pool_type, resources, message", [
    ("ecs", {"cpu": 1, "memory": "1Gi"},
     "Fargate does not accept 1024 MiB with 1 vCPU (1024 CPU units); valid memory is 2048 to 8192 in steps of 1024 MiB"),
    ("ecs", {"cpu": 0.25, "memory": "4Gi"},
     "Fargate does not accept 4096 MiB with 0.25 vCPU (256 CPU units); valid memory is 512, 1024, 2048 MiB"),
    ("ecs", {"cpu": 3}, "cpu 3 is not a Fargate size; valid vCPU are 0.25, 0.5, 1, 2, 4, 8, 16"),
    ("cloud-run-v2", {"cpu": 9}, "cpu 9 is above Cloud Run's limit of 8 vCPU"),
    ("cloud-run-v2", {"cpu": 8, "memory": "33Gi"}, "memory 33792 MiB is above Cloud Run's limit of 32Gi"),
    ("cloud-run-v2", {"cpu": 1, "memory": "5Gi"}, "Cloud Run needs at least 2 vCPU for 5Gi of memory; cpu is 1"),
    ("cloud-run-v2", {"memory": "9Gi"}, "Cloud Run needs at least 4 vCPU for 9Gi of memory; cpu is the default 1"),
    ("cloud-run-v2", {"cpu": 4, "memory": "17Gi"}, "Cloud Run needs at least 6 vCPU for 17Gi of memory; cpu is 4"),
    ("cloud-run-v2", {"cpu": 6, "memory": "25Gi"}, "Cloud Run needs at least 8 vCPU for 25Gi of memory; cpu is 6"),
    ("cloud-run", {"cpu": 1.5}, "cpu 1.5 is not allowed on 'cloud-run' pools: whole CPUs only (1, 2, 4, 6, 8)"),
    ("docker", {"cpu": 1}, "docker work pools have no cpu variable; remove resources.cpu (memory becomes mem_limit)"),
    ("process", {"memory": "1Gi"}, "work pool type 'process' takes no resources; remove 'resources' or use a pool "
                                   "of type ecs, ecs:push, cloud-run, cloud-run:push, cloud-run-v2, "
                                   "cloud-run-v2:push, azure-container-instance, azure-container-instance:push, "
                                   "kubernetes, docker"),
    ("ecs", {"memory": "2Gb"}, "memory '2Gb' has an unknown unit 'Gb'; use one of Ki, Mi, Gi, Ti, k, K, M, G, T "
                               "(or none, for MiB)"),
    ("ecs", {"cpu": "two"}, "cpu 'two' is not a number of vCPU (0.25, 1, 2) or millicores ('250m')"),
])
def test_limits_name_the_valid_values(pool_type, resources, message):
    assert [m for _, m, _ in translate(resources, pool_type).errors] == [message]


def test_azure_above_its_usual_limits_is_a_warning_not_an_error():
    result = translate({"cpu": 6, "memory": "20G"}, "azure-container-instance")
    assert result.errors == [] and len(result.warnings) == 2
    assert result.job_variables == {"cpu": 6.0, "memory": 20.0}


def test_unknown_pool_type_offline_translates_nothing_but_still_checks_units():
    assert translate({"cpu": 1, "memory": "1Gi"}, None).job_variables == {}
    assert translate({"memory": "lots"}, None).errors


@pytest.mark.parametrize("cpu, message", [
    ("nan", "cpu must be a finite number of vCPU (0.25, 1, 2) or millicores ('250m'); got nan"),
    (float("inf"), "cpu must be a finite number of vCPU (0.25, 1, 2) or millicores ('250m'); got inf"),
    (0.0001, "cpu 0.0001 is 0.1 millicores; use whole millicores (at least 0.001 vCPU, '1m')"),
    ("0.5m", "cpu 0.5m is 0.5 millicores; use whole millicores (at least 0.001 vCPU, '1m')"),
])
def test_a_cpu_without_a_finite_whole_number_of_millicores_is_refused(cpu, message):
    """As the command line's --cpu gives them too: nothing that would become 'nan' or '0m' on a pool."""
    assert translate({"cpu": cpu}, "kubernetes").errors == [("cpu", message, "resources-unit")]


@pytest.mark.parametrize("memory, message", [
    ("nan", "memory 'nan' is not a quantity: write e.g. '512Mi', '2Gi', '1G' or a number of MiB"),
    ("100Ki", "memory 100Ki is less than 1 MiB; give at least '1Mi'"),
])
def test_a_memory_below_one_mib_is_refused(memory, message):
    assert translate({"memory": memory}, "docker").errors == [("memory", message, "resources-unit")]


def test_aci_memory_that_rounds_to_zero_gb_is_refused():
    result = translate({"memory": "1Mi"}, "azure-container-instance")
    assert result.errors == [("memory", "memory 1 MiB is less than Azure Container Instances' 0.01 GB",
                              "resources-aci")]
