"""Each deployment field is declared once (register/prefect/fields.py): these tests fail when the schema, resolution,
the desired state, the server's models, the comparison, the fingerprint or the importer miss one."""

from __future__ import annotations

import dataclasses
import hashlib
import json
from pathlib import Path

import pytest
import yaml
from prefect.server.schemas.actions import DeploymentCreate, DeploymentUpdate

from register.prefect import fields
from register.engine.desired import Pool, State, body, desired
from register.flows import FlowSchema
from register.importer import convert
from register.manifest import load_manifest
from register.manifest.resolve import Deployment
from register.kinds.deployment import compare, make_plan, registered

ROOT = Path(__file__).resolve().parents[2]
OWNER = ["managed-by:flow-register", "project:p", "environment:dev"]
FLOW = "from prefect import flow\n\n\n@flow\ndef etl(who: str = 'x'):\n    pass\n"


def manifest_schema() -> dict:
    return json.loads((ROOT / "schemas" / "manifest.schema.json").read_text())


def test_every_setting_is_in_the_schema_at_its_levels_as_declared_and_nothing_else_is():
    defs = manifest_schema()["$defs"]
    for setting in fields.SETTINGS:
        for level in fields.LEVELS:
            properties = defs[level]["properties"]
            if level in setting.where:
                assert properties.get(setting.key) == setting.schema, (level, setting.key)
            else:
                assert setting.key not in properties or setting.key in fields.OTHER_KEYS, (level, setting.key)
    for level in fields.LEVELS:
        declared = {s.key for s in fields.SETTINGS if level in s.where}
        others = {k for k, where in fields.OTHER_KEYS.items() if level in where}
        assert set(defs[level]["properties"]) == declared | others, level


def test_the_schema_file_is_what_the_declaration_writes():
    # scripts/reference.py --check says the same in CI; this names the file
    import runpy

    reference = runpy.run_path(str(ROOT / "scripts" / "reference.py"))
    assert reference["schema_text"]() == (ROOT / "schemas" / "manifest.schema.json").read_text()


def test_a_new_setting_lands_in_the_schema_at_its_levels_after_the_fields_and_a_dropped_one_goes(monkeypatch):
    new = fields.Setting("retries", {"type": ["integer", "null"], "description": "Runs retried."},
                         where=fields.PER_DEPLOYMENT)
    monkeypatch.setattr(fields, "SETTINGS", tuple(s for s in fields.SETTINGS if s.key != "paused") + (new,))
    defs = fields.schema(manifest_schema())["$defs"]
    order = list(defs["deployment"]["properties"])
    assert order.index("version") < order.index("retries") < order.index("enabled")
    assert defs["deployment_override"]["properties"]["retries"] == new.schema
    assert "retries" not in defs["defaults"]["properties"] and "retries" not in defs["environment"]["properties"]
    assert all("paused" not in defs[level]["properties"] for level in fields.LEVELS)
    assert defs["environment"]["properties"]["smoke"] == manifest_schema()["$defs"]["environment"]["properties"]["smoke"]


def test_every_field_is_named_as_the_servers_deployment_create_and_update_name_it():
    for f in fields.FIELDS:
        if f.server is not None:
            assert f.server in DeploymentCreate.model_fields, f.name
            assert f.server in DeploymentUpdate.model_fields, f.name
    # a field the installed Prefect takes that is neither declared nor said why not fails here
    servers = {f.server for f in fields.FIELDS} | set(fields.NOT_FIELDS)
    assert set(DeploymentCreate.model_fields) <= servers
    assert set(DeploymentUpdate.model_fields) <= servers


def test_every_resolved_attribute_comes_from_a_setting():
    made = set()
    for setting in fields.SETTINGS:
        made |= set(setting.resolved(None, OWNER))
    attributes = {f.name for f in dataclasses.fields(Deployment)}
    assert made <= attributes
    # the rest: its names, its place in the manifest, the flow read from source, where values were written
    assert attributes - made == {"name", "manifest_name", "index", "flow", "origins"}


def repository(tmp_path: Path, deployment: str) -> Path:
    (tmp_path / "flows").mkdir()
    (tmp_path / "flows" / "etl.py").write_text(FLOW)
    (tmp_path / "flows.yaml").write_text(
        "version: 1\nproject: p\nenvironments: {dev: {work_pool: {name: pool, type: kubernetes}}}\n"
        f"deployments:\n- {deployment}\n")
    return tmp_path / "flows.yaml"


EVERY_SETTING = ("{name: etl, entrypoint: flows/etl.py:etl, work_queue: q, resources: {cpu: 1, memory: 1Gi}, "
                 "job_variables: {image_pull_policy: Always}, parameters: {who: me}, tags: [a], "
                 "schedules: [{cron: '0 6 * * *'}], triggers: [{type: event, expect: [x.y]}], "
                 "concurrency_limit: {limit: 2, collision_strategy: CANCEL_NEW}, enforce_parameter_schema: false, "
                 "paused: true, code: {git: {repository: 'https://example.org/r.git', ref: "
                 "0123456789abcdef0123456789abcdef01234567}}, description: d, version: v1, "
                 "sla: [{name: on-time, within: 300}]}")


def desired_state(tmp_path: Path, deployment: str = EVERY_SETTING) -> State:
    manifest = load_manifest(repository(tmp_path, deployment))
    assert manifest.errors() == []
    (d,) = manifest.deployments("dev")
    return desired(d, pool=Pool("pool", "kubernetes"), image="registry/p:abc",
                   flow_schema=FlowSchema({"type": "object", "properties": {}}, "f", ()),
                   pull_steps=[{"prefect.deployments.steps.set_working_directory": {"directory": "/x"}}],
                   version="v1", owner_tags=OWNER)


def test_every_field_is_in_the_desired_state_the_body_and_the_registered_state(tmp_path):
    want = desired_state(tmp_path)
    assert tuple(want.fields) == fields.NAMES
    sent = body(want, "flow-id")
    assert {f.server for f in fields.FIELDS if f.server} <= set(sent)
    have = registered({**sent, "id": "d-1"}, "etl", [], OWNER)
    assert tuple(have.fields) == fields.NAMES


def test_a_deployment_set_in_every_field_reads_back_unchanged_from_what_was_sent(tmp_path):
    want = desired_state(tmp_path)
    automations = [{"tags": [t]} for t in want.fields["triggers"]]
    raw = {**body(want, "flow-id"), "id": "d-1"}
    raw["schedules"] = [{"id": "s", "deployment_id": "d-1", **s} for s in raw["schedules"]]
    have = registered(raw, want.flow, automations, OWNER)
    assert [c.field for c in compare(want, have) if c.field != "triggers"] == []
    plan = make_plan("p", "dev", [want], [have], manifest_keys={want.key}, prune=False)
    assert plan.actions[0].kind in ("unchanged", "update") and \
        [c for c in plan.actions[0].changed if c != "triggers"] == []


def test_every_setting_the_manifest_has_changes_the_desired_state(tmp_path):
    """Each field a manifest sets reaches the desired state (nothing declared is dropped on the way)."""
    want = desired_state(tmp_path).fields
    assert want["work_queue"] == "q"
    assert want["job_variables"] == {"image": "registry/p:abc", "cpu_request": "1000m", "cpu_limit": "1000m",
                                     "memory_request": "1024Mi", "memory_limit": "1024Mi", "image_pull_policy": "Always"}
    assert want["parameters"] == {"who": "me"} and "a" in want["tags"] and len(want["schedules"]) == 1
    assert len(want["triggers"]) == 1 and want["concurrency_limit"] == 2
    assert want["concurrency_options"] == {"collision_strategy": "CANCEL_NEW"}
    assert want["enforce_parameter_schema"] is False and want["paused"] is True
    assert want["description"] == "d" and want["version"] == "v1" and want["pull_steps"]
    assert want["slas"] == [{"name": "on-time", "within": 300}]


# -- the fingerprint ------------------------------------------------------------------------------------

def version_1_fingerprint(values: dict) -> str:
    """The fingerprint flow-register 1 wrote (desired.State.fingerprint until the fields were declared)."""
    return hashlib.sha256(json.dumps(values, sort_keys=True).encode()).hexdigest()[:16]


def test_the_fingerprint_of_the_fields_of_version_1_is_the_one_version_1_wrote(tmp_path):
    (tmp_path / "plain").mkdir()
    plain = desired_state(tmp_path / "plain", "{name: etl, entrypoint: flows/etl.py:etl}")
    (tmp_path / "every").mkdir()
    every = desired_state(tmp_path / "every", EVERY_SETTING.replace(", sla: [{name: on-time, within: 300}]", ""))
    for state in (every, plain):
        # the fields added since are unset, and so left out
        assert fields.VERSION_1 <= set(state.fields)
        assert all(state.fields[name] == fields.BY_NAME[name].unset for name in set(state.fields) - fields.VERSION_1)
        assert state.fingerprint() == version_1_fingerprint({k: state.fields[k] for k in fields.VERSION_1})
    # a field added since counts once a deployment sets it
    assert desired_state(tmp_path).fingerprint() != every.fingerprint()


RETRIES = fields.Field("retries", None, desired=lambda i: getattr(i.deployment, "retries", None),
                       read=lambda raw, _: raw.get("retries"), unset=None)


def test_adding_a_field_keeps_the_fingerprint_of_every_deployment_that_does_not_set_it(tmp_path, monkeypatch):
    before = desired_state(tmp_path)
    monkeypatch.setattr(fields, "FIELDS", fields.FIELDS + (RETRIES,))
    monkeypatch.setattr(fields, "BY_NAME", {**fields.BY_NAME, "retries": RETRIES})
    (tmp_path / "again").mkdir()
    after = desired_state(tmp_path / "again")
    assert after.fields == {**before.fields, "retries": None}
    assert after.fingerprint() == before.fingerprint()
    # one that sets it: a new fingerprint, so a server edit of it is told from a manifest change
    assert State("f", "etl", {**after.fields, "retries": 3}).fingerprint() != before.fingerprint()


def test_a_field_of_version_1_left_unset_is_still_in_the_fingerprint(tmp_path):
    want = desired_state(tmp_path)
    assert want.fields["paused"] is True
    assert State("f", "etl", {**want.fields, "paused": None}).fingerprint() != want.fingerprint()


# -- import -----------------------------------------------------------------------------------------------

PREFECT_YAML = """\
name: etl
pull:
- prefect.deployments.steps.git_clone:
    repository: https://example.org/r.git
    branch: main
deployments:
- name: etl
  entrypoint: flows/etl.py:etl
  description: d
  version: v1
  tags: [a]
  parameters: {who: me}
  work_pool:
    name: pool
    work_queue_name: q
    job_variables: {cpu: 1024, memory: 2048, launch_type: FARGATE}
  schedules: [{cron: '0 6 * * *'}]
  triggers: [{type: event, expect: [x.y]}]
  concurrency_limit: {limit: 2, collision_strategy: CANCEL_NEW}
  enforce_parameter_schema: false
  paused: true
  sla: [{name: on-time, within: 300}]
  pull:
  - prefect.deployments.steps.git_clone:
      repository: https://example.org/r.git
      branch: main
"""


def test_import_converts_every_field_a_prefect_yaml_can_set(tmp_path):
    (tmp_path / "flows").mkdir()
    (tmp_path / "flows" / "etl.py").write_text(FLOW)
    path = tmp_path / "prefect.yaml"
    path.write_text(PREFECT_YAML)
    conversion = convert(path, environment="dev", pool_types={"pool": "ecs"}, cwd=tmp_path)
    assert not [w for w in conversion.warnings if "not converted" in w.message], conversion.warnings
    written = dict(conversion.manifest["deployments"][0])
    for layer in (conversion.manifest.get("defaults") or {}, conversion.manifest["environments"]["dev"]):
        written.update(layer)
    for f in fields.FIELDS:
        if not f.prefect_yaml or not f.settings:
            continue
        assert any(s.key in written for s in f.settings), f.name
    # every key of a prefect.yaml deployment the fields declare is one the importer reads
    read = {"name"} | fields.PREFECT_YAML_KEYS
    assert set(yaml.safe_load(PREFECT_YAML)["deployments"][0]) <= read


@pytest.mark.parametrize("name", [f.name for f in fields.FIELDS if f.server or f.label])
def test_every_field_the_server_holds_is_compared(name, tmp_path):
    """A value the server holds that differs from the desired one is a change of that field."""
    want = desired_state(tmp_path)
    other = {"work_pool": "other", "work_queue": "other", "job_variables": {"x": 1}, "parameters": {"x": 1},
             "parameter_schema": {"type": "object", "properties": {"x": {}}}, "schedules": [],
             "tags": ["other"], "description": "other", "entrypoint": "flows/x.py:x", "pull_steps": [{"x": {}}],
             "concurrency_limit": 9, "concurrency_options": {"collision_strategy": "ENQUEUE"},
             "enforce_parameter_schema": True, "paused": False, "version": "other",
             "slas": "0123456789abcdef"}  # the digest of other SLAs
    # a field the server has no read of reads back as its label: the digest of what was last set
    read_back = {**want.fields, **{f.name: fields.labels(want.fields)[f.label] for f in fields.FIELDS if f.label}}
    have = State(want.flow, want.name, {**read_back, name: other[name]}, id="d-1", owned=True)
    assert [c.field for c in compare(want, have) if c.field != "triggers"] == [name]
