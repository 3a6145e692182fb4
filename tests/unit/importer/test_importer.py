"""`flow-register import`: real prefect.yaml files (trimmed copies, their sources noted in each) become
manifests that validate, with a warning at the line of everything left out."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from register.cli import main
from register.importer import convert

HERE = Path(__file__).parent
REPOSITORIES = sorted(p.parent.name for p in HERE.glob("*/flows.yaml.expected"))
VARIABLES = ("IMPORT_TEAM", "IMPORT_STAGE")  # the fixtures' `{{ $VAR }}`: unset, the import says so


def prefect_yaml(name: str) -> str:
    """Where the fixture's prefect.yaml is, from the folder prefect deploy runs in (a monorepo's is deeper)."""
    return str(next((HERE / name).rglob("prefect.yaml")).relative_to(HERE / name))


@pytest.mark.parametrize("name", REPOSITORIES)
def test_a_real_prefect_yaml_converts_into_exactly_its_manifest_and_warnings(name, capsys, monkeypatch):
    monkeypatch.chdir(HERE / name)
    for variable in VARIABLES:
        monkeypatch.delenv(variable, raising=False)
    assert main(["import", prefect_yaml(name)]) == 0  # 0: the manifest written validates
    out, err = capsys.readouterr()
    assert out == (HERE / name / "flows.yaml.expected").read_text()
    assert err == (HERE / name / "warnings.expected").read_text()


def test_written_next_to_prefect_yaml_it_validates(tmp_path, capsys, monkeypatch):
    monkeypatch.chdir(HERE / "fulcrum-intelligence")
    target = Path("converted.yaml")
    try:
        assert main(["import", "-o", str(target)]) == 0
        assert main(["validate", "-f", str(target)]) == 0
        assert "converted.yaml: valid (4 deployments; environments: prod)" in capsys.readouterr().out
    finally:
        target.unlink(missing_ok=True)


def test_anchors_stay_anchors_under_definitions():
    text = convert(HERE / "fulcrum-intelligence" / "prefect.yaml").text()
    assert "daily_2am_pst: &daily_2am_pst" in text and "schedules: *daily_2am_pst" in text
    data = yaml.safe_load(text)
    assert data["deployments"][1]["schedules"] == [{"cron": "0 2 * * *", "timezone": "America/Los_Angeles"}]


def write(tmp_path: Path, prefect_yaml: str) -> Path:
    (tmp_path / "flows").mkdir()
    (tmp_path / "flows" / "etl.py").write_text("from prefect import flow\n\n\n@flow\ndef etl(day: str = 'x'):\n    pass\n")
    (tmp_path / "requirements.txt").write_text("")
    (tmp_path / "prefect.yaml").write_text(prefect_yaml)
    return tmp_path / "prefect.yaml"


BUILT = """\
name: Sales ETL
build:
- prefect_docker.deployments.steps.build_docker_image:
    id: build-image
    requires: prefect-docker>=0.3.1
    image_name: registry.example/sales-etl
    tag: latest
    dockerfile: auto
push:
- prefect_docker.deployments.steps.push_docker_image:
    image_name: '{{ build-image.image_name }}'
    credentials: '{{ prefect.blocks.docker-registry-credentials.prod }}'
pull:
- prefect.deployments.steps.set_working_directory:
    directory: /opt/prefect/sales-etl
definitions:
  params: &params {day: monday}
deployments:
- name: ecs
  entrypoint: flows/etl.py:etl
  parameters: {<<: *params, day: tuesday}
  concurrency_limit: {limit: 2, collision_strategy: CANCEL_NEW}
  enforce_parameter_schema: false
  work_pool:
    name: ecs-pool
    job_variables: {image: '{{ build-image.image }}', cpu: 1024, memory: 4096, env: {A: b}}
  schedules:
  - {interval: 3600, slug: hourly, parameters: *params, max_active_runs: 1}
- name: k8s
  entrypoint: flows/etl.py:etl
  parameters: *params
  work_pool:
    name: k8s-pool
    job_variables: {cpu_request: 500m, cpu_limit: 500m, memory_request: 1024Mi, memory_limit: 1024Mi}
- name: run
  entrypoint: flows/etl.py:etl
  work_pool:
    name: cloud-run-pool
    job_variables: {cpu: 2000m, memory: 4Gi}
"""


def test_build_steps_become_image_and_resources_come_back_from_each_pool_type(tmp_path, capsys):
    path = write(tmp_path, BUILT)
    assert main(["import", str(path), "--pool-type", "ecs-pool=ecs", "--pool-type", "k8s-pool=kubernetes"]) == 0
    out, err = capsys.readouterr()
    manifest = yaml.safe_load(out)
    assert manifest["project"] == "sales-etl"
    assert manifest["image"] == {"repository": "registry.example/sales-etl", "dockerfile": "auto"}
    assert manifest["defaults"] == {"code": {"directory": "/opt/prefect/sales-etl"}}
    ecs, k8s, run = manifest["deployments"]
    assert ecs["work_pool"] == {"name": "ecs-pool", "type": "ecs"}
    assert (ecs["resources"], ecs["job_variables"]) == ({"cpu": 1, "memory": "4Gi"}, {"env": {"A": "b"}})
    assert ecs["parameters"] == {"day": "tuesday"} and k8s["parameters"] == {"day": "monday"}
    assert ecs["schedules"] == [{"interval": 3600, "slug": "hourly", "parameters": {"day": "monday"}}]
    assert ecs["concurrency_limit"] == {"limit": 2, "collision_strategy": "CANCEL_NEW"}
    assert ecs["enforce_parameter_schema"] is False
    assert k8s["resources"] == {"cpu": 0.5, "memory": "1Gi"} and "job_variables" not in k8s
    assert run["resources"] == {"cpu": 2, "memory": "4Gi"}  # judged a cloud-run-v2 pool from the values
    where = str(path)
    for line, text in [(7, "the image tag is not converted"), (12, "registry credentials are not converted"),
                       (28, "schedule 'max_active_runs' is not converted"),
                       (39, "written as resources for pool type 'cloud-run-v2', judged from their values")]:
        assert any(l.startswith(f"{where}:{line}:") and text in l for l in err.splitlines()), (line, text, err)


def test_git_credentials_by_name_and_a_secret_never_copied_nor_printed(tmp_path, capsys):
    secret = "ghp_abcdefghijklmnopqrstuvwxyz0123456789"
    path = write(tmp_path, f"""\
name: etl
pull:
- prefect.deployments.steps.git_clone:
    id: clone
    repository: https://github.com/acme/etl.git
    branch: main
    access_token: "{{{{ $GITHUB_TOKEN }}}}"
- prefect.deployments.steps.pip_install_requirements:
    directory: "{{{{ clone.directory }}}}"
    requirements_file: requirements.txt
deployments:
- name: with-variable
  entrypoint: flows/etl.py:etl
  work_pool: {{name: pool}}
- name: with-block
  entrypoint: flows/etl.py:etl
  work_pool: {{name: pool}}
  pull:
  - prefect.deployments.steps.git_clone:
      repository: https://github.com/acme/etl.git
      commit_sha: 0123456789abcdef0123456789abcdef01234567
      credentials: "{{{{ prefect.blocks.github-credentials.acme }}}}"
- name: with-a-secret
  entrypoint: flows/etl.py:etl
  work_pool: {{name: pool}}
  pull:
  - prefect.deployments.steps.git_clone:
      repository: https://github.com/acme/etl.git
      access_token: {secret}
""")
    assert main(["import", str(path)]) == 0
    out, err = capsys.readouterr()
    manifest = yaml.safe_load(out)
    by_name = {d["name"]: d.get("code") for d in manifest["deployments"]}
    assert by_name["with-variable"] == {"git": {"repository": "https://github.com/acme/etl.git", "ref": "main",
                                                "credentials": {"token_env": "GITHUB_TOKEN"}},
                                        "requirements": "requirements.txt"}
    assert by_name["with-block"]["git"]["credentials"] == {"block": "github-credentials/acme"}
    assert by_name["with-block"]["git"]["ref"] == "0123456789abcdef0123456789abcdef01234567"
    assert by_name["with-a-secret"] == {"git": {"repository": "https://github.com/acme/etl.git"}}
    assert f"{path}:29:21: warning: access_token is not converted" in err, err
    assert secret not in out + err
