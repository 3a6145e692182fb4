"""A manifest with a mistake fails the action's step, with an annotation on the manifest's line."""

from __future__ import annotations

import pytest

from act import ROOT, run_act

pytestmark = pytest.mark.e2e

WORKFLOW = "tests/action/workflows/action.yml"
FIXTURE = "tests/action/fixtures/bad-manifest"


def test_bad_manifest_fails_the_step_with_an_annotation_on_its_line():
    run = run_act(ROOT, WORKFLOW, inputs={"working-directory": FIXTURE, "environment": "dev",
                                          "prefect-api-url": "http://127.0.0.1:9/api"},
                  env={"FLOW_REGISTER_RUNTIME": "source"}, timeout=600)

    assert not run.succeeded, run.explain()
    errors = run.annotations("error")
    assert {"file": f"{FIXTURE}/flows.yaml", "line": "8", "col": "36"}.items() <= errors[0].items(), errors
    assert "valid memory is 512, 1024, 2048 MiB" in errors[0]["message"]
    assert errors[0]["title"] == "flow-register: resources-fargate"
    assert len(errors) == 1, errors
    # the secret input was masked by the action's first step, before anything ran, and never printed
    masked = [e["stepID"] for e in run.events if e.get("command") == "add-mask"
              and e.get("arg") == "test-api-key-that-must-not-leak"]
    assert masked and masked[0] == ["register", "0"], masked
    assert "test-api-key-that-must-not-leak" not in run.log
