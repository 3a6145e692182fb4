"""A manifest with a mistake fails the action's step, with an annotation on the manifest's line."""

from __future__ import annotations

import re
import shutil
from pathlib import Path

import pytest
from act import local_repositories, run_act
from support.action_repos import add_test_workflows, git_repository

pytestmark = pytest.mark.e2e

FIXTURE = Path(__file__).resolve().parent / "fixtures" / "bad-manifest"
SECRET = "test-api-key-that-must-not-leak"  # the API key tests/action/workflows/register.yml passes


@pytest.fixture
def broken_repo(tmp_path) -> Path:
    """A repository whose manifest, in pipelines/, asks Fargate for a size it does not have."""
    root = tmp_path / "broken"
    shutil.copytree(FIXTURE, root / "pipelines")
    add_test_workflows(root)
    return git_repository(root)


def test_bad_manifest_fails_the_step_with_an_annotation_on_its_line(broken_repo, action_checkout, act_cache):
    run = run_act(broken_repo, ".github/workflows/test-register.yml", cache=act_cache,
                  inputs={"working-directory": "pipelines", "environment": "dev",
                          "prefect-api-url": "http://127.0.0.1:9/api"},  # nothing answers: the mistakes alone
                  env={"FLOW_REGISTER_RUNTIME": "source"},
                  extra=local_repositories(broken_repo / ".github/workflows", action_checkout), timeout=600)

    assert not run.succeeded, run.explain()
    errors = run.annotations("error")
    assert len(errors) == 1, errors
    # on the manifest's line, named from the repository root (the action ran in pipelines/)
    assert {"file": "pipelines/flows.yaml", "line": "8", "col": "36"}.items() <= errors[0].items(), errors
    assert errors[0]["title"] == "flow-register: resources-fargate"
    assert "valid memory is 512, 1024, 2048 MiB" in errors[0]["message"]
    assert run.outputs("register").get("created", "") == ""

    # the secret input was masked by the launcher before it printed anything, and never printed
    commands = [e for e in run.events if e.get("stepID") == ["register", "register"] and e.get("command")]
    assert (commands[0]["command"], commands[0]["arg"]) == ("add-mask", SECRET), commands[:3]
    assert SECRET not in run.log


def run_broken(broken_repo, action_checkout, act_cache, **inputs) -> object:
    return run_act(broken_repo, ".github/workflows/test-register.yml", cache=act_cache,
                   inputs={"working-directory": "pipelines", "prefect-api-url": "http://127.0.0.1:9/api", **inputs},
                   env={"FLOW_REGISTER_RUNTIME": "source"},
                   extra=local_repositories(broken_repo / ".github/workflows", action_checkout), timeout=600)


def test_a_problem_with_an_input_names_the_input(broken_repo, action_checkout, act_cache):
    run = run_broken(broken_repo, action_checkout, act_cache, environment="dev", cpu="3", memory="1Gi")
    assert not run.succeeded, run.explain()
    messages = [(e["title"], e["message"]) for e in run.annotations("error")]
    assert len(messages) == 1 and messages[0][0] == "flow-register: resources-fargate", messages
    assert messages[0][1].startswith("input 'cpu': ") and "cpu 3 is not a Fargate size" in messages[0][1]
    assert re.search(r"^input 'cpu': error: .*cpu 3 is not a Fargate size", run.log, re.M), run.explain()


def test_text_in_an_input_never_becomes_a_workflow_command(broken_repo, action_checkout, act_cache):
    forged = ["::error::forged", "::set-output name=created::99", "::add-mask::flows", "::warning::forged"]
    run = run_broken(broken_repo, action_checkout, act_cache, environment="dev\n" + "\n".join(forged[:3]),
                     cpu="1\n" + forged[3])
    assert not run.succeeded, run.explain()
    assert "::error::forged" in run.raw  # printed, as text
    acted_on = [e["raw"].strip() for e in run.events if e.get("command") in ("error", "warning", "set-output",
                                                                             "add-mask") and "raw" in e]
    assert acted_on and not [raw for raw in acted_on if raw.startswith(tuple(forged))], acted_on
    # act reads a command's properties up to its last `::`, GitHub up to its first: only the raw line tells
    assert [raw for raw in acted_on if raw.startswith("::error ")] == [
        raw for raw in acted_on if raw.startswith("::error title=flow-register%3A invalid inputs::") or
        raw.startswith("::error title=flow-register%3A environment::")], acted_on
    assert run.outputs("register").get("created", "") == ""


def test_no_docker_engine_under_the_default_runtime_is_one_error_naming_runtime_source(
        broken_repo, action_checkout, act_cache, tmp_path):
    run = run_act(broken_repo, ".github/workflows/test-register.yml", cache=act_cache,
                  inputs={"runtime": "", "working-directory": "pipelines", "environment": "dev",
                          "prefect-api-url": "http://127.0.0.1:9/api"},
                  env={"DOCKER_HOST": f"unix://{tmp_path}/no-engine.sock"},
                  extra=local_repositories(broken_repo / ".github/workflows", action_checkout), timeout=600)
    assert not run.succeeded
    (error,) = run.annotations("error")
    assert error["title"] == "flow-register: runtime"
    assert error["message"].startswith("no Docker engine on this runner"), error
    assert "runtime 'image' (the default); set `runtime: source`" in error["message"]
    assert run.annotations("notice") == []  # no word of building an unreleased version
    assert "no Docker engine on this runner" in run.summary("register")
