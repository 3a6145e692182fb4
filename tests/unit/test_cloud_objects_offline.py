"""Prefect Cloud's own objects, checked offline: a `prefect:managed` pool's job variables and resources
(register/resources.py), and what `validate` says about them before any server is asked."""

from __future__ import annotations

import json
import textwrap

import pytest

from register.cli import main
from register.resources import check_job_variables, translate

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
