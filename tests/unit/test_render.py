"""`render`: one environment's resolved deployments, offline, as JSON; and the schema's own hygiene."""

from __future__ import annotations

import json
from pathlib import Path

import jsonschema

from register.cli import main

ROOT = Path(__file__).resolve().parents[2]


def render(capsys, monkeypatch, environment, *extra):
    """The rendered deployments by name, their job variables without the image (checked on its own)."""
    monkeypatch.chdir(ROOT / "examples")
    assert main(["render", "--environment", environment, *extra]) == 0
    rendered = json.loads(capsys.readouterr().out)
    out = {}
    for d in rendered["deployments"]:
        assert d["job_variables"].pop("image") == rendered["image"]["reference"], d["name"]
        out[d["name"]] = d
    return out


def test_prod_translates_resources_per_pool_type_and_leaves_disabled_out(capsys, monkeypatch):
    prod = render(capsys, monkeypatch, "prod")
    assert sorted(prod) == ["daily-sales-prod", "ingest-forecast-prod", "weekly-report-prod"]  # backfill: disabled
    assert prod["daily-sales-prod"]["job_variables"] == {"cpu": 1024, "memory": 2048}  # ecs
    assert prod["ingest-forecast-prod"]["job_variables"] == {"cpu": "2000m", "memory": "4Gi"}  # cloud-run-v2
    assert prod["weekly-report-prod"]["job_variables"] == {"cpu": 1.0, "memory": 1.5}  # azure, GB
    assert prod["daily-sales-prod"]["tags"] == ["sales", "finance", "managed-by:flow-register", "project:sales-etl",
                                                "environment:prod"]
    assert prod["ingest-forecast-prod"]["flow"] == "ingest-forecast"
    assert prod["daily-sales-prod"]["pull_steps"] == [
        {"prefect.deployments.steps.set_working_directory": {"directory": "/opt/prefect/sales-etl"}}]


def test_dev_overrides_and_flow_docstring_as_description(capsys, monkeypatch):
    dev = render(capsys, monkeypatch, "dev")
    assert dev["daily-sales"]["schedules"] == [] and dev["daily-sales"]["paused"] is True
    assert dev["daily-sales"]["job_variables"] == {"mem_limit": "512m"}  # docker: memory only
    assert dev["sales-backfill"]["flow"] == "sales-backfill"  # @flow(name=...)
    assert dev["sales-backfill"]["description"] == "Reload every day between start and end."


def test_command_line_overrides(capsys, monkeypatch):
    test = render(capsys, monkeypatch, "test", "--cpu", "2", "--memory", "4Gi", "--only", "daily-sales")
    assert list(test) == ["daily-sales"]
    assert test["daily-sales"]["job_variables"] == {"cpu_request": "2000m", "cpu_limit": "2000m",
                                                    "memory_request": "4096Mi", "memory_limit": "4096Mi"}


def test_bad_command_line_resources_are_reported_against_the_flag(capsys, monkeypatch):
    monkeypatch.chdir(ROOT / "examples")
    assert main(["render", "--environment", "prod", "--cpu", "0.1"]) == 1
    err = capsys.readouterr().err
    assert ("--cpu: error: environment 'prod', ecs pool 'prod-ecs': cpu 0.1 is not a Fargate size; "
            "valid vCPU are 0.25, 0.5, 1, 2, 4, 8, 16; nor does ECS on EC2 take it (whole CPU units from 128 to "
            "196608) [resources-fargate]") in err
    # 3 vCPU runs on EC2: offline, where the pool's template is not known, Fargate's refusal is a warning
    assert main(["render", "--environment", "prod", "--cpu", "3"]) == 0
    assert ("--cpu: warning: environment 'prod', ecs pool 'prod-ecs': cpu 3 is not a Fargate size; valid vCPU are "
            "0.25, 0.5, 1, 2, 4, 8, 16 (if the pool launches on Fargate") in capsys.readouterr().err


def test_schema_is_valid_2020_12_and_describes_every_property():
    schema = json.loads((ROOT / "schemas" / "manifest.schema.json").read_text())
    jsonschema.Draft202012Validator.check_schema(schema)
    assert schema["$id"] and schema["examples"]

    def walk(node, where):
        if isinstance(node, dict):
            for name, sub in node.get("properties", {}).items():
                assert "description" in sub, f"{where}/properties/{name} has no description"
            for key, value in node.items():
                walk(value, f"{where}/{key}")
        elif isinstance(node, list):
            for i, value in enumerate(node):
                walk(value, f"{where}/{i}")

    walk(schema, "#")
