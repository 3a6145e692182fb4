"""`flow-register import deploy.py`: deployment code of Prefect 1, 2 and 3, read and never run, becomes
a manifest; what only the running script knows is warned at its line. The three folders here are the
shapes of the three teams this project was specified from; each holds its expected manifest and warnings."""

from __future__ import annotations

import textwrap
from pathlib import Path

import pytest
import yaml

from register.cli import main
from register.importer import dump
from register.importer.python import HEADER, convert

HERE = Path(__file__).parent
SHAPES = {"prefect1-ecs": "sales.py", "prefect2-blocks": "deployment.py", "prefect3-deploy": "deploy.py"}


@pytest.mark.parametrize("shape", sorted(SHAPES))
def test_each_teams_script_converts_into_exactly_its_manifest_and_warnings(shape, monkeypatch):
    monkeypatch.chdir(HERE / shape)
    result = convert(Path(SHAPES[shape]))
    assert HEADER.format(source=SHAPES[shape]) + dump(result.manifest, {}) == Path("flows.yaml.expected").read_text()
    assert "".join(f"{w}\n" for w in result.warnings) == Path("warnings.expected").read_text()


@pytest.mark.parametrize("shape", ["prefect2-blocks", "prefect3-deploy"])
def test_the_manifest_of_a_prefect_2_or_3_script_validates(shape, capsys, monkeypatch):
    monkeypatch.chdir(HERE / shape)
    assert main(["import", SHAPES[shape]]) == 0
    out, err = capsys.readouterr()
    assert out == Path("flows.yaml.expected").read_text()
    assert "error:" not in err


def test_prefect_1_ecs_runs_across_stages_become_environments_with_resources_in_vcpu(monkeypatch):
    monkeypatch.chdir(HERE / "prefect1-ecs")
    manifest = convert(Path("sales.py")).manifest
    assert manifest["project"] == "sales"  # projects sales-dev, sales-test, sales-prod
    assert manifest["environments"]["prod"]["work_pool"] == {"name": "prod-ecs", "type": "ecs"}  # agent labels
    stages = manifest["deployments"][0]["environments"]
    # ECS CPU units and MiB as Prefect 1 took them (256, "512", "1 vcpu"; 512, "1024", "4 GB")
    assert [stages[s]["resources"] for s in ("dev", "test", "prod")] == [
        {"cpu": 0.25, "memory": "512Mi"}, {"cpu": 0.5, "memory": "1Gi"}, {"cpu": 1, "memory": "4Gi"}]
    assert stages["prod"]["job_variables"]["env"] == {"STAGE": "prod", "DB_HOST": "${DB_HOST}"}
    assert all(s.get("active") is False for s in stages["dev"]["schedules"])  # set_schedule_active=stage == "prod"
    assert stages["prod"]["schedules"] == [{"cron": "0 6 * * *", "parameters": {"region": "eu"}}, {"interval": 43200}]


def test_a_prefect_1_flow_file_says_what_to_write_instead(capsys, monkeypatch):
    monkeypatch.chdir(HERE / "prefect1-ecs")
    assert main(["import", "sales.py"]) == 1  # the manifest names a @flow the file does not have yet
    err = capsys.readouterr().err
    assert "sales.py:41:6: warning: a Prefect 1 flow (`Flow(...)`) is written in Prefect 3 as a function" in err
    assert "'sales.py' has no function 'sales_etl'; that file defines no @flow; it is Prefect 1 or 2 code: " \
           "Prefect 1's `Flow(...)`/`with Flow(...)` is a function decorated with @flow in Prefect 3" in err


def test_validate_names_the_prefect_3_equivalent_of_a_prefect_2_script(tmp_path, capsys):
    (tmp_path / "deployment.py").write_text((HERE / "prefect2-blocks" / "deployment.py").read_text())
    (tmp_path / "flows.yaml").write_text(yaml.safe_dump({
        "version": 1, "project": "ingest", "environments": {"prod": {"work_pool": "pool"}},
        "deployments": [{"name": "ingest", "entrypoint": "deployment.py:ingest"}]}))
    assert main(["validate", "-f", str(tmp_path / "flows.yaml")]) == 1
    err = capsys.readouterr().err
    assert ("Prefect 2's Deployment.build_from_flow is a deployment of the manifest; Prefect 2's ECSTask is an ECS "
            "work pool and the manifest's resources") in err, err
    assert "`flow-register import deployment.py` converts the deployments it registers [entrypoint-function]" in err


def script(tmp_path: Path, text: str) -> Path:
    (tmp_path / "flows").mkdir(exist_ok=True)
    (tmp_path / "flows" / "etl.py").write_text("from prefect import flow\n\n\n@flow(name='etl')\ndef etl(day: str = 'x'):"
                                               "\n    pass\n")
    path = tmp_path / "deploy.py"
    path.write_text(textwrap.dedent(text))
    return path


def test_what_only_the_running_script_knows_is_warned_at_its_line_and_left_out(tmp_path):
    path = script(tmp_path, """\
        import os
        import random
        from flows.etl import etl

        def pool_for(env):
            return random.choice(["a", "b"])

        for env in os.environ["STAGES"].split(","):
            etl.deploy(name=f"loop-{env}", work_pool_name="p", image="i:1", build=False)
        if os.getenv("STAGE") == "prod":
            etl.deploy(name="conditional", work_pool_name="p", image="i:1", build=False)
        etl.deploy(name="computed", work_pool_name=pool_for("dev"), image="i:1", build=False,
                   parameters={"day": random.choice(["mon"]), "fixed": "x"})
        """)
    result = convert(path)
    warnings = [str(w) for w in result.warnings]
    where = str(path)
    assert any(w.startswith(f"{where}:8:12: warning: a loop over what is known only when the script runs") for w in
               warnings), warnings
    assert any(w.startswith(f"{where}:10:4: warning: this condition is known only when the script runs") for w in
               warnings), warnings
    assert any(w.startswith(f"{where}:6:12: warning: the work pool is left out: it is what random.choice(...) "
                            "returns") for w in warnings), warnings
    assert any(w.startswith(f"{where}:13:31: warning: parameters.day is left out") for w in warnings), warnings
    assert [d["name"] for d in result.manifest["deployments"]] == ["computed"]
    assert result.manifest["deployments"][0]["parameters"] == {"fixed": "x"}


def test_constants_f_strings_environment_reads_and_literal_loops(tmp_path):
    path = script(tmp_path, """\
        import os
        from prefect import flow, serve
        from prefect.client.schemas.objects import ConcurrencyLimitConfig, ConcurrencyLimitStrategy
        from flows.etl import etl

        ACCOUNT = os.environ["AWS_ACCOUNT"]
        REPO = f"{ACCOUNT}.dkr.ecr.eu-west-1.amazonaws.com/etl"
        CONFIGS = {"dev": {"cpu": 256}, "prod": {"cpu": 1024}}
        LITERAL = "costs ${5}"

        for env, config in CONFIGS.items():
            etl.deploy(name="etl-" + env, work_pool_name=f"ecs-{env}", image=f"{REPO}:{env}", build=False,
                       job_variables={"cpu": config["cpu"], "note": LITERAL},
                       concurrency_limit=ConcurrencyLimitConfig(limit=1,
                                                                collision_strategy=ConcurrencyLimitStrategy.CANCEL_NEW))

        flow.from_source(source="https://github.com/acme/etl.git", entrypoint="flows/etl.py:etl").deploy(
            name="from-git", work_pool_name="k8s", paused=True, rrule="FREQ=DAILY")
        serve(etl.to_deployment(name="served", cron="*/5 * * * *", tags=["fast"]))
        """)
    result = convert(path)
    deployments = {d["name"]: d for d in result.manifest["deployments"]}
    assert deployments["etl-dev"]["job_variables"] == {"image": "${AWS_ACCOUNT}.dkr.ecr.eu-west-1.amazonaws.com/etl:dev",
                                                       "cpu": 256, "note": "costs $${5}"}
    assert deployments["etl-prod"]["work_pool"] == "ecs-prod"
    assert deployments["etl-prod"]["concurrency_limit"] == {"limit": 1, "collision_strategy": "CANCEL_NEW"}
    assert deployments["from-git"]["code"] == {"git": {"repository": "https://github.com/acme/etl.git"}}
    assert (deployments["from-git"]["paused"], deployments["from-git"]["schedules"]) == (True, [{"rrule": "FREQ=DAILY"}])
    assert deployments["served"]["work_pool"] == {"name": "serve", "type": "process"}
    assert deployments["served"]["schedules"] == [{"cron": "*/5 * * * *"}]
    assert any("a served deployment runs in the script's own process" in w.message for w in result.warnings)
    assert result.variables == ["AWS_ACCOUNT"]


def test_prefect_2_blocks_loaded_by_name_are_warned_and_agent_queues_become_pools(tmp_path):
    path = script(tmp_path, """\
        from prefect.deployments import Deployment
        from prefect.infrastructure import KubernetesJob
        from prefect.filesystems import GitHub
        from flows.etl import etl

        Deployment.build_from_flow(flow=etl, name="k8s", work_queue_name="k8s-queue", apply=True,
                                   infrastructure=KubernetesJob.load("prod-k8s"),
                                   storage=GitHub(repository="https://github.com/acme/etl.git", reference="main",
                                                  access_token="ghp_notarealtokenbutshapedlikeone0000000"))
        """)
    result = convert(path)
    (deployment,) = result.manifest["deployments"]
    assert result.manifest["environments"]["prod"]["work_pool"] == {"name": "k8s-queue", "type": "kubernetes"}
    assert deployment["code"] == {"git": {"repository": "https://github.com/acme/etl.git", "ref": "main"}}
    messages = "\n".join(str(w) for w in result.warnings)
    assert f"{path}:7:43: warning: KubernetesJob block 'prod-k8s' is read from the Prefect server" in messages
    assert "the git credentials are not converted" in messages
    assert "ghp_" not in messages + dump(result.manifest, {})


def test_entrypoints_are_relative_to_the_folder_the_script_is_run_from(tmp_path, monkeypatch):
    script(tmp_path, "")
    (tmp_path / "deploy").mkdir()
    path = tmp_path / "deploy" / "deploy.py"
    path.write_text("from flows.etl import etl\netl.deploy(name='x', work_pool_name='p', image='i:1', build=False)\n")
    monkeypatch.chdir(tmp_path)  # `python deploy/deploy.py` run here: Prefect's entrypoint is flows/etl.py:etl
    result = convert(Path("deploy/deploy.py"))
    assert (result.root, result.manifest["deployments"][0]["entrypoint"]) == (tmp_path.resolve(), "flows/etl.py:etl")
    monkeypatch.chdir(tmp_path / "deploy")  # run from its own folder, Python would not find flows.etl either
    result = convert(Path("deploy.py"))
    assert result.manifest["deployments"] == []
    assert any(w.line == 2 and "'flows.etl.etl' is not a flow the import finds" in w.message for w in result.warnings)


def test_prefect_1_kubernetes_docker_and_local_run_configs_with_docker_and_github_storage(tmp_path):
    path = script(tmp_path, """\
        from datetime import datetime, timedelta
        from prefect import Flow
        from prefect.run_configs import DockerRun, KubernetesRun, LocalRun
        from prefect.schedules import CronSchedule, IntervalSchedule
        from prefect.storage import Docker, GitHub

        with Flow("k8s", schedule=IntervalSchedule(interval=timedelta(minutes=30), start_date=datetime(2024, 1, 1))) as k8s:
            pass
        k8s.run_config = KubernetesRun(image="acme/flows:1", cpu_request="500m", memory_request="1Gi", labels=["k8s"])
        k8s.storage = GitHub(repo="acme/flows", path="deploy.py", ref="main")
        k8s.register(project_name="flows")

        docker = Flow("docker", schedule=CronSchedule("0 * * * *"), run_config=DockerRun(labels=["docker"]),
                      storage=Docker(registry_url="ghcr.io/acme", image_name="flows", base_image="python:3.11"))
        docker.register("flows")

        local = Flow("local", run_config=LocalRun(working_dir="/opt/flows", labels=["laptop"]))
        local.register(project_name="flows")
        """)
    manifest = convert(path).manifest
    assert manifest["project"] == "flows"
    assert manifest["image"] == {"repository": "ghcr.io/acme/flows", "dockerfile": "auto", "base": "python:3.11"}
    k8s, docker, local = manifest["deployments"]
    assert (k8s["work_pool"], k8s["resources"]) == ({"name": "k8s", "type": "kubernetes"}, {"cpu": "500m", "memory": "1Gi"})
    assert k8s["code"] == {"git": {"repository": "https://github.com/acme/flows.git", "ref": "main"}}
    assert k8s["schedules"] == [{"interval": 1800, "anchor_date": "2024-01-01T00:00:00"}]
    assert (docker["work_pool"], docker["schedules"]) == ({"name": "docker", "type": "docker"}, [{"cron": "0 * * * *"}])
    assert (local["work_pool"], local["job_variables"]) == ({"name": "laptop", "type": "process"},
                                                           {"working_dir": "/opt/flows"})
    assert [d["entrypoint"] for d in manifest["deployments"]] == ["deploy.py:k8s", "deploy.py:docker", "deploy.py:local"]


def test_a_prefect_2_deployment_built_but_applied_by_the_cli_is_imported_with_a_warning(tmp_path):
    path = script(tmp_path, """\
        from prefect.deployments import Deployment
        from flows.etl import etl

        Deployment.build_from_flow(flow=etl, name="later", work_pool_name="p", output="etl-deployment.yaml")
        """)
    result = convert(path)
    assert [d["name"] for d in result.manifest["deployments"]] == ["later"]
    assert any(w.line == 4 and w.rule == "import-apply" for w in result.warnings), result.warnings
    assert not any(w.rule == "import-unknown" for w in result.warnings), result.warnings
