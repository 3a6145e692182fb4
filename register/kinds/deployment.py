"""Deployments, a kind of the engine: read in bulk with their automations, compared, written, deleted, owned.

Both sides are brought into one shape (a `State`, see register/engine/desired.py) before they are compared, field
by field, so defaults the server fills in compare equal to the manifest leaving them out. Triggers are the
deployment's automations (register/kinds/automation.py): compared as its `triggers` field, written after
the deployment in the same action, since they run it by its id, and deleted before it. A deployment `prefect deploy` made
(without flow-register's tags) is taken over; one that another project or environment registered is a
conflict, refused before any write. The desired states are built by the deploy stages (they need the
server's work pools and the image: register/engine/desired.py, `for_environment`), so `desired` here is None.

A deployment whose fields changed is written whole with one upsert (POST /deployments/: same flow and
name, same id), so what the server has afterwards is exactly the manifest's, whatever was there before.
"""

from __future__ import annotations

import dataclasses
import threading
from concurrent.futures import ThreadPoolExecutor

from register.prefect import fields as deployment_fields
from register.prefect import models
from register.engine.desired import (DEPLOYMENT_FIELDS, FIELDS, SCHEMA_LABEL, SLA_LABEL, STATE_LABEL, State, automation_names,
                              body)
from register.engine import planner
from register.kinds import automation
from register.engine.applier import Step
from register.engine.kind import Change, Kind
from register.manifest.resolve import OWNER_TAG, ownership_tags
from register.server import Server, ServerError


def registered(raw: dict, flow: str, automations: list[dict], owner_tags: list[str]) -> State:
    """What the server has for one deployment (`raw` as /deployments/filter returns it) and the
    automations it owns."""
    fields = deployment_fields.registered(raw, automations)
    owned = set(owner_tags) <= set(fields["tags"])
    labels = raw.get("labels") or {}
    return State(flow, raw["name"], fields, id=str(raw["id"]), owned=owned, automations=automations,
                 last_written=labels.get(STATE_LABEL), schema_label=labels.get(SCHEMA_LABEL))


# -- comparing ----------------------------------------------------------------------------------------

same = deployment_fields.same  # declared per field in register/prefect/fields.py


def compare(want: State, have: State) -> list[Change]:
    changes = []
    for name in FIELDS:
        if name == "triggers":
            changes += filter(None, [automation.compare(want, have)])
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


def owned(state: State, owner: list[str]) -> bool:
    return set(owner) <= set(state.fields["tags"])


def takes_over(state: State) -> bool:
    """Registered by another tool (`prefect deploy`), not by flow-register for another project or environment."""
    return OWNER_TAG not in state.fields["tags"]


def make_plan(project: str, environment: str, desired_states: list[State], registered_states: list[State], *,
              manifest_keys: set[tuple[str, str]], prune: bool, owner: list[str] | None = None) -> planner.Plan:
    """A plan of deployments alone: each desired one's action; owned ones the manifest lacks deleted (with
    `prune`). `manifest_keys` are the (flow, name) of every deployment the manifest registers in this
    environment, also those left out by --only, which are therefore never pruned."""
    owner = owner or ownership_tags(project, environment)
    actions, kept = planner.plan_kind(KIND, desired_states, registered_states, owner=owner, prune=prune,
                                      keep=manifest_keys)
    return planner.make_plan(project, environment, [(KIND, actions, kept)], prune=prune, owner=owner)


def writes_deployment(action: planner.Action) -> bool:
    return action.kind == "create" or any(c.field in DEPLOYMENT_FIELDS for c in action.changes)


def writes_slas(action: planner.Action) -> bool:
    if action.kind == "create":
        return action.desired.fields.get("slas") is not None
    return "slas" in action.changed


def writes_triggers(action: planner.Action) -> bool:
    if action.kind == "create":
        return bool(action.desired.fields["triggers"])
    return "triggers" in action.changed


# -- read in bulk -------------------------------------------------------------------------------------

def read_with_flows(server: Server, wanted: list, owner_tags: list[str]) -> tuple[list[State], dict[str, str]]:
    """What the server has for the deployments `wanted` (resolve.Deployment: flow, name, triggers) and those
    carrying `owner_tags`, with the automations each owns; and the id of each flow the server has among them."""
    # The three reads at once: against a hosted server each costs a round trip.
    with ThreadPoolExecutor(3, thread_name_prefix="read-deployments") as pool:
        reading_deployments = pool.submit(server.deployments, [d.name for d in wanted], owner_tags)
        reading_flows = pool.submit(server.flows, [d.flow for d in wanted], [])
        reading_automations = pool.submit(server.automations, owner_tags,
                                          automation_names([(d.name, d.triggers) for d in wanted]))
        raw_deployments = reading_deployments.result()
        flows = reading_flows.result()
        automations = reading_automations.result()
    known = {str(f["id"]) for f in flows}  # a deployment of the same name under another flow: that flow too
    flows += server.flows([], [str(r["flow_id"]) for r in raw_deployments if str(r["flow_id"]) not in known])
    by_deployment = automation.by_deployment(automations)
    flow_names = {str(f["id"]): f["name"] for f in flows}
    # Automations without flow-register's tags (made by `prefect deploy` for a deployment taken over, or
    # held by a server that does not keep tags) were found by their names, in the same read: each is its
    # deployment's when it runs it, so taking over does not recreate triggers that are the same.
    states = [registered(r, flow_names[str(r["flow_id"])], by_deployment.get(str(r["id"]), []), owner_tags)
              for r in raw_deployments if str(r["flow_id"]) in flow_names]
    return states, {f["name"]: str(f["id"]) for f in flows}


def read(server: Server, wanted: list, owner_tags: list[str]) -> list[State]:
    return read_with_flows(server, wanted, owner_tags)[0]


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


# -- written and deleted ------------------------------------------------------------------------------

class _Flows:
    """The server's id of each flow. The new ones are all asked for first, before any deployment is written:
    flows written together never collide, but on SQLite a flow written while a deployment upsert is under
    way makes that upsert collide, and flows trickling in beside the upserts also take the places in
    flight that the upserts could use. POST /flows/ answers the existing flow of a name; each is still
    asked for once, and a failure is kept for its deployments to report."""

    def __init__(self, server: Server, ids: dict[str, str]):
        self.server = server
        self.ids = ids
        self.errors: dict[str, ServerError] = {}
        self._locks: dict[str, threading.Lock] = {}
        self._lock = threading.Lock()

    def id(self, name: str) -> str:
        with self._lock:
            lock = self._locks.setdefault(name, threading.Lock())
        with lock:
            if name in self.errors:
                raise self.errors[name]
            if name not in self.ids:
                try:
                    self.ids[name] = self.server.create_flow(name)
                except ServerError as error:
                    self.errors[name] = error
                    raise
            return self.ids[name]

    def prefetch(self, names: list[str], concurrency: int) -> None:
        """Ask for each flow the server does not have yet, `concurrency` at a time, until one fails: that
        one's deployment reports it, and the run stops there (a server that is down is not asked for
        every flow in turn)."""
        failed = threading.Event()

        def one(name: str) -> None:
            if not failed.is_set():
                try:
                    self.id(name)
                except ServerError:
                    failed.set()

        with ThreadPoolExecutor(concurrency, thread_name_prefix="flows") as pool:
            list(pool.map(one, dict.fromkeys(n for n in names if n not in self.ids)))


def prepare(server: Server, actions: list, context, concurrency: int) -> None:
    flows = context.shared["flows"] = _Flows(server, context.flow_ids)
    if concurrency > 1:  # one at a time: each flow just before its deployment
        flows.prefetch([a.flow for a in actions if writes_deployment(a)], concurrency)


def write(server: Server, action: planner.Action, context) -> str | None:
    """The deployment when its fields changed (one upsert), then its triggers when they changed: the old
    automations deleted by their ids, the new ones made to run the deployment."""
    deployment_id = action.id
    if writes_deployment(action):
        payload = body(action.desired, context.shared["flows"].id(action.flow))
        if writes_slas(action):
            # The SLAs first, then the label that says they are set: a run stopped between the two finds the
            # label still old and sets them again. A new deployment is written once without it, for its id.
            if deployment_id is None:
                labels = {k: v for k, v in payload["labels"].items() if k != SLA_LABEL}
                deployment_id = server.upsert_deployment({**payload, "labels": labels})
            server.apply_slas(deployment_id, action.desired.fields["slas"], action.name)
        deployment_id = server.upsert_deployment(payload)
        context.wrote(Step("created" if action.kind == "create" else "updated", action.flow, action.name,
                           deployment_id))
    context.ids[(action.flow, action.name)] = deployment_id
    if writes_triggers(action):
        automation.write(server, action.desired, action.registered, deployment_id, action.name)
    return deployment_id


def delete(server: Server, action: planner.Action, context=None) -> None:
    automation.delete(server, action.id, action.name)
    server.delete_deployment(action.id, action.name)


def read_back(server: Server, actions: list, owner_tags: list[str]) -> list[tuple[planner.Action, str]]:
    """After a write whose answer was lost: the deployments (and their triggers) the server does not hold as
    planned, each with what differs, to be written again against what the server holds now."""
    raw = server.deployments([a.name for a in actions], owner_tags)
    flows = {str(f["id"]): f["name"] for f in server.flows([], [str(r["flow_id"]) for r in raw])}
    names = automation_names([(a.desired.name, [t.spec for t in a.desired.triggers or []])
                              for a in actions if a.desired is not None])
    by_deployment = automation.by_deployment(server.automations(owner_tags, names))
    have = {(flows[str(r["flow_id"])], r["name"]): r for r in raw if str(r["flow_id"]) in flows}
    wrong = []
    for action in actions:
        found = have.get((action.flow, action.name))
        if action.kind == "delete":
            if found is not None:
                wrong.append((action, "still registered"))
            elif by_deployment.get(str(action.id)):
                wrong.append((action, "deleted, but its triggers are still registered"))
            continue
        if found is None:
            wrong.append((dataclasses.replace(action, kind="create", registered=None), "not registered"))
            continue
        state = registered(found, action.flow, by_deployment.get(str(found["id"]), []), owner_tags)
        changes = compare(action.desired, state)
        if changes:
            # written again against what the server holds now (its triggers' ids among it)
            again = dataclasses.replace(action, kind="update", id=str(found["id"]), changes=changes, registered=state)
            wrong.append((again, "differs in " + ", ".join(c.field for c in changes)))
    return wrong


KIND = Kind("deployment", "deployments", desired=lambda manifest, environment: None, read=read, compare=compare,
            write=write, delete=delete, owned=owned, takes_over=takes_over, settle=settle, with_context=True,
            prepare=prepare, deletes_with_writes=True, read_back=read_back)
