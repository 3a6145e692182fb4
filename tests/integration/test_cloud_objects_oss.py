"""What only Prefect Cloud takes (SLAs, metric triggers), asked of the open-source server: one clear error at
the manifest's line, before any write, instead of a 404 or 422 half way through a deploy."""

from __future__ import annotations

import pytest

pytestmark = pytest.mark.integration


def lines_of(project, key: str) -> list[int]:
    return [i for i, line in enumerate((project.root / "flows.yaml").read_text().splitlines(), start=1)
            if line.strip().startswith(key)]


def test_slas_on_the_open_source_server_are_refused_at_their_line_and_nothing_is_written(project, api):
    project.manifest["deployments"][1]["sla"] = [{"name": "finishes-in-10-minutes", "duration": 600}]
    project.write()
    result = project.deploy()
    assert result.code == 1, result
    [line] = lines_of(project, "sla:")
    assert f"flows.yaml:{line}:" in result.err, result.err
    assert "deployment 'weekly' sets SLAs, which only Prefect Cloud has; the server at" in result.err
    assert "is not a Prefect Cloud workspace" in result.err and "[sla-cloud-only]" in result.err
    assert api.deployments(f"project:{project.name}") == {}


def test_a_metric_trigger_on_the_open_source_server_is_refused_at_its_type_and_nothing_is_written(project, api):
    project.manifest["deployments"][0]["triggers"] = [
        {"type": "event", "expect": ["data.arrived"]},
        {"type": "compound", "require": "any", "triggers": [
            {"type": "event", "expect": ["data.late"]},
            {"type": "metric", "metric": {"name": "duration", "threshold": 600, "operator": ">", "range": 3600,
                                          "firing_for": 60}}]}]
    project.write()
    result = project.deploy()
    assert result.code == 1, result
    text = (project.root / "flows.yaml").read_text().splitlines()
    line = next(i for i, t in enumerate(text, start=1) if "type: metric" in t)
    assert f"flows.yaml:{line}:" in result.err, result.err
    assert "has a metric trigger, which only Prefect Cloud runs" in result.err
    assert "use an event, compound or sequence trigger here [trigger-cloud-only]" in result.err
    assert result.err.count("[trigger-cloud-only]") == 1, result.err
    assert api.deployments(f"project:{project.name}") == {}
