"""Prefect Cloud's own objects, checked offline: a `prefect:managed` pool's job variables and resources
(register/prefect/resources.py), and what `validate` says about them before any server is asked."""

from __future__ import annotations

import json
import textwrap

import pytest

from register.cli import main
from register.prefect.resources import check_job_variables, translate

FLOW = "from prefect import flow\n\n@flow\ndef hello(x: int = 1):\n    pass\n"


def validate(tmp_path, monkeypatch, capsys, deployments: str):
    (tmp_path / "flows").mkdir(exist_ok=True)
    (tmp_path / "flows" / "f.py").write_text(FLOW)
    (tmp_path / "flows.yaml").write_text(textwrap.dedent("""\
        version: 1
        project: managed-demo
        environments:
          dev:
            work_pool: {name: hobby, type: "prefect:managed"}
        deployments:
        """) + textwrap.indent(textwrap.dedent(deployments), "  "))
    monkeypatch.chdir(tmp_path)
    code = main(["validate", "--output", "json"])
    return code, json.loads(capsys.readouterr().out)["problems"]


def test_a_managed_deployment_with_code_from_git_and_pip_packages_validates(tmp_path, monkeypatch, capsys):
    code, problems = validate(tmp_path, monkeypatch, capsys, """\
        - name: daily
          entrypoint: flows/f.py:hello
          code: {git: {repository: "https://github.com/acme/flows"}}
          job_variables: {pip_packages: [pandas, "prefect-aws>=0.5"], env: {LOG_LEVEL: DEBUG},
                          image: "prefecthq/prefect:3-python3.12"}
        """)
    assert (code, problems) == (0, [])


def test_resources_a_foreign_image_and_unknown_variables_are_refused_at_their_lines(tmp_path, monkeypatch, capsys):
    code, problems = validate(tmp_path, monkeypatch, capsys, """\
        - name: daily
          entrypoint: flows/f.py:hello
          resources: {cpu: 2, memory: 8Gi}
          job_variables: {image: "acme/flows:1", pip_packages: pandas, gpu: 1}
        """)
    assert code == 1
    assert [p["line"] for p in problems if p["rule"] == "resources-managed"] == [9]
    assert "4 vCPU and 16 GB of memory" in next(p["message"] for p in problems if p["rule"] == "resources-managed")
    messages = [p["message"] for p in problems if p["rule"] == "job-variables-managed"]
    assert {p["line"] for p in problems if p["rule"] == "job-variables-managed"} == {10}
    assert any("official images" in m and "'acme/flows:1'" in m for m in messages), messages
    assert any("'gpu' is not a variable of 'prefect:managed' pools; they take command, env, image, labels, name, "
               "pip_packages" in m for m in messages), messages
    assert any("pip_packages must be a list" in m for m in messages), messages
    # its code cannot be in this project's image: Prefect's runs it
    assert any(p["rule"] == "managed-code" and "code.git" in p["message"] for p in problems), problems


def test_translate_gives_a_managed_pool_no_variables():
    result = translate({"memory": "1Gi"}, "prefect:managed")
    assert result.job_variables == {}
    assert [(field, rule) for field, _, rule in result.errors] == [("memory", "resources-managed")]
    assert check_job_variables({"pip_packages": ["pandas"], "env": {"A": "b"}}, "prefect:managed").errors == []


@pytest.mark.parametrize("image", ["prefecthq/prefect:3-latest", "docker.io/prefecthq/prefect:3.4.10-python3.11"])
def test_official_images_are_taken(image):
    assert check_job_variables({"image": image}, "prefect:managed").errors == []


def test_a_managed_pool_never_gets_the_projects_image():
    from register.engine.desired import Pool

    declared = {"properties": {"image": {"type": "string"}, "pip_packages": {"type": "array"}}}
    assert Pool("hobby", "prefect:managed", declared).takes_image is False
    assert Pool("ecs", "ecs", {"properties": {"image": {"type": "string"}}}).takes_image is True


def test_an_sla_is_one_kind_and_names_one_sla(tmp_path, monkeypatch, capsys):
    code, problems = validate(tmp_path, monkeypatch, capsys, """\
        - name: daily
          entrypoint: flows/f.py:hello
          code: {git: {repository: "https://github.com/acme/flows"}}
          sla:
            - {name: quick, duration: 600, within: 60}
            - {name: quick, stale_after: 3600}
            - {name: nothing, severity: high}
            - {name: fresh, within: 600, expected_event: data.arrived, resource_match: {a: b}}
            - {name: loud, within: 60, severity: urgent}
        """)
    assert code == 1
    found = sorted((p["line"], p["rule"]) for p in problems)
    assert found == [(11, "sla-kind"), (12, "sla-name"), (13, "sla-kind"), (15, "enum")], problems
    mixed = next(p["message"] for p in problems if p["line"] == 11)
    assert "SLA 'quick' mixes time to completion with within; an SLA is one kind, by its fields (time to " \
           "completion: duration; frequency: stale_after; freshness: within and expected_event; lateness: within" in mixed
    assert "'minor', 'low', 'moderate', 'high' or 'critical'" in next(p["message"] for p in problems if p["line"] == 15)


def test_version_info_carries_the_commits_message_as_prefects_github_version_info(tmp_path):
    import subprocess

    from prefect._internal.versioning import GithubVersionInfo

    from register import code
    from register.engine.desired import commit_message, version_info
    from register.settings import GitHub

    git = ["git", "-C", str(tmp_path), "-c", "user.name=t", "-c", "user.email=t@example.com"]
    subprocess.run([*git, "init", "-q"], check=True)
    (tmp_path / "f.py").write_text("x = 1\n")
    subprocess.run([*git, "add", "."], check=True)
    subprocess.run([*git, "commit", "-qm", "Load yesterday's sales\n\nLonger text below."], check=True)
    at = code.checkout(tmp_path)
    assert commit_message(tmp_path, at.commit) == "Load yesterday's sales"
    github = GitHub(sha=at.commit, repository="acme/flows", ref_name="main")
    info = version_info(github, at, commit_message(tmp_path, at.commit))
    # every field Prefect's own GitHub version info requires, the message among them
    assert GithubVersionInfo.model_validate(info).message == "Load yesterday's sales"
    assert commit_message(tmp_path, "--output=/tmp/x") == ""  # a ref is a commit, never an option


def test_import_keeps_prefect_yamls_slas(tmp_path, monkeypatch, capsys):
    import yaml

    (tmp_path / "flows").mkdir()
    (tmp_path / "flows" / "f.py").write_text(FLOW)
    (tmp_path / "prefect.yaml").write_text(textwrap.dedent("""\
        name: etl
        pull:
        - prefect.deployments.steps.git_clone: {repository: 'https://github.com/acme/flows', branch: main}
        deployments:
        - name: daily
          entrypoint: flows/f.py:hello
          work_pool: {name: hobby}
          sla:
          - {name: finishes, duration: 600, severity: high}
          - {name: on-time, within: PT5M}
          - {name: often, stale_after: 3600, colour: red}
        """))
    monkeypatch.chdir(tmp_path)
    assert main(["import", "prefect.yaml", "-o", "flows.yaml", "--pool-type", "hobby=prefect:managed"]) == 0
    assert "prefect.yaml:11:46: warning: SLA 'colour' is not converted" in capsys.readouterr().err
    assert yaml.safe_load((tmp_path / "flows.yaml").read_text())["deployments"][0]["sla"] == [
        {"name": "finishes", "duration": 600, "severity": "high"}, {"name": "on-time", "within": 300},
        {"name": "often", "stale_after": 3600}]


def test_an_sla_says_the_same_fields_in_the_schema_the_import_and_what_is_sent():
    from register.manifest.checks import SLA_KEYS, SLA_KINDS
    from register.manifest.schema import manifest_schema

    assert set(manifest_schema()["$defs"]["sla"]["properties"]) == set(SLA_KEYS)
    assert {f for fields in SLA_KINDS.values() for f in fields} | {"name", "severity", "enabled", "resource_match"} \
        == set(SLA_KEYS)
