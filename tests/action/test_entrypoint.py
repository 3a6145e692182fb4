"""The registrar's entry alone (entrypoint.py -> register/action/): inputs (kebab or snake case, with
action.yml's defaults) onto the engine's command line and environment, secrets masked before anything
else, every input problem at once. No server, no Docker."""

from __future__ import annotations

import json

import pytest

from register.action import entry
from register.action.inputs import InputError, command_line, declared, engine_environment, read_inputs
from register.report import github

REQUIRED = {"INPUT_ENVIRONMENT": "dev", "INPUT_PREFECT_API_URL": "http://127.0.0.1:4200/api"}


@pytest.fixture(autouse=True)
def fresh_commands(monkeypatch):
    """Each test starts with workflow commands on and nothing masked, as a new step does."""
    monkeypatch.setattr(github, "_resume", None)
    monkeypatch.setattr(github, "_masked", set())


def test_defaults_give_a_plain_deploy():
    assert command_line(read_inputs(REQUIRED)) == ["deploy", "--file", "flows.yaml", "--environment", "dev",
                                                   "--build", "auto", "--output", "text"]


def test_kebab_and_snake_case_inputs_both_map_onto_the_command_line():
    environ = {**REQUIRED, "INPUT_WORK-POOL": "ecs-big", "INPUT_CPU": "2", "INPUT_MEMORY": "4Gi",
               "INPUT_DEPLOYMENTS": "a,b", "INPUT_DRY_RUN": "true", "INPUT_PRUNE": "True", "INPUT_PUSH": "false",
               "INPUT_BUILD": "never", "INPUT_IMAGE-TAG": "v1.2.3", "INPUT_MANIFEST": "deploy/flows.yaml"}
    assert command_line(read_inputs(environ)) == [
        "deploy", "--file", "deploy/flows.yaml", "--environment", "dev", "--build", "never", "--output", "text",
        "--work-pool", "ecs-big", "--cpu", "2", "--memory", "4Gi", "--only", "a,b", "--image-tag", "v1.2.3",
        "--dry-run", "--prune", "--no-push"]


def test_comment_preview_concurrency_and_lock_wait_map_onto_flags():
    environ = {**REQUIRED, "INPUT_COMMENT": "true", "INPUT_PREVIEW": "pr-12", "INPUT_CONCURRENCY": "4",
               "INPUT_LOCK_WAIT": "90", "INPUT_PREVIEW_ACTIVE": "true", "INPUT_REQUESTS_PER_MINUTE": "300"}
    assert command_line(read_inputs(environ)) == [
        "deploy", "--file", "flows.yaml", "--environment", "dev", "--build", "auto", "--output", "text",
        "--preview", "pr-12", "--concurrency", "4", "--lock-wait", "90", "--requests-per-minute", "300", "--comment",
        "--preview-active"]


def test_smoke_and_its_timeout_map_onto_flags_and_a_bad_timeout_is_an_input_problem():
    environ = {**REQUIRED, "INPUT_SMOKE": "daily-sales,backfill", "INPUT_SMOKE-TIMEOUT": "300"}
    assert command_line(read_inputs(environ))[-4:] == ["--smoke", "daily-sales,backfill", "--smoke-timeout", "300"]
    with pytest.raises(InputError, match="input 'smoke-timeout' must be a number of seconds, 0 or more; got 'ten'"):
        read_inputs({**REQUIRED, "INPUT_SMOKE_TIMEOUT": "ten"})


def test_destroy_with_a_preview_runs_destroy_instead_of_deploy():
    environ = {**REQUIRED, "INPUT_DESTROY": "true", "INPUT_PREVIEW": "pr-12", "INPUT_CPU": "2",
               "INPUT_LOCK_WAIT": "30", "INPUT_DRY_RUN": "true"}
    assert command_line(read_inputs(environ)) == ["destroy", "--file", "flows.yaml", "--environment", "dev",
                                                  "--preview", "pr-12", "--output", "text", "--lock-wait", "30",
                                                  "--dry-run"]


def test_every_input_problem_at_once_with_the_valid_choices():
    environ = {"INPUT_ENVIRONMENT": "dev", "INPUT_DRYRUN": "true", "INPUT_BUILD": "sometimes", "INPUT_PUSH": "maybe",
               "INPUT_CPU": "1", "INPUT_cpu": "2", "INPUT_CONCURRENCY": "0", "INPUT_LOCK-WAIT": "soon",
               "INPUT_DESTROY": "true", "INPUT_REQUESTS_PER_MINUTE": "a lot"}
    with pytest.raises(InputError) as raised:
        read_inputs(environ)
    problems = str(raised.value).splitlines()
    assert any(p.startswith("unknown input 'dryrun' (did you mean 'dry-run'?)") for p in problems), problems
    assert any(p.startswith("input 'prefect-api-url' is required, or 'prefect-account-id' with 'prefect-workspace-id' for a "
                                 "Prefect Cloud workspace: The Prefect API URL") for p in problems), problems
    assert "input 'build' must be 'auto', 'always' or 'never'; got 'sometimes'" in problems
    assert "input 'push' must be 'true' or 'false'; got 'maybe'" in problems
    assert any("input 'cpu' is given twice" in p for p in problems), problems
    assert "input 'concurrency' must be a whole number, at least 1; got '0'" in problems
    assert "input 'lock-wait' must be a number of seconds, 0 or more; got 'soon'" in problems
    assert any(p.startswith("input 'destroy' deletes a preview's deployments and needs input 'preview'")
               for p in problems), problems
    assert "input 'requests-per-minute' must be a whole number of requests a minute, 0 for no budget; got 'a lot'" \
        in problems
    assert len(problems) == 9


def test_defaults_come_from_action_yml_and_an_expression_default_counts_as_empty():
    inputs = declared()
    assert inputs["manifest"].default == "flows.yaml" and inputs["environment"].default is None
    assert inputs["github-token"].default == ""  # `${{ github.token }}`: the runner's to fill in, for a composite
    assert read_inputs(REQUIRED)["dry-run"] == "false"


def test_inputs_become_the_engines_environment_and_empty_ones_leave_it_alone():
    environ = {**REQUIRED, "INPUT_PREFECT-API-KEY": "pnu_secret", "INPUT_REGISTRY_USERNAME": "ci",
               "INPUT_REGISTRY_PASSWORD": "pw", "INPUT_AWS_REGION": "eu-west-1", "INPUT_PREFECT_API_AUTH_STRING": "",
               "PREFECT_API_AUTH_STRING": "from-the-job", "INPUT_GITHUB_TOKEN": "ghs_token"}
    env = engine_environment(read_inputs(environ), environ)
    assert env["PREFECT_API_URL"] == "http://127.0.0.1:4200/api"
    assert env["PREFECT_API_KEY"] == "pnu_secret"
    assert (env["REGISTRY_USERNAME"], env["REGISTRY_PASSWORD"]) == ("ci", "pw")
    assert (env["AWS_REGION"], env["AWS_DEFAULT_REGION"]) == ("eu-west-1", "eu-west-1")
    assert env["PREFECT_API_AUTH_STRING"] == "from-the-job"
    assert "GITHUB_TOKEN" not in env and "INPUT_GITHUB_TOKEN" not in env  # the engine gets it only to comment
    assert not [name for name in env if name.startswith("INPUT_")]
    environ["INPUT_COMMENT"] = "true"
    assert engine_environment(read_inputs(environ), environ)["GITHUB_TOKEN"] == "ghs_token"


def test_secrets_are_masked_first_and_only_under_github_actions(tmp_path, monkeypatch, capsys):
    summary = tmp_path / "summary.md"
    # the environment the entry is given is the one it reads: this process's is not looked at
    monkeypatch.delenv("GITHUB_ACTIONS", raising=False)
    environ = {"INPUT_ENVIRONMENT": "dev", "INPUT_PREFECT_API_URL": "https://user:url%25pw@prefect.example/api",
               "INPUT_REGISTRY-PASSWORD": "line-one\nline-two", "INPUT_BUILD": "bogus",
               "GITHUB_ACTIONS": "true", "GITHUB_STEP_SUMMARY": str(summary)}
    assert entry.main(environ) == 1
    out = capsys.readouterr().out.splitlines()
    masks = [line for line in out if line.startswith("::add-mask::")]
    # the URL's password as written and decoded, each line of a multi-line secret, `%` escaped
    assert set(masks) == {"::add-mask::line-one", "::add-mask::line-two", "::add-mask::url%25pw",
                          "::add-mask::url%2525pw"} and len(masks) == 4, out
    assert out.index(masks[0]) == 0  # before anything else
    assert "::error title=flow-register%3A invalid inputs::input 'build' must be 'auto', 'always' or " \
           "'never'; got 'bogus'" in out
    assert "Nothing was registered." in summary.read_text()

    monkeypatch.setattr(github, "_resume", None)
    entry.main({**environ, "GITHUB_ACTIONS": "", "GITHUB_STEP_SUMMARY": ""})
    assert "add-mask" not in capsys.readouterr().out


def test_a_missing_working_directory_or_manifest_says_where_it_looked(tmp_path, capsys):
    (tmp_path / "README.md").write_text("a checked-out repository\n")
    environ = {**REQUIRED, "GITHUB_WORKSPACE": str(tmp_path), "INPUT_WORKING_DIRECTORY": "pipelines"}
    assert entry.main(environ) == 1
    assert f"working-directory 'pipelines' does not exist in {tmp_path}" in capsys.readouterr().err
    (tmp_path / "pipelines").mkdir()
    assert entry.main(environ) == 1
    assert f"manifest 'flows.yaml' does not exist in {tmp_path / 'pipelines'}" in capsys.readouterr().err


def test_an_empty_workspace_says_to_check_the_repository_out_first(tmp_path, capsys):
    assert entry.main({**REQUIRED, "GITHUB_WORKSPACE": str(tmp_path)}) == 1
    err = capsys.readouterr().err
    assert f"the workspace {tmp_path} has no repository checked out, so there is no manifest 'flows.yaml'" in err
    assert "check the repository out first, with `- uses: actions/checkout" in err


def test_the_runners_docker_config_is_copied_without_helpers_the_image_lacks(tmp_path):
    mounted = tmp_path / "ro"
    mounted.mkdir()
    config = {"auths": {"ghcr.io": {"auth": "dXNlcjpwdw=="}}, "credsStore": "no-such-store",
              "credHelpers": {"gcr.io": "no-such-helper"}}
    (mounted / "config.json").write_text(json.dumps(config))
    copy = json.loads((tmp_path / entry.writable_docker_config(str(mounted)) / "config.json").read_text())
    assert copy["auths"] == config["auths"]
    assert "credsStore" not in copy
    assert copy["credHelpers"] == {}
