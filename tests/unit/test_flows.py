"""Flows read from source: the parameter schema must be exactly what Prefect's own
`parameter_schema_from_entrypoint` builds, however we get there faster."""

from __future__ import annotations

from pathlib import Path

import pytest
from prefect.utilities.callables import parameter_schema_from_entrypoint

from register.flows import FlowNotFound, parameter_schema, read_flow

ROOT = Path(__file__).resolve().parents[2]
FIXTURES = Path(__file__).parent / "manifests"
ENTRYPOINTS = [
    (ROOT / "examples", "flows/sales.py:daily_sales"),
    (ROOT / "examples", "flows/sales.py:backfill"),
    (ROOT / "examples", "flows/forecast.py:ingest_forecast"),
    (ROOT / "examples", "flows/reports.py:weekly_report"),
    (FIXTURES, "flows/etl.py:nightly"),
    (FIXTURES, "flows/etl.py:hourly"),
    (FIXTURES, "flows/etl.py:flexible"),
]


@pytest.mark.parametrize("root, entrypoint", ENTRYPOINTS, ids=[e for _, e in ENTRYPOINTS])
def test_parameter_schema_is_prefects_own(root, entrypoint):
    file, _, function = entrypoint.rpartition(":")
    expected = parameter_schema_from_entrypoint(f"{root / file}:{function}").model_dump(exclude_unset=True)
    assert parameter_schema(root, entrypoint) == expected


def test_schema_with_models_enums_and_docstrings(tmp_path):
    (tmp_path / "flow.py").write_text('''
from enum import Enum
from pydantic import BaseModel
from prefect import flow, task

class Mode(str, Enum):
    FULL = "full"
    DELTA = "delta"

class Window(BaseModel):
    days: int = 1

@task
def unrelated(x: int) -> int:
    return x

@flow(name="load-it")
def load(mode: Mode = Mode.DELTA, window: Window | None = None, *, tags: list[str] = ()):
    """Load.

    Args:
        mode: how much to load
    """
''')
    expected = parameter_schema_from_entrypoint(f"{tmp_path}/flow.py:load").model_dump(exclude_unset=True)
    schema = parameter_schema(tmp_path, "flow.py:load")
    assert schema == expected
    assert schema["properties"]["mode"]["description"] == "how much to load"
    assert read_flow(tmp_path, "flow.py:load").name == "load-it"


def test_a_task_is_not_a_flow(tmp_path):
    with pytest.raises(FlowNotFound, match="'unrelated' in 'flow.py' is not a @flow"):
        (tmp_path / "flow.py").write_text("from prefect import task\n@task\ndef unrelated():\n    pass\n")
        read_flow(tmp_path, "flow.py:unrelated")
