"""Apply a plan: write what changed, a few deployments at a time, and keep a record of what was written.

A deployment whose fields changed is written whole with one upsert (POST /deployments/: same flow and
name, same id), so what the server has afterwards is exactly the manifest's, whatever was there before.
Its triggers are automations owned by the deployment, replaced only when they changed. Up to
`concurrency` deployments are written at once (a hosted server is a round trip away; one at a time, a
deploy's time grows as deployments x writes x round trip). The first failure stops new writes; the
result lists what was applied, in the manifest's order, and since each write sets a whole state,
running again converges. When a write's answer was lost (it may or may not have happened), what the
server holds is read back and compared with the plan before the run says it is done.
"""

from __future__ import annotations

import dataclasses
import threading
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Callable

from register.desired import SLA_LABEL, automation_body, automation_names, body
from register.kinds import KINDS
from register.plan import Action, Plan, automation_deployments, compare, registered
from register.server import Server, ServerError
from register.settings import CONCURRENCY



@dataclass
class Step:
    """One completed write, or the one that failed."""

    action: str  # created | updated | deleted
    flow: str
    name: str
    id: str | None = None
    resource: str = "deployment"  # the kind of thing written (register/kinds/)
    link: str | None = None  # where people reach what was written (a webhook's URL), for the report


@dataclass
class ApplyResult:
    applied: list[Step] = field(default_factory=list)
    ids: dict[tuple[str, str], str] = field(default_factory=dict)  # (flow, name) -> deployment id
    failed: Action | None = None
    error: str | None = None
    not_attempted: list[Action] = field(default_factory=list)
    # the failure was the server's (it kept failing until the retries ran out), not the plan's
    server_failed: bool = False
    rule: str | None = None  # a failure of its own kind (ServerError.rule), e.g. deploy-lease, rate-limit
    progress: Callable[[Step], None] | None = field(default=None, repr=False)

    def done(self, step: Step) -> None:
        self.applied.append(step)
        if self.progress:
            self.progress(step)

    @property
    def ok(self) -> bool:
        return self.failed is None


class _Run:
    """One apply: which actions ran, how each ended, and the report in the manifest's order."""

    def __init__(self, pending: list[Action], result: ApplyResult, lease):
        self.pending = pending
        self.result = result
        self.lease = lease
        self.steps: list[Step | None] = [None] * len(pending)
        self.ended = [False] * len(pending)
        self.started = [False] * len(pending)
        self.errors: dict[int, ServerError] = {}
        self.stop = threading.Event()
        self.lock = threading.Lock()
        self.reported = 0

    def begin(self, position: int) -> bool:
        with self.lock:
            if self.stop.is_set():
                return False
            if self.lease is not None and self.lease.lost:
                self.errors[position] = ServerError(self.lease.lost, transient=True, rule="deploy-lease")
                self.stop.set()
                return False
            self.started[position] = True
            return True

    def end(self, position: int, step: Step | None = None, error: ServerError | None = None) -> None:
        with self.lock:
            if step is not None:
                self.steps[position] = step
            self.ended[position] = True
            if error is not None:
                self.errors[position] = error
                self.stop.set()
            # report in the manifest's order: every step whose predecessors have all ended
            while self.reported < len(self.pending) and (self.ended[self.reported] or self.stop.is_set()
                                                          and not self.started[self.reported]):
                if self.steps[self.reported] is not None:
                    self.result.done(self.steps[self.reported])
                self.reported += 1

    def finish(self) -> None:
        self.end_remaining()
        if self.errors:
            first = min(self.errors)
            self.result.failed = self.pending[first]
            self.result.error = str(self.errors[first])
            self.result.server_failed = self.errors[first].transient
            self.result.rule = self.errors[first].rule
            self.result.not_attempted = [a for i, a in enumerate(self.pending) if not self.started[i] and i != first]

    def end_remaining(self) -> None:
        with self.lock:
            while self.reported < len(self.pending):
                if self.steps[self.reported] is not None:
                    self.result.done(self.steps[self.reported])
                self.reported += 1


def apply(plan: Plan, server: Server, flow_ids: dict[str, str],
          progress: Callable[[Step], None] | None = None, *, concurrency: int = CONCURRENCY,
          lease=None) -> ApplyResult:
    """Write `plan`'s creates, updates and deletes. `flow_ids` are the flows the server already has;
    `progress` hears of each write, in the plan's order; `lease` (the deploy lease) is checked before
    each deployment is written, so a run that lost it stops."""
    result = ApplyResult(progress=progress)
    pending = [a for a in plan.actions if a.kind != "unchanged"]
    flow_ids = dict(flow_ids)
    unsure_before = server.unsure_writes
    _run(pending, server, flow_ids, result, concurrency, lease)
    if result.ok and server.unsure_writes > unsure_before:
        _verify(plan, pending, server, flow_ids, result, lease)
    for action in plan.actions:
        if action.kind == "unchanged" and action.resource == "deployment":
            result.ids[(action.flow, action.name)] = action.id
    return result


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


def _phases(pending: list[Action]) -> list[list[Action]]:
    """The plan's actions in its dependency order, cut where one kind's writes (or deletions) end: each phase
    ends before the next begins (a variable is there before the deployment naming it is written). A
    deployment's deletions run beside the deployments' writes, as nothing written after them names them."""
    phases: list[tuple[object, list[Action]]] = []
    for action in pending:
        group = "deployment" if action.resource == "deployment" else (action.resource, action.kind == "delete")
        if phases and phases[-1][0] == group:
            phases[-1][1].append(action)
        else:
            phases.append((group, [action]))
    return [actions for _, actions in phases]


def _run(pending: list[Action], server: Server, flow_ids: dict[str, str], result: ApplyResult,
         concurrency: int, lease) -> None:
    phases = _phases(pending)
    for position, phase in enumerate(phases):
        _run_phase(phase, server, flow_ids, result, concurrency, lease)
        if not result.ok:
            result.not_attempted += [a for later in phases[position + 1:] for a in later]
            return


def _run_phase(pending: list[Action], server: Server, flow_ids: dict[str, str], result: ApplyResult,
               concurrency: int, lease) -> None:
    run = _Run(pending, result, lease)
    flows = _Flows(server, flow_ids)

    def one(position: int) -> None:
        if not run.begin(position):
            return

        def wrote(step: Step) -> None:  # kept when a later write of this deployment fails
            run.steps[position] = step

        try:
            step = _apply_one(pending[position], server, flows, result, wrote)
        except ServerError as error:
            run.end(position, error=error)
        else:
            run.end(position, step)

    if concurrency > 1:  # one at a time: each flow just before its deployment
        flows.prefetch([a.flow for a in pending if a.writes_deployment], concurrency)
    with ThreadPoolExecutor(max(1, concurrency), thread_name_prefix="apply") as pool:
        list(pool.map(one, range(len(pending))))
    run.finish()


def _apply_one(action: Action, server: Server, flows: _Flows, result: ApplyResult,
               wrote: Callable[[Step], None] = lambda step: None) -> Step | None:
    if action.resource != "deployment":
        kind = KINDS[action.resource]
        if action.kind == "delete":
            kind.delete(server, action)
            return Step("deleted", "", action.name, action.id, resource=action.resource)
        written = kind.write(server, action)
        return Step("created" if action.kind == "create" else "updated", "", action.name, written,
                    resource=action.resource, link=action.desired.link or getattr(action.registered, "link", None))
    key = (action.flow, action.name)
    if action.kind == "delete":
        server.delete_owned_automations(action.id, action.name)
        server.delete_deployment(action.id, action.name)
        return Step("deleted", action.flow, action.name, action.id)
    deployment_id = action.id
    step = None
    if action.writes_deployment:
        payload = body(action.desired, flows.id(action.flow))
        if action.writes_slas:
            # The SLAs first, then the label that says they are set: a run stopped between the two finds the
            # label still old and sets them again. A new deployment is written once without it, for its id.
            if deployment_id is None:
                labels = {k: v for k, v in payload["labels"].items() if k != SLA_LABEL}
                deployment_id = server.upsert_deployment({**payload, "labels": labels})
            server.apply_slas(deployment_id, action.desired.fields["slas"], action.name)
        deployment_id = server.upsert_deployment(payload)
        step = Step("created" if action.kind == "create" else "updated", action.flow, action.name, deployment_id)
        wrote(step)
    result.ids[key] = deployment_id
    if action.writes_triggers:
        have = action.registered
        # The old triggers are deleted by their ids, never "all the deployment's": a delete whose answer was
        # lost may still reach the server after the new ones exist, and must not take them with it; and on
        # Prefect Cloud a deployment's SLAs are owned by it too (prefect.deployment.<id>), so "all the
        # deployment's" would take its SLAs. Those `prefect deploy` made, of a deployment taken over, were found
        # by their names with the others.
        for automation in (have.automations or []) if have is not None else []:
            server.delete_automation(str(automation["id"]), action.name)
        for trigger in action.desired.triggers:
            server.create_automation(automation_body(trigger.automation, deployment_id), action.name)
        step = step or Step("updated", action.flow, action.name, deployment_id)
    return step


def _differences(plan: Plan, pending: list[Action], server: Server) -> list[tuple[Action, str]]:
    """The actions whose outcome the server does not show, read back in bulk, each with what differs."""
    owner = plan.owner
    wrong = []
    for kind in KINDS.values():  # the other kinds: read back by name, compared as planned
        mine = [a for a in pending if a.resource == kind.name]
        if not mine:
            continue
        found = {i.key: i for i in kind.read(server, [a.name for a in mine], owner)}
        for action in mine:
            have = found.get(action.name)
            if action.kind == "delete":
                if have is not None:
                    wrong.append((action, "still registered"))
            elif have is None:  # written again as what the server needs now
                wrong.append((dataclasses.replace(action, kind="create"), "not registered"))
            elif changed := [c.field for c in kind.compare(action.desired, have)]:
                wrong.append((dataclasses.replace(action, kind="update"), "differs in " + ", ".join(changed)))
    pending = [a for a in pending if a.resource == "deployment"]
    if not pending:
        return wrong
    raw = server.deployments([a.name for a in pending], owner)
    flows = {str(f["id"]): f["name"] for f in server.flows([], [str(r["flow_id"]) for r in raw])}
    by_deployment: dict[str, list[dict]] = {}
    names = automation_names([(a.desired.name, [t.spec for t in a.desired.triggers or []])
                              for a in pending if a.desired is not None])
    for automation in server.automations(owner, names):
        for deployment_id in automation_deployments(automation):
            by_deployment.setdefault(deployment_id, []).append(automation)
    have = {(flows[str(r["flow_id"])], r["name"]): r for r in raw if str(r["flow_id"]) in flows}
    for action in pending:
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
        state = registered(found, action.flow, by_deployment.get(str(found["id"]), []), owner)
        changes = compare(action.desired, state)
        if changes:
            # written again against what the server holds now (its triggers' ids among it)
            again = dataclasses.replace(action, kind="update", id=str(found["id"]), changes=changes, registered=state)
            wrong.append((again, "differs in " + ", ".join(c.field for c in changes)))
    return wrong


def _verify(plan: Plan, pending: list[Action], server: Server, flow_ids: dict[str, str], result: ApplyResult,
            lease) -> None:
    """Some write's answer was lost: read back what the server holds; write again what differs (once)."""
    try:
        wrong = _differences(plan, pending, server)
        if wrong:
            again = ApplyResult()
            _run([a for a, _ in wrong], server, flow_ids, again, 1, lease)
            wrong = _differences(plan, pending, server) if again.ok else \
                [(again.failed, again.error)]
    except ServerError as error:
        result.failed, result.error, result.server_failed = pending[-1], str(error), error.transient
        result.rule = error.rule
        return
    if wrong:
        action, what = wrong[0]
        result.failed = action
        result.error = (f"after writing, the server does not hold the plan: {action.resource} '{action.name}' {what}"
                        + (f" (and {len(wrong) - 1} more)" if len(wrong) > 1 else "") + "; run again")
