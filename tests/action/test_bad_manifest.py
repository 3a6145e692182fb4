"""A manifest with a mistake fails the action's step, with an annotation on the manifest's line."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
from act import local_repositories, run_act
from conftest import add_test_workflows, git_repository

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
                          "prefect-api-url": "http://127.0.0.1:9/api"},  # never reached: nothing is written
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
