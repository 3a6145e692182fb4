"""The plan: each deployment as it should be registered, against what the server has now.

Both sides are brought into one shape (a `State`) before they are compared, field by field: the
manifest's schedules and triggers go through Prefect's own models, and so does what the server
returns, so defaults the server fills in compare equal to the manifest leaving them out. Each desired
deployment gets one action: create, update (naming the changed fields), or unchanged; a registered
deployment this project owns in this environment that the manifest no longer has is deleted with
`--prune` and kept (and listed) without it. A name that another project or environment registered is
a conflict (`conflicts`), refused before any write. Nothing here talks to the server or prints.
"""

from __future__ import annotations

import datetime as dt
import json
from dataclasses import dataclass, field
from uuid import UUID

from register.manifest.resolve import OWNER_TAG

FIELDS = ("work_pool", "work_queue", "job_variables", "parameters", "parameter_schema", "schedules", "triggers",
          "tags", "description", "entrypoint", "pull_steps", "concurrency_limit", "paused", "version")
# The fields a deployment write carries; triggers are automations of their own.
DEPLOYMENT_FIELDS = tuple(f for f in FIELDS if f != "triggers")
DEFAULT_QUEUE = "default"
_PLACEHOLDER_ID = UUID(int=0)  # stands in for the deployment id in desired triggers; apply sets the real one


def plain(value):
    """JSON-shaped data: YAML dates become ISO strings, as the server would store them."""
    def default(obj):
        if isinstance(obj, (dt.date, dt.datetime, dt.time)):
            return obj.isoformat()
        return str(obj)

    return json.loads(json.dumps(value, default=default))


@dataclass
class State:
    """One deployment's registrable state, in the shape both sides share (plain JSON values)."""

    flow: str
    name: str
    fields: dict
    id: str | None = None
    owned: bool = True  # carries this project's and environment's ownership tags
    manifest_name: str | None = None

    @property
    def key(self) -> tuple[str, str]:
        return self.flow, self.name


@dataclass
class Change:
    field: str
    before: object
    after: object


@dataclass
class Action:
    kind: str  # create | update | unchanged | delete
    flow: str
    name: str
    id: str | None = None
    changes: list[Change] = field(default_factory=list)
    desired: State | None = None
    registered: State | None = None
    note: str | None = None

    @property
    def changed(self) -> list[str]:
        return [c.field for c in self.changes]

    @property
    def writes_deployment(self) -> bool:
        return self.kind == "create" or any(c.field in DEPLOYMENT_FIELDS for c in self.changes)

    @property
    def writes_triggers(self) -> bool:
        if self.kind == "create":
            return bool(self.desired.fields["triggers"])
        return "triggers" in self.changed


@dataclass
class Plan:
    project: str
    environment: str
    actions: list[Action] = field(default_factory=list)
    kept: list[State] = field(default_factory=list)  # owned, no longer in the manifest, kept without --prune
    prune: bool = False

    def count(self, kind: str) -> int:
        return sum(a.kind == kind for a in self.actions)

    @property
    def changes_anything(self) -> bool:
        return any(a.kind != "unchanged" for a in self.actions)


# -- the desired side -------------------------------------------------------------------------------

def schedule(spec: dict) -> dict:
    """A manifest schedule as the server stores it (Prefect's schedule models fill in the defaults)."""
    from prefect.client.schemas.schedules import CronSchedule, IntervalSchedule, RRuleSchedule

    common = {"timezone": spec["timezone"]} if spec.get("timezone") else {}
    if "cron" in spec:
        model = CronSchedule(cron=spec["cron"], day_or=spec.get("day_or", True), **common)
    elif "interval" in spec:
        anchor = {"anchor_date": spec["anchor_date"]} if spec.get("anchor_date") else {}
        model = IntervalSchedule(interval=dt.timedelta(seconds=spec["interval"]), **common, **anchor)
    else:
        model = RRuleSchedule(rrule=spec["rrule"], **common)
    body = model.model_dump(mode="json")
    if "interval" in spec and not spec.get("anchor_date"):
        body.pop("anchor_date", None)  # the server picks one; the manifest does not control it
    return {"schedule": body, "active": spec.get("active", True), "parameters": plain(spec.get("parameters") or {}),
            "slug": spec.get("slug")}


def trigger(spec: dict, deployment: str, index: int, tags: list[str]) -> dict:
    """A manifest trigger as the automation `prefect deploy` would make of it, tagged with the owner tags."""
    from pydantic import TypeAdapter
    from prefect.events.schemas.deployment_triggers import DeploymentTriggerTypes

    spec = {"name": f"{deployment}__automation_{index}", **plain(spec)}
    model = TypeAdapter(DeploymentTriggerTypes).validate_python(spec)
    model.set_deployment_id(_PLACEHOLDER_ID)
    automation = model.as_automation()
    automation.tags = list(tags)
    return _automation_shape(automation.model_dump(mode="json"))


def desired(deployment, *, job_variables: dict, parameter_schema: dict, pull_steps: list | None,
            version: str | None, owner_tags: list[str]) -> State:
    """What `deployment` (a resolved manifest deployment) registers as."""
    fields = {
        "work_pool": deployment.work_pool,
        "work_queue": deployment.work_queue or DEFAULT_QUEUE,
        "job_variables": plain(job_variables),
        "parameters": plain(deployment.parameters),
        "parameter_schema": plain(parameter_schema),
        "schedules": [schedule(s) for s in deployment.schedules],
        "triggers": [trigger(t, deployment.name, i, owner_tags) for i, t in enumerate(deployment.triggers, start=1)],
        "tags": list(deployment.tags),
        "description": deployment.description or None,
        "entrypoint": deployment.entrypoint,
        "pull_steps": plain(pull_steps) if pull_steps else None,
        "concurrency_limit": deployment.concurrency_limit,
        "paused": bool(deployment.paused),
        "version": version,
    }
    return State(deployment.flow, deployment.name, fields, manifest_name=deployment.manifest_name)


# -- the registered side ----------------------------------------------------------------------------

def _strip_ids(value):
    if isinstance(value, dict):
        return {k: _strip_ids(v) for k, v in value.items() if k != "id"}
    if isinstance(value, list):
        return [_strip_ids(v) for v in value]
    return value


def _automation_shape(body: dict) -> dict:
    """An automation without what the server assigns (ids, times) or the deployment it runs."""
    body = {k: v for k, v in body.items() if k not in ("id", "created", "updated", "owner_resource")}
    body["trigger"] = _strip_ids(body.get("trigger") or {})
    for key in ("actions", "actions_on_trigger", "actions_on_resolve"):
        body[key] = [{k: v for k, v in action.items() if k != "deployment_id"} for action in body.get(key) or []]
    return body


def registered_automation(raw: dict) -> dict:
    from prefect.events.schemas.automations import Automation

    try:
        return _automation_shape(Automation.model_validate(raw).model_dump(mode="json"))
    except ValueError:  # a shape this Prefect does not know: compare it as it came
        return _automation_shape(raw)


def automation_deployments(raw: dict) -> set[str]:
    """The deployments an automation runs (the 'run this deployment' actions deploy triggers make)."""
    return {str(a["deployment_id"]) for a in raw.get("actions") or []
            if a.get("type") == "run-deployment" and a.get("source") == "selected" and a.get("deployment_id")}


def _registered_schedule(raw: dict) -> dict:
    from prefect.client.schemas.objects import DeploymentSchedule

    try:
        body = DeploymentSchedule.model_validate(raw).schedule.model_dump(mode="json")
    except ValueError:
        body = raw.get("schedule") or {}
    return {"schedule": body, "active": raw.get("active", True), "parameters": raw.get("parameters") or {},
            "slug": raw.get("slug")}


def registered(raw: dict, flow: str, automations: list[dict], owner_tags: list[str]) -> State:
    """What the server has for one deployment (`raw` as /deployments/filter returns it)."""
    limit = (raw.get("global_concurrency_limit") or {}).get("limit") or raw.get("concurrency_limit")
    fields = {
        "work_pool": raw.get("work_pool_name"),
        "work_queue": raw.get("work_queue_name"),
        "job_variables": raw.get("job_variables") or {},
        "parameters": raw.get("parameters") or {},
        "parameter_schema": raw.get("parameter_openapi_schema"),
        "schedules": [_registered_schedule(s) for s in raw.get("schedules") or []],
        "triggers": [registered_automation(a) for a in automations],
        "tags": list(raw.get("tags") or []),
        "description": raw.get("description") or None,
        "entrypoint": raw.get("entrypoint"),
        "pull_steps": raw.get("pull_steps") or None,
        "concurrency_limit": limit,
        "paused": bool(raw.get("paused")),
        "version": raw.get("version"),
    }
    owned = set(owner_tags) <= set(fields["tags"])
    return State(flow, raw["name"], fields, id=str(raw["id"]), owned=owned)


# -- comparing ----------------------------------------------------------------------------------------

def _canonical(value) -> str:
    return json.dumps(value, sort_keys=True)


def _schedule_matches(want: dict, have: dict) -> bool:
    """`have` is `want` as far as the manifest controls it (the keys `want` has)."""
    if (want["active"], want["parameters"], want["slug"]) != (have["active"], have["parameters"], have["slug"]):
        return False
    return all(_canonical(have["schedule"].get(k)) == _canonical(v) for k, v in want["schedule"].items()) and \
        set(have["schedule"]) - {"anchor_date"} <= set(want["schedule"])


def _same_schedules(want: list[dict], have: list[dict]) -> bool:
    if len(want) != len(have):
        return False
    left = list(have)
    for w in want:
        match = next((h for h in left if _schedule_matches(w, h)), None)
        if match is None:
            return False
        left.remove(match)
    return True


def same(name: str, want, have) -> bool:
    """Whether field `name` is the same on both sides, as far as the manifest controls it."""
    if name == "schedules":
        return _same_schedules(want, have)
    if name == "triggers":
        return sorted(map(_canonical, want)) == sorted(map(_canonical, have))
    if name == "tags":
        return sorted(set(want)) == sorted(set(have))
    return _canonical(want) == _canonical(have)


def compare(want: State, have: State) -> list[Change]:
    return [Change(name, have.fields[name], want.fields[name]) for name in FIELDS
            if not same(name, want.fields[name], have.fields[name])]


def owner_of(state: State) -> tuple[str | None, str | None]:
    """The project and environment a flow-register deployment belongs to, from its tags."""
    tags = state.fields["tags"]
    pick = lambda prefix: next((t.split(":", 1)[1] for t in tags if t.startswith(prefix)), None)  # noqa: E731
    return pick("project:"), pick("environment:")


def conflicts(keys: list[tuple[str, str]], registered_states: list[State]) -> list[State]:
    """Registered deployments at these (flow, name) keys that flow-register registered for another project
    or environment: writing them would take them away from there."""
    wanted = set(keys)
    return [s for s in registered_states if s.key in wanted and not s.owned and OWNER_TAG in s.fields["tags"]]


def make_plan(project: str, environment: str, desired_states: list[State], registered_states: list[State], *,
              manifest_keys: set[tuple[str, str]], prune: bool) -> Plan:
    """Give each desired deployment an action; delete (with `prune`) owned ones the manifest lacks.

    `manifest_keys` are the (flow, name) of every deployment the manifest registers in this environment,
    also those left out by --only, which are therefore never pruned.
    """
    plan = Plan(project, environment, prune=prune)
    by_key = {s.key: s for s in registered_states}
    for want in desired_states:
        have = by_key.get(want.key)
        if have is None:
            plan.actions.append(Action("create", want.flow, want.name, desired=want))
            continue
        changes = compare(want, have)
        note = None
        if not have.owned and OWNER_TAG not in have.fields["tags"]:
            note = "registered without flow-register until now: this deploy takes it over (and adds its tags)"
        plan.actions.append(Action("update" if changes else "unchanged", want.flow, want.name, id=have.id,
                                   changes=changes, desired=want, registered=have, note=note))
    for have in registered_states:
        if not have.owned or have.key in manifest_keys:
            continue
        if prune:
            plan.actions.append(Action("delete", have.flow, have.name, id=have.id, registered=have))
        else:
            plan.kept.append(have)
    return plan
