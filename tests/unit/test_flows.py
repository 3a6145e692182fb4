"""Flows read from source: the parameter schema must be exactly what Prefect's own
`parameter_schema_from_entrypoint` builds, however we get there faster."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from prefect.utilities.callables import parameter_schema_from_entrypoint

from register.flows import FlowNotFound, flow_schema, parameter_schema, read_flow, schema_fingerprint
from register.flows.source import NOT_IMPORTED

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


# --- schemas read from source, never by running it (issue 9 item 1, issue 10 item 6) ---

FLOWS = Path(__file__).parent / "flows"
PROJECT = FLOWS / "project"
# Prefect's own schemas, made as `prefect deploy` makes them: by importing each flow, with the fixture's
# root, the flow's folder and `site/` (packages flow-register does not have) on sys.path.
REFERENCE = '''
import json, sys
from prefect.flows import load_flow_from_entrypoint
from prefect.utilities.callables import parameter_schema, parameter_schema_from_entrypoint
found = {}
for entrypoint in sys.argv[1:]:
    deploy = parameter_schema(load_flow_from_entrypoint(entrypoint)).model_dump(exclude_unset=True)
    try:
        source = parameter_schema_from_entrypoint(entrypoint).model_dump(exclude_unset=True)
    except ValueError as error:
        source = str(error)
    found[entrypoint] = {"deploy": deploy, "from_entrypoint": source}
print(json.dumps(found))
'''
SCHEMA_FLOWS = ["flows/constants_flow.py:constants", "flows/types_flow.py:typed", "flows/types_flow.py:positional",
                "flows/types_flow.py:arbitrary", "flows/expressions_flow.py:expressions", "flows/missing_flow.py:missing"]


@pytest.fixture(scope="module")
def prefects_schemas(tmp_path_factory) -> dict:
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(PROJECT), str(FLOWS / "site")]),
           "PREFECT_HOME": str(tmp_path_factory.mktemp("prefect-home")), "DO_NOT_TRACK": "1"}
    done = subprocess.run([sys.executable, "-c", REFERENCE, *SCHEMA_FLOWS], cwd=PROJECT, env=env,
                          capture_output=True, text=True, check=True, timeout=300)
    return json.loads(done.stdout)


@pytest.mark.parametrize("entrypoint", SCHEMA_FLOWS[:-1])
def test_schema_is_the_one_prefect_deploy_registers(prefects_schemas, entrypoint):
    """Defaults from the project's own modules (absolute, relative, re-exported, next to the flow, through
    a package), pydantic models, enums, Literal, Optional and unions, dates, generics, Annotated, *args and
    **kwargs, docstring descriptions and positions: all as Prefect has them after importing the flow."""
    found = flow_schema(PROJECT, entrypoint)
    assert found.schema == prefects_schemas[entrypoint]["deploy"]
    assert parameter_schema(PROJECT, entrypoint) == found.schema
    # Prefect's source-only reader agrees where it works: it fails to order *args before keyword-only
    # parameters and to give positional-only parameters their defaults, and reads as null a default that
    # `import a.b` then `a.b.C` or an `if` at the top level gives.
    source_only = prefects_schemas[entrypoint]["from_entrypoint"]
    if entrypoint.endswith(":constants"):
        assert source_only["properties"]["dotted"]["default"] is source_only["properties"]["mode"]["default"] is None
        source_only["properties"]["dotted"]["default"], source_only["properties"]["mode"]["default"] = "prod", "weekly"
    if isinstance(source_only, dict):
        assert found.schema == source_only


def test_pure_default_expressions_are_evaluated_as_prefect_does(prefects_schemas):
    """list(range(20)), comprehensions of f-strings, dict(a=1), sorted, min, max, len, sum, string methods...:
    the same defaults as Prefect's own source reader and `prefect deploy`, and nothing to warn about."""
    entrypoint = "flows/expressions_flow.py:expressions"
    found = flow_schema(PROJECT, entrypoint)
    assert found.warnings == ()
    assert found.schema == prefects_schemas[entrypoint]["from_entrypoint"] == prefects_schemas[entrypoint]["deploy"]
    properties = found.schema["properties"]
    assert properties["hours"]["default"] == list(range(20))
    assert properties["names"]["default"] == ["part-00", "part-01", "part-02", "part-03"]
    assert properties["template"]["default"] == "daily-07"


def test_schema_defaults_from_the_project_modules_are_the_values(prefects_schemas):
    properties = flow_schema(PROJECT, "flows/constants_flow.py:constants").schema["properties"]
    assert properties["source"]["default"] == "fallback"
    assert properties["bucket"]["default"] == "ooi-rca-qaqc-prod"
    assert properties["limits"]["default"] == {"rows": 10000, "retries": 4}
    assert properties["derived"]["default"] == ["fallback", "ooi-rca-qaqc-prod", "eu", "us"]
    assert properties["mode"]["default"] == "weekly"  # the branch of an `if` whose condition is known


def test_what_cannot_be_known_is_a_warning_at_the_parameter_never_a_silent_null(prefects_schemas):
    found = flow_schema(PROJECT, "flows/missing_flow.py:missing")
    deployed = prefects_schemas["flows/missing_flow.py:missing"]["deploy"]
    # What the package that is not installed here, and code that runs, would have given is left out:
    # the parameter has no default (a run that does not set it gets the flow's own) and `stage` any type.
    for name in ("bucket", "today", "computed"):
        assert found.schema["properties"][name] == {k: v for k, v in deployed["properties"][name].items()
                                                    if k != "default"}
    assert found.schema["properties"]["stage"] == {"title": "stage", "position": 1}
    assert found.schema["properties"]["source"] == deployed["properties"]["source"]  # the project's: known
    assert "definitions" not in found.schema and "required" not in found.schema
    # A fallback from an `except ImportError:` branch is known, but not what `prefect deploy` may register.
    assert found.schema["properties"]["stage_name"]["default"] == "dev"
    assert deployed["properties"]["stage_name"]["default"] == "prod"
    shown = [str(w) for w in found.warnings]
    where = f"{PROJECT}/flows/missing_flow.py"
    unknown = "registered without a default (a run that does not set it gets the flow's own default)"
    assert shown == [
        f"{where}:21:19: warning: the default of parameter 'bucket' (BUCKET) cannot be known without running code: "
        f"'BUCKET' comes from 'ooi_config', {NOT_IMPORTED}; {unknown} [parameter-default-unknown]",
        f"{where}:22:12: warning: the type of parameter 'stage' (Stage) cannot be known without running code: "
        f"'Stage' comes from 'ooi_config', {NOT_IMPORTED}; registered as accepting any value "
        "[parameter-type-unknown]",
        f"{where}:22:20: warning: the default of parameter 'stage' (Stage.PROD) cannot be known without running "
        f"code: 'Stage' comes from 'ooi_config', {NOT_IMPORTED}; {unknown} [parameter-default-unknown]",
        f"{where}:24:19: warning: the default of parameter 'today' (date.today()) cannot be known without running "
        f"code: 'date.today()' calls date.today(), and flow-register runs no code; {unknown} "
        "[parameter-default-unknown]",
        f"{where}:25:21: warning: the default of parameter 'computed' (compute()) cannot be known without running "
        f"code: 'compute' is a function defined at flows/missing_flow.py:15, and functions are not run; {unknown} "
        "[parameter-default-unknown]",
        f"{where}:26:23: warning: the default of parameter 'stage_name' (STAGE_NAME) may differ where `prefect "
        "deploy` runs: 'STAGE_NAME' is the fallback of the except branch at flows/missing_flow.py:11, because "
        f"'STAGE_NAME' comes from 'ooi_config', {NOT_IMPORTED} [parameter-default-fallback]",
    ]


def marked_project(tmp_path: Path) -> tuple[Path, Path]:
    """A copy of flows/marked (every part of it that ran would leave a file in `marks`), with a manifest."""
    root, marks = tmp_path / "repo", tmp_path / "marks"
    shutil.copytree(FLOWS / "marked", root)
    marks.mkdir()
    (root / "flows.yaml").write_text(
        "version: 1\nproject: marked\ndefaults: {work_pool: {name: pool, type: docker}}\nenvironments: {dev: {}}\n"
        "deployments:\n  - {name: marked, entrypoint: flows/marked.py:marked, parameters: {region: us}}\n")
    return root, marks


@pytest.mark.parametrize("command", [["validate"], ["render", "--environment", "dev"]])
def test_no_user_code_runs_offline(tmp_path, command):
    root, marks = marked_project(tmp_path)
    env = {**os.environ, "MARKS": str(marks), "PREFECT_HOME": str(tmp_path / "home")}
    done = subprocess.run([str(Path(sys.executable).with_name("flow-register")), *command], cwd=root, env=env,
                          capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr + done.stdout
    assert sorted(p.name for p in marks.iterdir()) == []
    warnings = done.stdout + done.stderr
    for line, parameter in ((28, "day"), (29, "size"), (30, "computed"), (31, "options"), (32, "touched"),
                            (34, "nested"), (35, "optional"), (36, "deeper")):
        assert f"flows/marked.py:{line}:" in warnings and f"parameter '{parameter}'" in warnings


def test_the_project_classes_that_run_code_are_any_with_a_warning(tmp_path):
    root, marks = marked_project(tmp_path)
    found = flow_schema(root, "flows/marked.py:marked")
    assert found.schema["properties"]["options"] == {"title": "options", "position": 4, "default": None}
    options = next(w for w in found.warnings if "'options'" in w.message)
    assert options.message.count("class 'Options' (flows/marked.py:20)") == 1 and options.line == 31
    assert list(marks.iterdir()) == []


def test_fingerprint_follows_the_modules_the_schema_reads(tmp_path):
    root = tmp_path / "repo"
    shutil.copytree(PROJECT, root)
    entrypoint = "flows/constants_flow.py:constants"
    first = schema_fingerprint(root, entrypoint)
    assert schema_fingerprint(root, entrypoint) == first == flow_schema(root, entrypoint).fingerprint
    (root / "pipelines" / "models.py").write_text("# not read by this flow's schema\n")
    assert schema_fingerprint(root, entrypoint) == first
    (root / "flows" / "constants_flow.py").write_text(
        (root / "flows" / "constants_flow.py").read_text() + "\n\ndef unrelated():\n    pass\n")
    changed = schema_fingerprint(root, entrypoint)
    assert changed != first  # the flow's file is hashed whole: its docstrings describe the parameters
    constants = root / "pipelines" / "common.py"
    constants.write_text(constants.read_text().replace('"prod"', '"staging"'))
    assert schema_fingerprint(root, entrypoint) != changed
    assert flow_schema(root, entrypoint).schema["properties"]["bucket"]["default"] == "ooi-rca-qaqc-staging"


def test_a_default_too_large_to_build_is_not_built(tmp_path):
    (tmp_path / "flow.py").write_text('from prefect import flow\n\n@flow\ndef f(x: str = "x" * 10**12, '
                                      'y: int = 2 ** 10**9, z: list = [[[[[1]]]]]):\n    pass\n')
    found = flow_schema(tmp_path, "flow.py:f")
    assert [w.rule for w in found.warnings] == ["parameter-default-unknown"] * 2
    assert found.schema["properties"]["z"]["default"] == [[[[[1]]]]]


def test_schemas_are_made_without_importing_prefect():
    """Prefect's callables module costs more than a second to import: every validate would pay it."""
    code = ("import sys; from pathlib import Path; from register.flows import flow_schema; "
            f"[flow_schema(Path({str(PROJECT)!r}), e) for e in {SCHEMA_FLOWS[:-1]!r}]; "
            "print(sorted(m for m in sys.modules if m.split('.')[0] == 'prefect'))")
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True, timeout=120)
    assert done.stdout.strip() == "[]"


def test_a_type_from_a_module_that_is_not_a_type_module_is_any_and_not_imported(tmp_path):
    """Installed packages run code when imported (prefect reads .env and prefect.toml from the working
    directory): a Prefect block as a parameter type is registered as accepting any value, with a warning."""
    (tmp_path / "flow.py").write_text("from prefect import flow\nfrom prefect_aws import S3Bucket\nimport json\n\n"
                                      "@flow\ndef f(bucket: S3Bucket, indent: int = json.decoder.NaN):\n    pass\n")
    code = ("import sys; from pathlib import Path; from register.flows import flow_schema; "
            f"found = flow_schema(Path({str(tmp_path)!r}), 'flow.py:f'); "
            "print(found.schema['properties']['bucket']); print(*(w.message for w in found.warnings), sep='\\n'); "
            "print(sorted(m for m in sys.modules if m.split('.')[0] in ('prefect', 'prefect_aws', 'json')))")
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True, timeout=120)
    schema, bucket, indent, imported = done.stdout.strip().splitlines()
    assert schema == "{'position': 0, 'title': 'bucket'}"
    assert f"'S3Bucket' comes from 'prefect_aws', {NOT_IMPORTED}; registered as accepting any value" in bucket
    assert f"'decoder' comes from 'json', {NOT_IMPORTED}" in indent
    assert "prefect" not in imported and "prefect_aws" not in imported
