"""Applying a plan: what changed is written, kind after kind in the plan's order, a few at a time, with a
record of what was written.

Each kind writes and deletes its own things (register/kinds/: `Kind.write`, `Kind.delete`); this module
knows none of their fields. The plan's actions run in phases, one per kind's writes (or deletions), each
ended before the next begins, so a thing is there before what names it is written. Within a phase up to
`concurrency` writes run at once (a hosted server is a round trip away; one at a time, a deploy's time grows
as things x writes x round trip). The first failure stops new writes; the result lists what was applied, in
the plan's order, and since each write sets a whole state, running again converges. When a write's answer
was lost (it may or may not have happened), what the server holds is read back and compared with the plan
before the run says it is done.
"""

from __future__ import annotations

import dataclasses
import threading
from functools import partial
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Callable

from register.engine.kind import Kind
from register.engine.planner import Action, Plan
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


@dataclass
class Context:
    """What a kind that asks for it (`Kind.with_context`) gets beside the server, in one phase of writes."""

    flow_ids: dict[str, str]  # the flows the server has, by name: filled in as flows are made
    ids: dict[tuple[str, str], str]  # (flow, name) -> the id of each thing written or planned unchanged
    shared: dict = field(default_factory=dict)  # the kind's own, for the phase (its `prepare` fills it)
    wrote: Callable[[Step], None] = lambda step: None  # a write done, kept when a later one of the same action fails


def apply(plan: Plan, server: Server, flow_ids: dict[str, str], kinds: dict[str, Kind],
          progress: Callable[[Step], None] | None = None, *, concurrency: int = CONCURRENCY,
          lease=None) -> ApplyResult:
    """Write `plan`'s creates, updates and deletes, each by its kind in `kinds` (by name). `flow_ids` are the
    flows the server already has; `progress` hears of each write, in the plan's order; `lease` (the deploy
    lease) is checked before each write, so a run that lost it stops."""
    result = ApplyResult(progress=progress)
    pending = [a for a in plan.actions if a.kind != "unchanged"]
    flow_ids = dict(flow_ids)
    unsure_before = server.unsure_writes
    _run(pending, server, flow_ids, kinds, result, concurrency, lease)
    if result.ok and server.unsure_writes > unsure_before:
        _verify(plan, pending, server, flow_ids, kinds, result, lease)
    for action in plan.actions:
        if action.kind == "unchanged":
            result.ids[(action.flow, action.name)] = action.id
    return result


def _phases(pending: list[Action], kinds: dict[str, Kind]) -> list[list[Action]]:
    """The plan's actions in its dependency order, cut where one kind's writes (or deletions) end: each phase
    ends before the next begins (a variable is there before the deployment naming it is written). A kind whose
    deletions run beside its writes (deployments: nothing written after them names them) has one phase."""
    phases: list[tuple[object, list[Action]]] = []
    for action in pending:
        group = action.resource if kinds[action.resource].deletes_with_writes else \
            (action.resource, action.kind == "delete")
        if phases and phases[-1][0] == group:
            phases[-1][1].append(action)
        else:
            phases.append((group, [action]))
    return [actions for _, actions in phases]


def _run(pending: list[Action], server: Server, flow_ids: dict[str, str], kinds: dict[str, Kind],
         result: ApplyResult, concurrency: int, lease) -> None:
    phases = _phases(pending, kinds)
    for position, phase in enumerate(phases):
        _run_phase(phase, server, flow_ids, kinds[phase[0].resource], result, concurrency, lease)
        if not result.ok:
            result.not_attempted += [a for later in phases[position + 1:] for a in later]
            return


def _run_phase(pending: list[Action], server: Server, flow_ids: dict[str, str], kind: Kind, result: ApplyResult,
               concurrency: int, lease) -> None:
    run = _Run(pending, result, lease)
    shared: dict = {}

    def one(position: int) -> None:
        if not run.begin(position):
            return

        def wrote(step: Step) -> None:  # kept when a later write of the same action fails
            run.steps[position] = step

        try:
            step = _apply_one(pending[position], server, kind, Context(flow_ids, result.ids, shared, wrote))
        except ServerError as error:
            run.end(position, error=error)
        else:
            run.end(position, step)

    if kind.prepare is not None:
        kind.prepare(server, pending, Context(flow_ids, result.ids, shared), concurrency)
    with ThreadPoolExecutor(max(1, concurrency), thread_name_prefix="apply") as pool:
        list(pool.map(one, range(len(pending))))
    run.finish()


def _apply_one(action: Action, server: Server, kind: Kind, context: Context) -> Step | None:
    extra = {"context": context} if kind.with_context else {}
    if action.kind == "delete":
        kind.delete(server, action, **extra)
        return Step("deleted", action.flow, action.name, action.id, resource=action.resource)
    written = kind.write(server, action, **extra)
    context.ids[(action.flow, action.name)] = written
    return Step("created" if action.kind == "create" else "updated", action.flow, action.name, written,
                resource=action.resource,
                link=getattr(action.desired, "link", None) or getattr(action.registered, "link", None))


def read_back(kind: Kind, server: Server, actions: list[Action], owner: list[str]) -> list[tuple[Action, str]]:
    """A kind's things read back by name and compared as planned: the actions whose outcome the server does
    not show, each with what differs (written again as what the server needs now)."""
    found = {i.key: i for i in kind.read(server, [a.name for a in actions], owner)}
    wrong = []
    for action in actions:
        have = found.get(action.name)
        if action.kind == "delete":
            if have is not None:
                wrong.append((action, "still registered"))
        elif have is None:
            wrong.append((dataclasses.replace(action, kind="create"), "not registered"))
        elif changed := [c.field for c in kind.compare(action.desired, have)]:
            wrong.append((dataclasses.replace(action, kind="update"), "differs in " + ", ".join(changed)))
    return wrong


def _differences(plan: Plan, pending: list[Action], server: Server,
                 kinds: dict[str, Kind]) -> list[tuple[Action, str]]:
    """The actions whose outcome the server does not show, read back in bulk kind by kind, each with what
    differs."""
    wrong = []
    for name in dict.fromkeys(a.resource for a in pending):  # in the plan's order
        kind = kinds[name]
        mine = [a for a in pending if a.resource == name]
        wrong += (kind.read_back or partial(read_back, kind))(server, mine, plan.owner)
    return wrong


def _verify(plan: Plan, pending: list[Action], server: Server, flow_ids: dict[str, str], kinds: dict[str, Kind],
            result: ApplyResult, lease) -> None:
    """Some write's answer was lost: read back what the server holds; write again what differs (once)."""
    try:
        wrong = _differences(plan, pending, server, kinds)
        if wrong:
            again = ApplyResult()
            _run([a for a, _ in wrong], server, flow_ids, kinds, again, 1, lease)
            wrong = _differences(plan, pending, server, kinds) if again.ok else \
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
