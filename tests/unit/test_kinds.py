"""Kinds besides deployments (variables): resolved per environment, checked offline, planned by the engine,
put into one plan in dependency order, and reported in a section of their own."""

from __future__ import annotations

import textwrap

from register.engine import planner as engine
from register.engine.kind import STATE_TAG
from register.kinds import variable
from register.kinds import DEPLOYMENTS
from register.kinds.deployment import make_plan
from register.report import formats as report
from support.manifests import with_section as manifest

OWNER = ["managed-by:flow-register", "project:p", "environment:dev"]


def test_a_variable_takes_its_environments_value_and_tags_and_the_environment_s_variables(tmp_path):
    loaded = manifest(tmp_path, """\
        variables:
          - name: region
            value: ${REGION}
            tags: [etl]
            environments: {prod: {value: us-east-1, tags: [etl, prod]}}
          - {name: limits, value: {rows: 10}, environments: {dev: {enabled: false}}}
        """, environ={"REGION": "eu-west-1"})
    assert loaded.errors() == []
    dev = {v.name: (v.value, v.tags) for v in loaded.variables("dev")}
    assert dev == {"region": ("eu-west-1", ["etl", *OWNER])}
    prod = {v.name: (v.value, v.tags) for v in loaded.variables("prod")}
    assert prod == {"region": ("us-east-1", ["etl", "prod", "managed-by:flow-register", "project:p",
                                             "environment:prod"]),
                    "limits": ({"rows": 10}, ["managed-by:flow-register", "project:p", "environment:prod"])}


def test_without_a_variables_section_the_manifest_manages_no_variables(tmp_path):
    assert manifest(tmp_path, "").variables("dev") is None
    assert manifest(tmp_path, "variables: []\n").variables("dev") == []


def test_variable_mistakes_are_told_at_their_line_naming_the_valid_choices(tmp_path):
    loaded = manifest(tmp_path, f"""\
        variables:
          - {{name: region, value: eu}}
          - {{name: region, value: us, environments: {{staging: {{value: x}}}}}}
          - {{name: Big, value: x}}
          - {{name: big, value: "{'x' * 5001}"}}
        """)
    found = [(p.line, p.rule, p.message) for p in loaded.errors()]
    assert (8, "duplicate-name", "variable name 'region' is already used by variables[0]; names must be unique") \
        in found
    assert any(line == 8 and rule == "unknown-environment" and "'dev' or 'prod'" in message
               for line, rule, message in found)
    assert (9, "name", "variables[2].name 'Big' is not a variable name: use lower-case letters, digits, '-' and '_' "
                       "(Prefect's rule), e.g. 'aws_region'") in found
    assert any(line == 10 and rule == "variable-value" and "at most 5000" in message for line, rule, message in found)


def raw(name, value, tags=OWNER, written=None):
    state = [STATE_TAG + written] if written else []
    return {"id": f"id-{name}", "name": name, "value": value, "tags": [*tags, *state]}


def desired(**values):
    from register.manifest.resolve import Variable

    return variable.items([Variable(name, value, i, list(OWNER)) for i, (name, value) in enumerate(values.items())])


def test_the_engine_tells_create_update_drift_unchanged_kept_and_deleted_apart():
    want = desired(new="n", same="s", changed="c2", edited="e")
    edited_fingerprint = want[3].fingerprint()
    have = [variable.registered(r) for r in (
        raw("same", "s"), raw("changed", "c1", written="older"), raw("edited", "by-hand", written=edited_fingerprint),
        raw("gone", "g"), raw("others", "o", tags=["managed-by:flow-register", "project:q", "environment:dev"]))]
    actions, kept = engine.plan_kind(variable.KIND, want, have, owner=OWNER, prune=False)
    assert [(a.kind, a.name, a.changed, a.drift) for a in actions] == [
        ("create", "new", [], False), ("unchanged", "same", [], False), ("update", "changed", ["value"], False),
        ("update", "edited", ["value"], True)]
    assert [i.name for i in kept] == ["gone"]
    pruned, kept = engine.plan_kind(variable.KIND, want, have, owner=OWNER, prune=True)
    assert pruned[-1].kind == "delete" and pruned[-1].name == "gone" and kept == []


def test_a_variable_not_written_for_this_project_and_environment_is_a_conflict():
    want = desired(mine="m", by_hand="x", theirs="t")
    have = [variable.registered(r) for r in (raw("mine", "m"), raw("by_hand", "x", tags=["ops"]),
                                             raw("theirs", "t", tags=["managed-by:flow-register", "project:q",
                                                                      "environment:prod"]))]
    found = [(w.name, engine.owner_of(h.tags)) for w, h in engine.conflicts(variable.KIND, want, have, OWNER)]
    assert found == [("by_hand", (None, None)), ("theirs", ("q", "prod"))]


def test_the_report_shows_each_kind_in_a_section_of_its_own_before_the_deployments():
    from register.engine.desired import State

    deployment = State("f", "a", {"work_pool": "pool", "tags": OWNER})
    deployments = [engine.Action("create", "f", "a", desired=deployment)]
    want = desired(region="eu", old_name="x")
    have = [variable.registered(raw("region", "us")), variable.registered(raw("gone", "g"))]
    plan = engine.make_plan("p", "dev", [(variable.KIND, *engine.plan_kind(variable.KIND, want[:1], have,
                                                                           owner=OWNER, prune=True)),
                                         (DEPLOYMENTS, deployments, [])], prune=True, owner=OWNER)
    assert [(a.resource, a.kind) for a in plan.actions] == [
        ("variable", "update"), ("deployment", "create"), ("variable", "delete")]
    outcome = report.Outcome(plan, "http://server/api", dry_run=True, reads=5)
    assert report.text(outcome) == textwrap.dedent("""\
        Plan for project 'p', environment 'dev', on http://server/api

          ACTION  VARIABLE  CHANGES
          update  region    value
                  value: 'us' -> 'eu'
          delete  gone

          ACTION  DEPLOYMENT  FLOW  WORK POOL  CHANGES
          create  a           f     pool

        """) + "Plan: 1 to create, 1 to update, 0 unchanged, 1 to delete. Dry run: nothing was written (5 requests: 5 reads, 0 writes)."
    data = report.as_json(outcome)
    assert [d["name"] for d in data["deployments"]] == ["a"]
    assert [(v["name"], v["action"]) for v in data["variables"]] == [("region", "update"), ("gone", "delete")]
    assert data["variables"][0]["diff"] == {"value": {"from": "us", "to": "eu"}}
    assert "| update | `region` | `value: 'us' -> 'eu'` |" in report.markdown(outcome)
    deployments_only = make_plan("p", "dev", [], [], manifest_keys=set(), prune=True, owner=OWNER)
    assert "variables" not in report.as_json(report.Outcome(deployments_only, "http://server/api", dry_run=True))
