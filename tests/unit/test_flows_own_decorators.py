"""Flows made through the team's own decorator or call (tests/unit/flows/decorated/): recognised from
source, with the name and schema Prefect gives them; a decorator whose result cannot be seen, or that returns
something else, is named with its file:line. Nothing is imported or executed by flow-register."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path

import pytest

from register.flows import FlowNotFound, flow_schema, read_flow

DECORATED = Path(__file__).parent / "flows" / "decorated"
# one per shape: the team's decorator, an alias, a decorator made by a call, a factory, a wrapper that applies
# flow, one that goes through another of the team's decorators, a functools.wraps wrapper inside a factory,
# the optional-arguments idiom both ways (with partial, and with `apply(fn) if fn else apply`), flow(fn) and
# Flow(fn) at module level, a framework's decorator (a local alias, a library wrapper, typing.cast)
SHAPES = {
    "aliased": "aliased", "retried": "retried", "extract": "etl", "piped_fn": "piped", "hopped": "piped",
    "research": "research", "optional_bare": "optional-bare", "optional_called": "optional-named",
    "via_module": "via-module", "hello": "hello-fn", "made": "made-by-class", "wrapped": "piped",
    "keyword_called": "keyword", "keyword_bare": "keyword-bare", "traced_called": "traced",
}
# What Prefect makes of the same file, by importing it as `prefect deploy` does (a test's own fixture, run in a
# subprocess: flow-register itself never imports it).
REFERENCE = '''
import json, sys
from prefect.flows import load_flow_from_entrypoint
from prefect.utilities.callables import parameter_schema
found = {}
for entrypoint in sys.argv[1:]:
    flow = load_flow_from_entrypoint(entrypoint)
    found[entrypoint] = {"name": flow.name, "schema": parameter_schema(flow).model_dump(exclude_unset=True)}
print(json.dumps(found))
'''


@pytest.fixture(scope="module")
def prefects_flows(tmp_path_factory) -> dict:
    env = {**os.environ, "PYTHONPATH": str(DECORATED), "PREFECT_HOME": str(tmp_path_factory.mktemp("prefect-home")),
           "DO_NOT_TRACK": "1"}
    done = subprocess.run([sys.executable, "-c", REFERENCE, *(f"flows/shapes.py:{f}" for f in SHAPES)],
                          cwd=DECORATED, env=env, capture_output=True, text=True, check=True, timeout=300)
    return json.loads(done.stdout)


@pytest.mark.parametrize("function", SHAPES)
def test_a_flow_made_by_the_teams_own_decorator_has_prefects_name_and_schema(prefects_flows, function):
    entrypoint = f"flows/shapes.py:{function}"
    facts = read_flow(DECORATED, entrypoint)
    assert facts.name == SHAPES[function] == prefects_flows[entrypoint]["name"]
    assert flow_schema(DECORATED, entrypoint).schema == prefects_flows[entrypoint]["schema"]


def test_a_factorys_literal_name_and_the_docstring_are_read():
    facts = read_flow(DECORATED, "flows/shapes.py:extract")
    assert (facts.name, facts.description) == ("etl", "Extract from the source.")


def test_a_missing_function_lists_the_flows_made_by_the_teams_decorators():
    with pytest.raises(FlowNotFound) as error:
        read_flow(DECORATED, "flows/shapes.py:nothing")
    assert error.value.rule == "entrypoint-function"
    listed = ["aliased", "retried", "extract", "piped_fn", "hopped", "research", "optional_bare", "optional_called",
              "via_module", "hello", "made", "wrapped", "keyword_called", "keyword_bare", "traced_called"]  # the file's order
    assert sorted(listed) == sorted(SHAPES)
    assert str(error.value).endswith("flows in that file: " + ", ".join(listed))


def _at(decorator: str) -> str:
    """Where the fixture defines the team's `decorator`, as the message shows it."""
    lines = (DECORATED / "team" / "decorators.py").read_text().splitlines()
    return f"team/decorators.py:{lines.index(f'def {decorator}(fn):') + 1}"


def _refused(function: str) -> FlowNotFound:
    with pytest.raises(FlowNotFound) as error:
        read_flow(DECORATED, f"flows/hostile.py:{function}")
    return error.value


def test_decorators_that_wrap_each_other_in_a_circle_stop_and_are_named():
    started = time.monotonic()
    error = _refused("circle")
    assert time.monotonic() - started < 2
    assert error.rule == "entrypoint-flow-unseen"
    assert f"its decorator 'ping' ({_at('ping')}) cannot be read as making a Prefect flow" in str(error)
    assert f"'ping' ({_at('ping')}) is reached again through decorators that call each other" in str(error)


def test_a_decorator_that_returns_something_else_is_not_a_flow():
    error = _refused("plain")
    assert error.rule == "entrypoint-not-flow"
    assert f"its decorator 'logged' ({_at('logged')}) does not return a Prefect flow" in str(error)


def test_a_decorator_whose_result_cannot_be_seen_is_named_with_its_file_and_line():
    error = _refused("unseen")
    assert error.rule == "entrypoint-flow-unseen"
    assert f"its decorator 'from_elsewhere' ({_at('from_elsewhere')}) cannot be read" in str(error)
    assert "'json' is the module 'json', which is not a file of the project" in str(error)


def test_a_decorator_from_outside_the_project_says_where_it_comes_from():
    error = _refused("outside")
    assert error.rule == "entrypoint-flow-unseen"
    assert "'lib_flow' comes from 'some_installed_lib', which is not a file of the project" in str(error)


def test_a_long_chain_of_decorators_stops_at_the_hop_bound(tmp_path):
    from register.flows.decorators import MAX_HOPS

    chain = "".join(f"def d{i}(fn):\n    return d{i + 1}(fn)\n\n\n" for i in range(40))
    (tmp_path / "flow.py").write_text(f"from prefect import flow\n\n\n{chain}def d40(fn):\n    return flow(fn)\n\n\n"
                                      "@d0\ndef deep(a: int = 0):\n    pass\n")
    with pytest.raises(FlowNotFound) as error:
        read_flow(tmp_path, "flow.py:deep")
    assert f"is more than {MAX_HOPS} decorators deep" in str(error.value)


def test_a_decorator_that_fans_out_stays_within_the_step_bound(tmp_path):
    """Each decorator returns one of two others, 30 levels deep: 2**30 paths if each were followed."""
    levels = "".join(f"def d{i}(fn):\n    if fn:\n        return d{i + 1}a(fn)\n    return d{i + 1}b(fn)\n\n\n"
                     f"d{i + 1}a = d{i + 1}b = d{i + 1}\n\n\n" for i in range(30))
    (tmp_path / "flow.py").write_text(f"{levels}def d30(fn):\n    return fn\n\n\n@d0\ndef wide(a: int = 0):\n    pass\n")
    started = time.monotonic()
    with pytest.raises(FlowNotFound):
        read_flow(tmp_path, "flow.py:wide")
    assert time.monotonic() - started < 5
