"""entrypoint.py alone: inputs (kebab or snake case) onto the engine's command line and environment,
secrets masked before anything else, every input problem at once. No server, no Docker."""

from __future__ import annotations

import importlib.util
import json

import pytest
from conftest import ROOT

spec = importlib.util.spec_from_file_location("entrypoint", ROOT / "entrypoint.py")
entrypoint = importlib.util.module_from_spec(spec)
spec.loader.exec_module(entrypoint)

REQUIRED = {"INPUT_ENVIRONMENT": "dev", "INPUT_PREFECT_API_URL": "http://127.0.0.1:4200/api"}


def test_defaults_give_a_plain_deploy():
    inputs = entrypoint.read_inputs(REQUIRED)
    assert entrypoint.command_line(inputs) == ["deploy", "--file", "flows.yaml", "--environment", "dev",
                                               "--build", "auto", "--output", "text"]


def test_kebab_and_snake_case_inputs_both_map_onto_the_command_line():
    environ = {**REQUIRED, "INPUT_WORK-POOL": "ecs-big", "INPUT_CPU": "2", "INPUT_MEMORY": "4Gi",
               "INPUT_DEPLOYMENTS": "a,b", "INPUT_DRY_RUN": "true", "INPUT_PRUNE": "True", "INPUT_PUSH": "false",
               "INPUT_BUILD": "never", "INPUT_IMAGE-TAG": "v1.2.3", "INPUT_MANIFEST": "deploy/flows.yaml"}
    argv = entrypoint.command_line(entrypoint.read_inputs(environ))
    assert argv == ["deploy", "--file", "deploy/flows.yaml", "--environment", "dev", "--build", "never",
                    "--output", "text", "--work-pool", "ecs-big", "--cpu", "2", "--memory", "4Gi", "--only", "a,b",
                    "--image-tag", "v1.2.3", "--dry-run", "--prune", "--no-push"]


def test_every_input_problem_at_once_with_the_valid_choices():
    environ = {"INPUT_ENVIRONMENT": "dev", "INPUT_DRYRUN": "true", "INPUT_BUILD": "sometimes", "INPUT_PUSH": "maybe",
               "INPUT_CPU": "1", "INPUT_cpu": "2"}
    with pytest.raises(entrypoint.InputError) as raised:
        entrypoint.read_inputs(environ)
    problems = str(raised.value).splitlines()
    assert any(p.startswith("unknown input 'dryrun' (did you mean 'dry-run'?)") for p in problems), problems
    assert "input 'prefect-api-url' is required" in str(raised.value)
    assert "input 'build' must be 'auto', 'always' or 'never'; got 'sometimes'" in problems
    assert "input 'push' must be 'true' or 'false'; got 'maybe'" in problems
    assert any("input 'cpu' is given twice" in p for p in problems), problems
    assert len(problems) == 5


def test_inputs_become_the_engines_environment_and_empty_ones_leave_it_alone():
    environ = {**REQUIRED, "INPUT_PREFECT-API-KEY": "pnu_secret", "INPUT_REGISTRY_USERNAME": "ci",
               "INPUT_REGISTRY_PASSWORD": "pw", "INPUT_AWS_REGION": "eu-west-1", "INPUT_PREFECT_API_AUTH_STRING": "",
               "PREFECT_API_AUTH_STRING": "from-the-job"}
    env = entrypoint.engine_environment(entrypoint.read_inputs(environ), environ)
    assert env["PREFECT_API_URL"] == "http://127.0.0.1:4200/api"
    assert env["PREFECT_API_KEY"] == "pnu_secret"
    assert (env["REGISTRY_USERNAME"], env["REGISTRY_PASSWORD"]) == ("ci", "pw")
    assert (env["AWS_REGION"], env["AWS_DEFAULT_REGION"]) == ("eu-west-1", "eu-west-1")
    assert env["PREFECT_API_AUTH_STRING"] == "from-the-job"


def test_secrets_are_masked_first_and_only_under_github_actions(tmp_path, monkeypatch, capsys):
    summary = tmp_path / "summary.md"
    monkeypatch.setenv("GITHUB_ACTIONS", "true")
    monkeypatch.setenv("GITHUB_STEP_SUMMARY", str(summary))
    environ = {"INPUT_ENVIRONMENT": "dev", "INPUT_PREFECT_API_URL": "https://user:url-pw@prefect.example/api",
               "INPUT_REGISTRY-PASSWORD": "line-one\nline-two", "INPUT_BUILD": "bogus",
               "GITHUB_STEP_SUMMARY": str(summary)}
    assert entrypoint.main(environ) == 1
    out = capsys.readouterr().out.splitlines()
    masks = [line for line in out if line.startswith("::add-mask::")]
    assert sorted(masks) == ["::add-mask::line-one", "::add-mask::line-two", "::add-mask::url-pw"], out
    assert "line-two" not in out  # a multi-line secret is masked line by line, never printed whole
    assert out.index(masks[0]) == 0  # before anything else
    assert out[-1] == "::error title=flow-register%3A invalid inputs::input 'build' must be 'auto', 'always' or " \
                      "'never'; got 'bogus'"
    assert "Nothing was registered." in summary.read_text()

    monkeypatch.delenv("GITHUB_ACTIONS")
    entrypoint._masked.clear()
    entrypoint.main({**environ, "GITHUB_STEP_SUMMARY": ""})
    assert "add-mask" not in capsys.readouterr().out


def test_a_missing_working_directory_or_manifest_says_where_it_looked(tmp_path, capsys):
    environ = {**REQUIRED, "GITHUB_WORKSPACE": str(tmp_path), "INPUT_WORKING_DIRECTORY": "pipelines"}
    assert entrypoint.main(environ) == 1
    assert f"working-directory 'pipelines' does not exist in {tmp_path}" in capsys.readouterr().err
    (tmp_path / "pipelines").mkdir()
    assert entrypoint.main(environ) == 1
    assert f"manifest 'flows.yaml' does not exist in {tmp_path / 'pipelines'}" in capsys.readouterr().err


def test_the_runners_docker_config_is_copied_without_helpers_the_image_lacks(tmp_path):
    mounted = tmp_path / "ro"
    mounted.mkdir()
    config = {"auths": {"ghcr.io": {"auth": "dXNlcjpwdw=="}}, "credsStore": "no-such-store",
              "credHelpers": {"gcr.io": "no-such-helper"}}
    (mounted / "config.json").write_text(json.dumps(config))
    copy = json.loads((tmp_path / entrypoint.writable_docker_config(str(mounted)) / "config.json").read_text())
    assert copy["auths"] == config["auths"]
    assert "credsStore" not in copy
    assert copy["credHelpers"] == {}
