"""Each field of a deployment, declared once: adding one is one `Field` in `FIELDS`.

A field says where the manifest writes it (its keys, their JSON Schema, at which levels), how a resolved
deployment gets it, the name the server's DeploymentCreate/DeploymentUpdate gives it, how the desired
value is made and the registered one read back, how the two are compared, and which prefect.yaml keys
`import` turns into it. From this:

- schemas/manifest.schema.json's settings in `defaults`, `environments.<env>`, `deployments[]` and their
  overrides (`schema()`, written by scripts/reference.py, checked by its `--check`);
- resolution (register/manifest/resolve.py: `resolved()`; a setting's attributes are attributes of its
  `Deployment`, the one other line a new setting needs, which the tests hold to the declaration);
- the desired state and the body of `POST /deployments/` (register/engine/desired.py);
- the registered state and the comparison (register/kinds/deployment.py: `registered()`, `same()`);
- the fingerprint (`fingerprint()`);
- the importer's keys (`PREFECT_YAML_KEYS`).

tests/unit/test_fields_once.py walks this declaration against the schema, the installed Prefect's
DeploymentCreate and DeploymentUpdate, the Deployment dataclass and the importer, and fails when one of
them misses a field.

The fingerprint: the fields of version 1 (`VERSION_1`) are always in it, as they were; a field added later
is in it only when a deployment sets it (its value differs from `unset`), so adding a field changes no
deployment's fingerprint that does not use it, and what an earlier version wrote still reads as unchanged.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable
from dataclasses import dataclass

from register.prefect import models

# Where a manifest key may be written: the schema's $defs that get it.
EVERYWHERE = ("defaults", "environment", "deployment", "deployment_override")
PER_DEPLOYMENT = ("deployment", "deployment_override")  # not inherited from defaults or an environment
DEPLOYMENT_ONLY = ("deployment",)  # and the same in every environment
LEVELS = EVERYWHERE

DEFAULT_QUEUE = "default"

# Keys of those $defs that are not deployment fields (their schema is written in the JSON itself): how a
# deployment is named and switched on, the image, smoke runs, per-environment overrides.
OTHER_KEYS = {"name": DEPLOYMENT_ONLY, "name_template": ("defaults", "environment"), "image": ("environment",),
              "smoke": ("environment",), "enabled": PER_DEPLOYMENT, "environments": DEPLOYMENT_ONLY}


@dataclass(frozen=True)
class Setting:
    """One manifest key and the resolved Deployment attributes it becomes."""

    key: str
    schema: dict
    where: tuple[str, ...] = EVERYWHERE
    # (the merged value or None when unset, the environment's ownership tags) -> Deployment attributes
    resolve: Callable[[object, list[str]], dict] | None = None
    default: object = None  # the Deployment attribute's value when nothing sets it

    def resolved(self, value, owner_tags: list[str]) -> dict:
        if self.resolve is not None:
            return self.resolve(value, owner_tags)
        return {self.key: self.default if value is None else value}


@dataclass(frozen=True)
class Inputs:
    """What a deployment's desired fields are made from (register/engine/desired.py gathers them)."""

    deployment: object  # register.manifest.resolve.Deployment
    job_variables: dict  # resources translated for the pool, the raw job_variables, the image
    parameter_schema: dict  # from the flow's source
    pull_steps: list | None
    version: str | None
    trigger_fingerprints: list[str]


def _equal(want, have) -> bool:
    return json.dumps(want, sort_keys=True) == json.dumps(have, sort_keys=True)


@dataclass(frozen=True)
class Field:
    name: str  # in the desired and registered states and in the plan's changes
    # DeploymentCreate's and DeploymentUpdate's name; None: written otherwise (triggers as automations, SLAs
    # with Prefect Cloud's SLA API)
    server: str | None
    desired: Callable[[Inputs], object]
    read: Callable[[dict, list[dict]], object]  # (the server's deployment, the automations it owns)
    same: Callable[[object, object], bool] = _equal  # whether desired and registered agree
    settings: tuple[Setting, ...] = ()  # the manifest keys it is written with (none: not the manifest's)
    prefect_yaml: tuple[str, ...] = ()  # the prefect.yaml deployment keys `import` converts into it
    unset: object = None  # its desired value when a deployment does not set it (see fingerprint())
    # A label of the deployment that holds the digest of the value last written, for a field the server has
    # no read of (written with the deployment, so a change of it writes the deployment)
    label: str | None = None


# -- comparing --------------------------------------------------------------------------------------

def _same_schedules(want: list[dict], have: list[dict]) -> bool:
    if len(want) != len(have):
        return False
    left = list(have)
    for w in want:
        match = next((h for h in left if models.schedule_matches(w, h)), None)
        if match is None:
            return False
        left.remove(match)
    return True


def _same_tags(want, have) -> bool:
    return sorted(set(want)) == sorted(set(have))


def _same_concurrency_options(want, have) -> bool:
    # unset and Prefect's default (ENQUEUE, the server's grace period) agree
    def plain(options):
        return {k: v for k, v in (options or {}).items() if v is not None} or {"collision_strategy": "ENQUEUE"}
    return plain(want) == plain(have)


def _same_slas(want, have) -> bool:
    # unset in the manifest: the server's stay; else the digest of what was last set
    return want is None or sla_digest(want) == have


def _by_automations(want, have) -> bool:
    raise AssertionError("triggers are compared as automations (kinds/automation.py, compare)")


# -- SLAs (Prefect Cloud) ----------------------------------------------------------------------------

# The digest of the SLAs flow-register last set: the SLA API writes and has no documented read, so what was
# set is known by this label, written only after the SLAs themselves.
SLA_LABEL = "flow-register.slas"
# What an SLA says, as Prefect Cloud's SLA API takes it (the fields Prefect's client and the Terraform
# provider send: name, severity, enabled, and the kind's own; durations in seconds): the schema's `sla`
# properties, what `import` keeps of prefect.yaml's and what is sent (tests/unit/test_cloud_objects_offline.py
# holds them together; register/manifest/checks.py says which make each kind).
SLA_KEYS = ("name", "severity", "enabled", "duration", "expected_event", "resource_match", "stale_after", "within")


def sla_body(spec: dict) -> dict:
    """An SLA of the manifest as Prefect Cloud's SLA API takes it."""
    return {k: spec[k] for k in SLA_KEYS if spec.get(k) is not None}


def sla_digest(slas: list[dict]) -> str:
    return hashlib.sha256(json.dumps(slas, sort_keys=True).encode()).hexdigest()[:16]


# -- resolving --------------------------------------------------------------------------------------

def _work_pool(value, _owner) -> dict:
    if isinstance(value, dict):
        return {"work_pool": value.get("name"), "work_pool_type": value.get("type")}
    return {"work_pool": value, "work_pool_type": None}


def _tags(value, owner) -> dict:
    return {"tags": list(dict.fromkeys([*(value or []), *owner]))}


def _concurrency(value, _owner) -> dict:
    """concurrency_limit as Prefect takes it: the limit, and the options when the mapping form gives any."""
    if not isinstance(value, dict):
        return {"concurrency_limit": value, "concurrency_options": None}
    options = {k: value[k] for k in ("collision_strategy", "grace_period_seconds") if k in value}
    return {"concurrency_limit": value.get("limit"),
            "concurrency_options": {"collision_strategy": "ENQUEUE", **options} if options else None}


def _plain_or_none(value):
    return models.plain(value) if value else None


# -- the fields -------------------------------------------------------------------------------------

FIELDS: tuple[Field, ...] = (
    Field("work_pool", "work_pool_name",
          desired=lambda i: i.deployment.work_pool,
          read=lambda raw, _: raw.get("work_pool_name"),
          settings=(Setting("work_pool", {
              "anyOf": [{"$ref": "#/$defs/work_pool"}, {"type": "null"}],
              "description": "The work pool to register into: its name, or {name, type}. The type lets `validate` "
                             "check resources offline; at plan time it must match the server's pool type."},
              resolve=_work_pool),),
          prefect_yaml=("work_pool",)),
    Field("work_queue", "work_queue_name",
          desired=lambda i: i.deployment.work_queue or DEFAULT_QUEUE,
          read=lambda raw, _: raw.get("work_queue_name"),
          settings=(Setting("work_queue", {
              "type": ["string", "null"],
              "description": "The work queue within the pool. Default: the pool's default queue."}),),
          prefect_yaml=("work_pool",)),  # work_pool.work_queue_name
    Field("job_variables", "job_variables",
          desired=lambda i: models.plain(i.job_variables),
          read=lambda raw, _: raw.get("job_variables") or {},
          settings=(
              Setting("resources", {
                  "anyOf": [{"$ref": "#/$defs/resources"}, {"type": "null"}],
                  "description": "CPU and memory in one vocabulary, translated into the work pool type's own job "
                                 "variables and checked against what the platform accepts."}, default={}),
              Setting("job_variables", {
                  "type": ["object", "null"],
                  "description": "Raw job variables of the work pool, for what `resources` does not cover. A "
                                 "variable that `resources` also sets is an error."}, default={})),
          prefect_yaml=("work_pool",)),  # work_pool.job_variables
    Field("parameters", "parameters",
          desired=lambda i: models.plain(i.deployment.parameters),
          read=lambda raw, _: raw.get("parameters") or {},
          settings=(Setting("parameters", {
              "type": ["object", "null"],
              "description": "Flow parameters, checked against the flow function's signature."}, default={}),),
          prefect_yaml=("parameters",)),
    Field("parameter_schema", "parameter_openapi_schema",  # from the flow's source, not the manifest
          desired=lambda i: models.plain(i.parameter_schema),
          read=lambda raw, _: raw.get("parameter_openapi_schema")),
    Field("schedules", "schedules",
          desired=lambda i: [models.schedule(s) for s in i.deployment.schedules],
          read=lambda raw, _: [models.registered_schedule(s) for s in raw.get("schedules") or []],
          same=_same_schedules,
          settings=(Setting("schedules", {
              "type": ["array", "null"], "items": {"$ref": "#/$defs/schedule"},
              "description": "Schedules; an empty list means none."}, default=[]),),
          prefect_yaml=("schedules", "schedule", "is_schedule_active")),
    Field("triggers", None,  # automations of their own, owned by the deployment
          desired=lambda i: list(i.trigger_fingerprints),
          read=lambda raw, automations: [next((t for t in a.get("tags") or [] if t.startswith(models.FINGERPRINT_TAG)),
                                              None) for a in automations],
          same=_by_automations,
          settings=(Setting("triggers", {
              "type": ["array", "null"], "items": {"$ref": "#/$defs/trigger"},
              "description": "Event triggers, registered as automations that run the deployment."}, default=[]),),
          prefect_yaml=("triggers",)),
    Field("tags", "tags",
          desired=lambda i: list(i.deployment.tags),
          read=lambda raw, _: list(raw.get("tags") or []),
          same=_same_tags,
          settings=(Setting("tags", {
              "type": ["array", "null"], "items": {"type": "string"},
              "description": "Tags of the deployment (a list replaces the inherited one). The ownership tags are "
                             "always added."}, resolve=_tags),),
          prefect_yaml=("tags",)),
    Field("description", "description",
          # sent as given: Prefect's DeploymentCreate would turn a missing description into the string "None"
          desired=lambda i: i.deployment.description or None,
          read=lambda raw, _: raw.get("description") or None,
          settings=(Setting("description", {
              "type": ["string", "null"],
              "description": "Shown in the Prefect UI. Default: the flow's docstring."}, where=PER_DEPLOYMENT),),
          prefect_yaml=("description",)),
    Field("entrypoint", "entrypoint",
          desired=lambda i: i.deployment.entrypoint,
          read=lambda raw, _: raw.get("entrypoint"),
          settings=(Setting("entrypoint", {
              "type": "string", "pattern": "^[^:]+\\.py:[A-Za-z_][A-Za-z0-9_]*$",
              "description": "path/to/file.py:function, relative to the manifest; the function must be a @flow.",
              "examples": ["flows/sales.py:daily_sales"]}, where=DEPLOYMENT_ONLY),),
          prefect_yaml=("entrypoint",)),
    Field("pull_steps", "pull_steps",
          desired=lambda i: _plain_or_none(i.pull_steps),
          read=lambda raw, _: raw.get("pull_steps") or None,
          settings=(Setting("code", {
              "anyOf": [{"$ref": "#/$defs/code"}, {"type": "null"}],
              "description": "Where a run gets its code. Default: the image's workdir. With `git`, each run clones "
                             "the repository (with or without an image), installs `requirements` and starts in "
                             "`directory`."}),),
          prefect_yaml=("pull",)),
    Field("concurrency_limit", "concurrency_limit",
          desired=lambda i: i.deployment.concurrency_limit,
          read=lambda raw, _: (raw.get("global_concurrency_limit") or {}).get("limit") or raw.get("concurrency_limit"),
          settings=(Setting("concurrency_limit", {
              "anyOf": [{"$ref": "#/$defs/concurrency_limit"}, {"type": "null"}],
              "description": "At most this many runs of the deployment at once: a whole number, or a mapping that "
                             "also says what happens to a run over the limit."}, resolve=_concurrency),),
          prefect_yaml=("concurrency_limit",)),
    Field("concurrency_options", "concurrency_options",  # the mapping form of concurrency_limit
          desired=lambda i: _plain_or_none(i.deployment.concurrency_options),
          # the server fills in grace_period_seconds: null when not given, as the manifest leaves it
          read=lambda raw, _: raw.get("concurrency_options") or None,
          same=_same_concurrency_options,
          prefect_yaml=("concurrency_limit",)),
    Field("enforce_parameter_schema", "enforce_parameter_schema",
          desired=lambda i: i.deployment.enforce_parameter_schema,
          read=lambda raw, _: raw.get("enforce_parameter_schema", True),
          settings=(Setting("enforce_parameter_schema", {
              "type": ["boolean", "null"],
              "description": "false: runs may be started with parameters the flow's signature would refuse (the "
                             "server does not check them). Default true, as `prefect deploy`."}, default=True),),
          prefect_yaml=("enforce_parameter_schema",), unset=True),
    Field("paused", "paused",
          desired=lambda i: i.deployment.paused,  # None: the server's stays (see plan.settle)
          read=lambda raw, _: bool(raw.get("paused")),
          settings=(Setting("paused", {
              "type": ["boolean", "null"],
              "description": "Register the deployment paused: its schedules create no runs."}),),
          prefect_yaml=("paused",)),
    Field("version", "version",
          desired=lambda i: i.version,
          read=lambda raw, _: raw.get("version"),
          settings=(Setting("version", {
              "type": ["string", "null"],
              "description": "The deployment's version. Default: the image's content tag, so unchanged code leaves "
                             "it unchanged."}),),
          prefect_yaml=("version",)),
    Field("slas", None,  # set with Prefect Cloud's SLA API (register/server/client.py: apply_slas)
          # None: the manifest says nothing of SLAs, and the server's stay as they are (as `prefect deploy`)
          desired=lambda i: None if i.deployment.slas is None else [models.plain(sla_body(s))
                                                                    for s in i.deployment.slas],
          read=lambda raw, _: (raw.get("labels") or {}).get(SLA_LABEL),  # the digest of what was last set
          same=_same_slas,
          settings=(Setting("sla", {
              "type": ["array", "null"], "items": {"$ref": "#/$defs/sla"},
              "description": "Prefect Cloud SLAs of the deployment, as `prefect.yaml`'s `sla:`; the list is what "
                             "Cloud holds afterwards (an empty list removes them). Left out: the server's stay as "
                             "they are."}, resolve=lambda value, _: {"slas": value}),),
          prefect_yaml=("sla",), label=SLA_LABEL),
)

# What else DeploymentCreate and DeploymentUpdate take, and why it is no field of a deployment's state
NOT_FIELDS = {
    "name": "with the flow, the key a deployment is found by",
    "flow_id": "with the name, the key",
    "labels": "flow-register's own: the fingerprint of its last write and what the parameter schema was made from",
    "version_info": "where the code came from, from the run's context: sent, never compared",
    "global_concurrency_limit_id": "the server's, made from concurrency_limit",
    "infrastructure_document_id": "Prefect 2's infrastructure blocks: pools and job variables replace them",
    "storage_document_id": "Prefect 2's storage blocks: the image or pull_steps bring the code",
    "path": "Prefect 2's storage path: pull_steps set the working directory",
}

BY_NAME = {f.name: f for f in FIELDS}
NAMES = tuple(f.name for f in FIELDS)
SETTINGS: tuple[Setting, ...] = tuple(s for f in FIELDS for s in f.settings)
# What `import` converts from a prefect.yaml deployment (besides its name)
PREFECT_YAML_KEYS = frozenset(k for f in FIELDS for k in f.prefect_yaml)

# The fields every fingerprint has held since version 1, set or not. Never add to this: a field added later
# is fingerprinted only when set, so the deployments that do not set it keep their fingerprints.
VERSION_1 = frozenset({"work_pool", "work_queue", "job_variables", "parameters", "parameter_schema", "schedules",
                       "triggers", "tags", "description", "entrypoint", "pull_steps", "concurrency_limit",
                       "concurrency_options", "enforce_parameter_schema", "paused", "version"})


def desired(inputs: Inputs) -> dict:
    return {f.name: f.desired(inputs) for f in FIELDS}


def registered(raw: dict, automations: list[dict]) -> dict:
    return {f.name: f.read(raw, automations) for f in FIELDS}


def same(name: str, want, have) -> bool:
    """Whether field `name` (not triggers) is the same on both sides, as far as the manifest controls it."""
    return BY_NAME[name].same(want, have)


def server_body(fields: dict) -> dict:
    """The fields as DeploymentCreate names them (triggers are automations: not in it)."""
    return {f.server: fields[f.name] for f in FIELDS if f.server is not None}


def labels(fields: dict) -> dict:
    """The labels that record the fields the server has no read of: the digest of each one set."""
    return {f.label: sla_digest(fields[f.name]) for f in FIELDS
            if f.label is not None and fields.get(f.name) is not None}


def fingerprint(fields: dict) -> str:
    """A digest of the fields, to tell at the next plan whether the manifest changed since this write."""
    kept = {name: value for name, value in fields.items()
            if name in VERSION_1 or name not in BY_NAME or value != BY_NAME[name].unset}
    return hashlib.sha256(json.dumps(kept, sort_keys=True).encode()).hexdigest()[:16]


def resolved(merged: dict, entry: dict, owner_tags: list[str]) -> dict:
    """The Deployment attributes of every declared setting, from the merged layers (`entry`: the deployment as
    written, for what is set on the deployment alone)."""
    out: dict = {}
    for setting in SETTINGS:
        value = entry.get(setting.key) if setting.where == DEPLOYMENT_ONLY else merged.get(setting.key)
        out.update(setting.resolved(value, owner_tags))
    return out


# -- the schema -------------------------------------------------------------------------------------

def schema(document: dict) -> dict:
    """`document` (the manifest's JSON Schema) with each declared setting's schema at the levels it may be
    written: a key keeps its place, a new one goes after the last field, a key no longer declared goes. Keys
    that are not deployment fields (OTHER_KEYS) are left as written."""
    out = json.loads(json.dumps(document))
    for level in LEVELS:
        written = out["$defs"][level]["properties"]
        declared = {s.key: s.schema for s in SETTINGS if level in s.where}
        others = {k for k, where in OTHER_KEYS.items() if level in where}
        order = [k for k in written if k in declared or k in others]
        last_field = max((i for i, k in enumerate(order) if k in declared), default=-1)
        order[last_field + 1:last_field + 1] = [k for k in declared if k not in written]
        out["$defs"][level]["properties"] = {k: declared[k] if k in declared else written[k] for k in order}
    return out
