"""The plan: each deployment as it should be registered, against what the server has now.

Both sides are brought into one shape (a `State`, see desired.py) before they are compared, field by
field, so defaults the server fills in compare equal to the manifest leaving them out. Triggers are
compared by fingerprint, and through Prefect's models only when the fingerprints differ (a trigger the
server got from `prefect deploy`, or one that changed). Each desired deployment gets one action: create,
update (naming the changed fields), or unchanged; a registered deployment this project owns in this
environment that the manifest no longer has is deleted with `--prune` and kept (and listed) without it.
A name that another project or environment registered is a conflict (`conflicts`), refused before any
write. Nothing here talks to the server or prints.
"""

from __future__ import annotations

import dataclasses
import json
from dataclasses import dataclass, field

from register import fields as deployment_fields
from register import models
from register.desired import DEPLOYMENT_FIELDS, FIELDS, SCHEMA_LABEL, STATE_LABEL, State
from register.manifest.resolve import OWNER_TAG, ownership_tags


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
    notes: list[str] = field(default_factory=list)  # what the plan says beside the changes
    drift: bool = False  # the server changed outside flow-register since its last write
    # The kind of thing it writes (register/kinds/): a deployment (flow and name), or a kind whose things
    # are found by name alone (flow ""), with `desired` and `registered` as register.engine.kind.Item.
    resource: str = "deployment"

    @property
    def changed(self) -> list[str]:
        return [c.field for c in self.changes]

    @property
    def writes_deployment(self) -> bool:
        if self.resource != "deployment":
            return False
        return self.kind == "create" or any(c.field in DEPLOYMENT_FIELDS for c in self.changes)

    @property
    def writes_slas(self) -> bool:
        if self.resource != "deployment" or self.kind == "delete":
            return False
        if self.kind == "create":
            return self.desired.fields.get("slas") is not None
        return "slas" in self.changed

    @property
    def writes_triggers(self) -> bool:
        if self.resource != "deployment":
            return False
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
    owner: list[str] = field(default_factory=list)  # the ownership tags of what this plan may write or delete
    # Of the other kinds (their plural, e.g. "variables"): owned, no longer in the manifest, kept without --prune
    kept_other: dict[str, list] = field(default_factory=dict)

    def of(self, resource: str) -> list[Action]:
        """The actions on things of one kind ("deployment", "variable"), in the plan's order."""
        return [a for a in self.actions if a.resource == resource]

    def count(self, kind: str) -> int:
        return sum(a.kind == kind for a in self.actions)

    @property
    def changes_anything(self) -> bool:
        return any(a.kind != "unchanged" for a in self.actions)


# -- the registered side ----------------------------------------------------------------------------

def automation_deployments(raw: dict) -> set[str]:
    """The deployments an automation runs (the 'run this deployment' actions deploy triggers make)."""
    return {str(a["deployment_id"]) for a in raw.get("actions") or []
            if a.get("type") == "run-deployment" and a.get("source") == "selected" and a.get("deployment_id")}


def registered(raw: dict, flow: str, automations: list[dict], owner_tags: list[str]) -> State:
    """What the server has for one deployment (`raw` as /deployments/filter returns it) and the
    automations it owns."""
    fields = deployment_fields.registered(raw, automations)
    owned = set(owner_tags) <= set(fields["tags"])
    labels = raw.get("labels") or {}
    return State(flow, raw["name"], fields, id=str(raw["id"]), owned=owned, automations=automations,
                 last_written=labels.get(STATE_LABEL), schema_label=labels.get(SCHEMA_LABEL))


# -- comparing ----------------------------------------------------------------------------------------

def _canonical(value) -> str:
    return json.dumps(value, sort_keys=True)


def _without_tags(automation: dict) -> dict:
    return {k: v for k, v in automation.items() if k != "tags"}


def _trigger_change(want: State, have: State) -> Change | None:
    """None when the server's automations are the manifest's triggers. Equal fingerprints say so without
    Prefect's models; otherwise both sides are shaped by them and compared (tags aside: automations that
    `prefect deploy` made are the same triggers without flow-register's tags)."""
    if sorted(want.fields["triggers"]) == sorted(f or "" for f in have.fields["triggers"]) and \
            _as_tagged(want, have):
        return None
    after = [t.automation for t in want.triggers or []]
    before = [models.registered_automation(a) for a in have.automations or []]
    if sorted(_canonical(_without_tags(a)) for a in after) == sorted(_canonical(_without_tags(b)) for b in before):
        return None
    return Change("triggers", before, after)


def _as_tagged(want: State, have: State) -> bool:
    """Whether each registered automation still does what its fingerprint tag says: a tag is server-held
    text, and a server user can edit an automation (switch it off, run another deployment, listen for other
    events, other parameters) and keep its tag. Any doubt here only sends the triggers to the full comparison
    through Prefect's models, never to a false change."""
    by_fingerprint = {t.fingerprint: t for t in want.triggers or []}
    for raw in have.automations or []:
        tag = next((t for t in raw.get("tags") or [] if t.startswith(models.FINGERPRINT_TAG)), None)
        trigger = by_fingerprint.get(tag)
        if trigger is None:
            return False
        spec = models.plain(trigger.spec)
        body = raw.get("trigger") or {}
        actions = raw.get("actions") or []
        if raw.get("enabled", True) != spec.get("enabled", True) or \
                raw.get("name") != spec.get("name", f"{trigger.deployment}__automation_{trigger.index}") or \
                body.get("type") != spec.get("type") or \
                (raw.get("description") or "") != (spec.get("description") or "") or \
                sorted(body.get("expect") or []) != sorted(spec.get("expect") or []) or \
                raw.get("actions_on_trigger") or raw.get("actions_on_resolve") or len(actions) != 1:
            return False
        action = actions[0]
        if action.get("type") != "run-deployment" or str(action.get("deployment_id")) != str(have.id) or \
                (action.get("parameters") or {}) != (spec.get("parameters") or {}) or \
                (action.get("job_variables") or {}) != (spec.get("job_variables") or {}):
            return False
    return True


same = deployment_fields.same  # declared per field in register/fields.py


def compare(want: State, have: State) -> list[Change]:
    changes = []
    for name in FIELDS:
        if name == "triggers":
            changes += filter(None, [_trigger_change(want, have)])
        elif not same(name, want.fields.get(name), have.fields.get(name)):  # (states from before SLAs lack them)
            before = have.fields.get(name)
            if deployment_fields.BY_NAME[name].label:  # only the digest of what flow-register set is known
                before = None if before is None else f"as flow-register last set them ({before})"
            changes.append(Change(name, before, want.fields.get(name)))
    return changes


def _schedule_text(spec: dict) -> str:
    body = spec["schedule"]
    what = f"cron '{body['cron']}'" if "cron" in body else f"every {body['interval']:g} s" if "interval" in body \
        else f"rrule '{body.get('rrule')}'"
    return f"schedule {spec['slug']!r} ({what})" if spec.get("slug") else f"schedule {what}"


def settle(want: State, have: State | None) -> tuple[State, list[str]]:
    """`want` with the runtime state operators own made concrete, and what the plan should say about it.

    A deployment's paused state and each schedule's active flag that the manifest leaves unset stay as the
    server has them (paused by hand in an incident stays paused); a value the manifest sets is enforced,
    and a note says that it undoes what the server has."""
    fields = dict(want.fields)
    notes = []
    paused_now = bool(have.fields["paused"]) if have else False
    if fields["paused"] is None:
        fields["paused"] = paused_now
        if paused_now:
            notes.append("paused on the server: stays paused, since the manifest does not set paused")
    elif have and fields["paused"] != paused_now:
        notes.append(f"{'paused' if paused_now else 'not paused'} on the server: will be "
                     f"{'paused' if fields['paused'] else 'resumed'}, because the manifest sets paused: "
                     f"{str(fields['paused']).lower()}")
    left = list(have.fields["schedules"]) if have else []
    schedules = []
    for spec in fields["schedules"]:
        match = next((h for h in left if models.schedule_matches({**spec, "active": None}, h)), None)
        if match is not None:
            left.remove(match)
        active = spec["active"]
        if active is None:
            active = match["active"] if match is not None else True
            if not active:
                notes.append(f"{_schedule_text(spec)} is off on the server: stays off, since the manifest does not "
                             "set active")
        elif match is not None and active != match["active"]:
            notes.append(f"{_schedule_text(spec)} is {'on' if match['active'] else 'off'} on the server: will be "
                         f"turned {'on' if active else 'off'}, because the manifest sets active: {str(active).lower()}")
        schedules.append({**spec, "active": active})
    fields["schedules"] = schedules
    return dataclasses.replace(want, fields=fields), notes


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
              manifest_keys: set[tuple[str, str]], prune: bool, owner: list[str] | None = None) -> Plan:
    """Give each desired deployment an action; delete (with `prune`) owned ones the manifest lacks.

    `manifest_keys` are the (flow, name) of every deployment the manifest registers in this environment,
    also those left out by --only, which are therefore never pruned.
    """
    plan = Plan(project, environment, prune=prune, owner=owner or ownership_tags(project, environment))
    by_key = {s.key: s for s in registered_states}
    for want in desired_states:
        have = by_key.get(want.key)
        want, notes = settle(want, have)
        if have is None:
            plan.actions.append(Action("create", want.flow, want.name, desired=want, notes=notes))
            continue
        changes = compare(want, have)
        if not have.owned and OWNER_TAG not in have.fields["tags"]:
            notes.append("registered without flow-register until now: this deploy takes it over (and adds its tags)")
        drift = bool(changes) and have.last_written == want.fingerprint()
        if drift:
            notes.insert(0, "drift: changed on the server since flow-register's last deploy, while the manifest "
                            "stayed as it was; the manifest's values are put back")
        plan.actions.append(Action("update" if changes else "unchanged", want.flow, want.name, id=have.id,
                                   changes=changes, desired=want, registered=have, notes=notes, drift=drift))
    for have in registered_states:
        if not have.owned or have.key in manifest_keys:
            continue
        if prune:
            plan.actions.append(Action("delete", have.flow, have.name, id=have.id, registered=have))
        else:
            plan.kept.append(have)
    return plan


# -- what the server cannot store -------------------------------------------------------------------

INT64 = 2**63 - 1  # the server's integer columns (PostgreSQL BIGINT, SQLite INTEGER)
SECONDS = 86_399_999_999_999  # the longest duration the server holds (Python's timedelta.max, in seconds)
DURATIONS = {"interval", "within", "schedule_after", "grace_period_seconds", "range", "firing_for"}


def unstorable(deployment) -> list[tuple[tuple, str]]:
    """Numbers in what `deployment` registers that the server cannot store, each with its resolved path
    (for Deployment.origin) and what is wrong. The server refuses them (422) or fails on them (500, retried
    until the run gives up) only when they are written, perhaps after other writes of the same run."""
    found: list[tuple[tuple, str]] = []

    def walk(value, path: tuple) -> None:
        if isinstance(value, dict):
            for key, item in value.items():
                walk(item, (*path, key))
        elif isinstance(value, list):
            for index, item in enumerate(value):
                walk(item, (*path, index))
        elif isinstance(value, bool) or not isinstance(value, (int, float)):
            return
        elif value != value or value in (float("inf"), float("-inf")):
            found.append((path, f"'{'.'.join(map(str, path))}' is {value}, which the Prefect server cannot store"))
        elif path and path[-1] in DURATIONS and abs(value) > SECONDS:
            found.append((path, f"'{'.'.join(map(str, path))}' is {value:g} seconds; the Prefect server holds "
                                f"durations of at most {SECONDS} seconds (about 2.7 million years)"))
        elif isinstance(value, int) and abs(value) > INT64 and path[0] not in ("parameters", "job_variables"):
            # (parameters and job variables are JSON documents on the server: any whole number fits)
            found.append((path, f"'{'.'.join(map(str, path))}' is {value}; the Prefect server stores whole "
                                f"numbers from -{INT64 + 1} to {INT64}"))

    for name in ("schedules", "triggers", "parameters", "job_variables", "concurrency_limit", "concurrency_options"):
        walk(getattr(deployment, name), (name,))
    return found
