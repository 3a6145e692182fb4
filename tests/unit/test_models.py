"""register/prefect/models.py shapes and checks schedules by hand, so a plan need not import Prefect: each
hand-made answer is held here against Prefect's own schedule models, which fail this test when an
upgrade changes what they store or refuse."""

from __future__ import annotations

import datetime as dt
import json
import subprocess
import sys
from pathlib import Path

import pytest
from pydantic import ValidationError

from register.prefect import models
from support.registration import worker_templates

SCHEDULES = [
    {"cron": "0 6 * * *"},
    {"cron": "0 6 * * 1-5", "timezone": "Europe/Berlin", "day_or": False},
    {"cron": "*/15 * * * *", "timezone": "UTC"},
    {"interval": 3600},
    {"interval": 90.5, "timezone": "America/New_York"},
    {"interval": 60, "anchor_date": "2024-01-01T00:00:00Z"},
    {"interval": 60, "anchor_date": "2024-06-01T08:30:00", "timezone": "Europe/Berlin"},
    {"interval": 60, "anchor_date": dt.date(2024, 1, 1)},
    {"rrule": "FREQ=DAILY;COUNT=3"},
    {"rrule": "DTSTART:20240101T000000\nRRULE:FREQ=WEEKLY;BYDAY=MO", "timezone": "Europe/Berlin"},
]

INVALID = [
    {"cron": "61 * * * *"},
    {"cron": "H * * * *"},
    {"cron": "0 6 * * *", "timezone": "Europe/Berlinn"},
    {"interval": 60, "timezone": "Mars/Olympus"},
    {"rrule": "FREQ=SOMETIMES"},
    {"rrule": "FREQ=DAILY;" + "BYHOUR=1;" * 1000},
]


def prefect_model(spec: dict):
    from prefect.client.schemas.schedules import CronSchedule, IntervalSchedule, RRuleSchedule

    common = {"timezone": spec["timezone"]} if spec.get("timezone") else {}
    if "cron" in spec:
        return CronSchedule(cron=spec["cron"], day_or=spec.get("day_or", True), **common)
    if "interval" in spec:
        anchor = {"anchor_date": spec["anchor_date"]} if spec.get("anchor_date") else {}
        return IntervalSchedule(interval=dt.timedelta(seconds=spec["interval"]), **common, **anchor)
    return RRuleSchedule(rrule=spec["rrule"], **common)


@pytest.mark.parametrize("spec", SCHEDULES, ids=str)
def test_a_schedule_is_shaped_as_prefects_model_dumps_it(spec):
    prefect = prefect_model(spec).model_dump(mode="json")
    ours = models.schedule(spec)["schedule"]
    if "anchor_date" not in spec:
        prefect.pop("anchor_date", None)  # Prefect's is "now": the server picks one, the plan ignores it
    assert ours == prefect
    assert models.schedule_problems(spec) == []


@pytest.mark.parametrize("spec", INVALID, ids=lambda s: str(s)[:40])
def test_what_prefect_refuses_is_refused(spec):
    with pytest.raises((ValidationError, ValueError)):
        prefect_model(spec)
    assert models.schedule_problems(spec)


def prefect_modules_after(code: str) -> list[str]:
    """The Prefect modules a fresh interpreter has loaded after running `code` (with `models` imported)."""
    script = f"import sys, json; from register.prefect import models; {code}; " \
             "print(json.dumps(sorted(m for m in sys.modules if m.split('.')[0] == 'prefect')))"
    out = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True)
    assert out.returncode == 0, out.stderr
    return json.loads(out.stdout)


def test_shaping_and_checking_schedules_imports_no_prefect():
    assert prefect_modules_after(
        "[models.schedule_problems(s) or models.schedule(s) for s in "
        "[{'cron': '0 6 * * *', 'timezone': 'UTC'}, {'interval': 60}, {'rrule': 'FREQ=DAILY'}]]") == []


def test_an_open_rrule_matches_what_the_server_anchored():
    want = models.schedule({"rrule": "FREQ=HOURLY"})
    stored = {"schedule": {"rrule": "DTSTART:20200101T000000\nRRULE:FREQ=HOURLY", "timezone": "UTC"},
              "active": True, "parameters": {}, "slug": None}
    assert models.schedule_matches(want, stored)
    assert not models.schedule_matches(models.schedule({"rrule": "FREQ=DAILY"}), stored)


def test_the_shipped_trigger_schema_is_the_pinned_prefects():
    """register/prefect/triggers.schema.json lets validate check triggers without Prefect; regenerate it with
    `uv run python scripts/trigger_schema.py` when Prefect changes."""
    from importlib import resources

    sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "scripts"))
    from trigger_schema import generate

    assert resources.files("register.prefect").joinpath("triggers.schema.json").read_text() == generate()


@pytest.mark.parametrize("spec", [
    {"type": "event", "expect": ["data.arrived"], "parameters": {"region": "us"}},
    {"type": "event", "expect": ["a"], "within": 60, "posture": "Proactive", "threshold": 2},
    {"type": "compound", "require": "all", "within": 300,
     "triggers": [{"type": "event", "expect": ["a"]}, {"type": "event", "expect": ["b"]}]},
    {"type": "metric", "metric": {"name": "duration", "threshold": 10, "operator": ">", "range": 300,
                                  "firing_for": 300}},
], ids=["event", "proactive", "compound", "metric"])
def test_a_valid_trigger_is_checked_without_prefect(spec):
    assert prefect_modules_after(f"assert models.trigger_problems(json.loads({json.dumps(json.dumps(spec))})) == []") \
        == []


TRIGGERS = [
    {"type": "event", "expect": ["a"]},
    {"type": "event", "expect": ["a"], "within": -5},
    {"type": "event", "expect": ["a"], "within": "PT1M"},
    {"type": "event", "expect": ["a"], "posture": "Proactive", "within": 5},
    {"type": "event", "expect": ["a"], "posture": "Proactive"},
    {"type": "event", "expect": ["a"], "posture": "Sideways"},
    {"type": "event", "expect": ["a"], "threshold": "many"},
    {"type": "event", "expect": ["a"], "match": {"prefect.resource.id": "x"}, "for_each": ["prefect.resource.id"]},
    {"type": "metric", "metric": {"name": "duration", "threshold": 1, "operator": ">", "range": 60,
                                  "firing_for": 60}},
    {"type": "metric", "metric": {"name": "duration", "threshold": 1, "operator": "~"}},
    {"type": "compound", "require": 3, "triggers": [{"type": "event", "expect": ["a"]}]},
    {"type": "compound", "require": "all", "triggers": [{"type": "event", "expect": ["a"]}]},
    {"type": "sequence", "triggers": [{"type": "event", "expect": ["a"]}], "within": 10},
    {"type": "event", "expect": ["a"], "schedule_after": -1},
]


@pytest.mark.parametrize("spec", TRIGGERS, ids=lambda s: json.dumps(s)[:60])
def test_what_the_trigger_schema_accepts_prefect_accepts(spec):
    """The shipped schema is a fast path: it may refuse what Prefect accepts (the model then decides),
    never accept what Prefect refuses."""
    from prefect.events.schemas.deployment_triggers import DeploymentTriggerTypes
    from pydantic import TypeAdapter, ValidationError

    if models._trigger_validator().is_valid(spec):
        try:
            TypeAdapter(DeploymentTriggerTypes).validate_python(spec)
        except ValidationError as error:
            pytest.fail(f"the schema accepts what Prefect refuses: {error}")


def test_job_variables_are_checked_without_prefect():
    schema = {"type": "object", "properties": {"image": {"type": "string"}, "mem_limit": {"type": "string"}},
              "required": ["image"]}
    assert prefect_modules_after(
        f"assert models.job_variable_problems({{'image': 'x', 'mem_limit': '1g'}}, {schema!r}) == []; "
        f"assert models.job_variable_problems({{'image': 3}}, {schema!r})") == []
    # What plain JSON Schema refuses is judged by the server's rules: a missing required key is forgiven,
    # a wrong type is not
    assert models.job_variable_problems({"mem_limit": "1g"}, schema) == []
    assert models.job_variable_problems({"image": 3}, schema) == [(("image",), "3 is not of type 'string'")]


# Values of every JSON type, and a block given by reference: each variable of each template gets each.
_VALUES = ["text", "", 3, -1, 1.5, True, None, [], ["a"], [1, "b"], {}, {"a": "b"}, {"a": 1},
           {"$ref": "1f8e0d1c-2b6a-4a3e-9f00-000000000000"}, {"$ref": {"block_document_id": "x"}}, {"$ref": 3},
           "1f8e0d1c-2b6a-4a3e-9f00-000000000000", [{"name": "a", "value": "b"}], {"cpu": "1", "memory": 2}]


def _key(error) -> tuple:
    return tuple(error.absolute_path), error.validator, error.message


@pytest.mark.parametrize("kind", sorted(worker_templates()))
def test_job_variables_are_refused_as_prefect_refuses_them(kind):
    """Each worker's bundled variables schema, every variable set to values of every type: the same
    errors, at the same places, as Prefect's validator run as the server runs it (all of them, not
    only the first)."""
    from prefect.utilities.schema_tools.validation import validate

    schema = worker_templates()[kind]["variables"]
    compared = refused = 0
    for variable in schema.get("properties", {}):
        for value in _VALUES:
            job_variables = {variable: value}
            theirs = validate(job_variables, schema, raise_on_error=False, preprocess=True, ignore_required=True,
                              allow_none_with_default=True)
            ours = models.job_variable_errors(job_variables, schema)
            assert sorted(map(_key, ours)) == sorted(map(_key, theirs)), f"{kind}: job_variables {job_variables}"
            compared, refused = compared + 1, refused + bool(theirs)
    assert compared > refused > 0


def test_a_block_reference_the_server_refuses_is_said_in_a_sentence():
    """Prefect's server (3.8.8 here) refuses {'$ref': ...} for a block-typed variable such as an ECS pool's
    aws_credentials: found before anything is written, worded without the schema it quotes."""
    schema = worker_templates()["ecs"]["variables"]
    [(path, message)] = models.job_variable_problems({"aws_credentials": {"$ref": {"block_document_id": "x"}}},
                                                     schema)
    assert path == ("aws_credentials",)
    assert message.startswith("Prefect's server refuses a block reference") and len(message) < 300
    [(path, message)] = models.job_variable_problems({"cpu": "x"}, schema)
    assert (path, message) == (("cpu",), "'x' is not of type 'integer'")
