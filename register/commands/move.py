"""`flow-register move`: re-own deployments (and variables) under a new project or environment name.

Ownership is three tags (`managed-by:flow-register`, `project:<project>`, `environment:<env>`). Renaming the
project in the manifest, or the environment, would make a deploy refuse the deployments the old name owns
(registering them would take them from their owner). A move changes only whose they are: each deployment
the old name owns that the manifest (under its new name) also has gets the new ownership tags in place
(PATCH /deployments/{id}: the same id, flow runs, schedules and everything else), its triggers'
automations are re-tagged in place (PUT /automations/{id}), and so are the variables. Nothing is deleted
or created. It is planned like a deploy (the same table, the deploy leases of both names, --dry-run and
--detailed-exitcode), and a deploy under the new name afterwards finds them as its own.

The deploy history (register/commands/history.py) moves along: the old name's records are written again under
the new name, holding what moved, so `rollback` under the new name goes back to deploys made before the
rename. When the new name has a history of its own already, the old one stays where it is, and the plan says so.

Deployments the old name owns that the manifest does not have stay where they are, and are listed; a
deployment's name cannot change in place (Prefect has no rename), so names made from `{project}` or
`{environment}` must stay the same across the move, and the plan says so when they would not.
"""

from __future__ import annotations

import contextlib
import dataclasses
import time
from dataclasses import dataclass
from urllib.parse import quote

from register.commands import history
from register.commands.deploy import SLUG, _exit, _reads, lease_scope, load_valid
from register.prefect import models
from register.engine.applier import ApplyResult, Step
from register.engine.kind import STATE_TAG, Change
from register.engine.planner import Action, Plan
from register.kinds import KINDS, automation as automations_kind
from register.kinds.deployment import registered
from register.manifest import Overrides
from register.manifest.resolve import ownership_tags
from register.problems import Invalid, Problem
from register.report import github
from register.report.formats import Outcome
from register.report.reporters import Reporter
from register.server import Server, ServerError, connection_from_environment
from register.settings import Settings

# What PUT /automations/{id} takes (Prefect's AutomationUpdate forbids anything else, e.g. Cloud's ids)
AUTOMATION_FIELDS = ("name", "description", "enabled", "tags", "trigger", "actions", "actions_on_trigger",
                     "actions_on_resolve")


@dataclass
class MoveOptions:
    manifest: str
    environment: str  # the new environment (the manifest's project is the new project)
    from_project: str | None = None  # default: the manifest's project
    from_environment: str | None = None  # default: `environment`
    dry_run: bool = False
    detailed_exitcode: bool = False
    lock_wait: float = 600


def _swap(tags: list[str], old: list[str], new: list[str]) -> list[str]:
    return [t for t in tags if t not in old] + [t for t in new if t not in tags or t in old]


def run(options: MoveOptions, settings: Settings, reporter: Reporter) -> int:
    import re


    started = time.monotonic()
    env = options.environment
    manifest = load_valid(options.manifest, env, settings)
    project = manifest.project
    old_project, old_env = options.from_project or project, options.from_environment or env
    wrong = [Problem(flag, 0, 0, f"'{github.visible(value)[:80]}' is not a {what} name: lowercase letters, digits "
                                 "and '-', starting with a letter or digit", "move")
             for flag, value, what in (("--from-project", old_project, "project"),
                                       ("--from-environment", old_env, "environment"))
             if not re.fullmatch(SLUG, value) or len(value) > 100]
    if not wrong and (old_project, old_env) == (project, env):
        wrong = [Problem("--from-project", 0, 0, f"nothing to move: the manifest is project '{project}' and the "
                                                 f"environment is '{env}'; give --from-project OLD or "
                                                 "--from-environment OLD, the name the deployments are owned by now",
                         "move")]
    if wrong:
        raise Invalid(wrong)
    old, new = ownership_tags(old_project, old_env), ownership_tags(project, env)
    deployments = manifest.deployments(env, Overrides())
    wanted = {(d.flow, d.name): d for d in deployments}
    variables = manifest.variables(env)

    connection = connection_from_environment(settings.environ)
    reporter.secrets(connection.secrets())
    with Server(connection) as server, contextlib.ExitStack() as held:
        with reporter.phase(f"Read {server.url}"), _reads(connection, reporter) as failed:
            lease = None
            if not options.dry_run:  # neither name deploys while their deployments change hands
                lease = held.enter_context(server.lease(project, lease_scope(env, None), wait=options.lock_wait,
                                                        say=reporter.note))
                held.enter_context(server.lease(old_project, lease_scope(old_env, None), wait=options.lock_wait,
                                                say=reporter.note))
            raw = server.deployments([], old)
            flows = {str(f["id"]): f["name"] for f in server.flows([], [str(r["flow_id"]) for r in raw])}
            automations = automations_kind.by_deployment(server.automations(old))
            owned_variables = [v for v in KINDS["variable"].read(server, [], old) if set(old) <= set(v.tags)] \
                if variables is not None else []
            old_history = history.raw_records(server, old_project, old_env)
            own_history = bool(history.raw_records(server, project, env, 1))
        if failed.exit is not None:
            return failed.exit
        states = [registered(r, flows[str(r["flow_id"])], automations.get(str(r["id"]), []), old)
                  for r in raw if str(r["flow_id"]) in flows]
        plan = Plan(project, env, owner=new)
        left = []
        for have in states:
            d = wanted.get(have.key)
            if d is None:
                left.append(have)
                continue
            tags = _swap(have.fields["tags"], old, new)
            desired = dataclasses.replace(have, fields={**have.fields, "tags": tags}, owned=True,
                                          automations=[_retagged(a, d, old, new) for a in have.automations or []])
            count = len(have.automations or [])
            notes = [f"moves from project '{old_project}', environment '{old_env}': the same deployment (id, flow "
                     "runs, schedules), only its ownership tags change"
                     + (f"; its {count} trigger{'s' * (count != 1)} re-tagged in place" if count else "")]
            plan.actions.append(Action("update", have.flow, have.name, id=have.id,
                                       changes=[Change("tags", sorted(have.fields["tags"]), sorted(tags))],
                                       desired=desired, registered=have, notes=notes))
        declared = {v.name for v in variables or []}
        for have in owned_variables:
            if have.name not in declared:
                continue
            tags = _swap(have.tags, old, new)
            desired = dataclasses.replace(have, tags=tags, fields={**have.fields, "tags": sorted(set(tags))})
            plan.actions.append(Action("update", "", have.name, id=have.id, resource="variable", desired=desired,
                                       registered=have, changes=[Change("tags", have.fields["tags"],
                                                                        desired.fields["tags"])]))
        outcome = Outcome(plan, server.url, dry_run=options.dry_run)
        for have in left:
            reporter.note(github.visible(
                f"deployment '{have.name}' (flow '{have.flow}') stays with project '{old_project}', environment "
                f"'{old_env}': the manifest has no deployment of that name in '{env}'"
                + (" (a deployment's name cannot change in place: keep name_template's names the same across the "
                   "move)" if any(d.manifest_name and have.name.startswith(d.manifest_name) for d in deployments)
                   else "")))
        history_moves = bool(old_history) and not own_history and plan.changes_anything
        if old_history and plan.changes_anything:
            reporter.note(github.visible(
                f"the deploy history of project '{old_project}', environment '{old_env}' ({len(old_history)} "
                f"revision{'s' * (len(old_history) != 1)}) moves along: rollback -e {env} goes back to its deploys"
                if history_moves else
                f"the deploy history of project '{old_project}', environment '{old_env}' stays under that name: "
                f"project '{project}' in '{env}' has a deploy history of its own, and rollback -e {env} goes back "
                "only to its revisions"))
        reporter.planned(outcome)
        if not options.dry_run and plan.changes_anything:
            with reporter.phase("Apply"):
                outcome.result = _apply(plan, server, reporter, lease)
            if history_moves and outcome.result.ok:
                moved = {(a.flow, a.name) for a in plan.of("deployment")}
                try:
                    history.carry(server, (old_project, old_env), (project, env), old, new, moved,
                                  {a.name for a in plan.of("variable")}, old_history)
                except ServerError as error:
                    reporter.note(f"warning: the deploy history stays under project '{old_project}', environment "
                                  f"'{old_env}': {error}")
        outcome.reads, outcome.writes, outcome.retries = server.reads, server.writes, server.retries
        outcome.seconds = time.monotonic() - started
    reporter.finished(outcome)
    return _exit(outcome, options.detailed_exitcode)


def _retagged(automation: dict, d, old: list[str], new: list[str]) -> dict:
    """The automation with the new ownership tags, and its fingerprint tag made for them when it was made
    for the old ones from the manifest's trigger (else kept: the next plan then compares it in full)."""
    tags = _swap(list(automation.get("tags") or []), old, new)
    for position, tag in enumerate(tags):
        if not tag.startswith(models.FINGERPRINT_TAG):
            continue
        for index, spec in enumerate(d.triggers, start=1):
            if models.trigger_fingerprint(spec, d.name, index, old) == tag:
                tags[position] = models.trigger_fingerprint(spec, d.name, index, new)
    return {**automation, "tags": tags}


def _apply(plan: Plan, server: Server, reporter: Reporter, lease) -> ApplyResult:
    """The re-tagging writes, one at a time, in the plan's order; the first failure stops the rest. Each sets
    tags only, so running the move again converges."""
    result = ApplyResult(progress=reporter.step)
    pending = [a for a in plan.actions if a.kind != "unchanged"]
    for position, action in enumerate(pending):
        try:
            if lease is not None and lease.lost:
                raise ServerError(lease.lost, transient=True)
            if action.resource == "variable":
                tags = [*action.desired.tags, *(t for t in action.registered.tags if t.startswith(STATE_TAG))]
                server.request("PATCH", f"/variables/name/{quote(action.name, safe='')}", json={"tags": tags},
                               doing=f"moving variable '{action.name}'")
                result.done(Step("updated", "", action.name, action.id, resource="variable"))
                continue
            server.request("PATCH", f"/deployments/{action.id}", json={"tags": action.desired.fields["tags"]},
                           doing=f"moving deployment '{action.name}'")
            for automation in action.desired.automations or []:
                body = {k: automation[k] for k in AUTOMATION_FIELDS if k in automation}
                server.request("PUT", f"/automations/{automation['id']}", json=body,
                               doing=f"moving a trigger of deployment '{action.name}'")
            result.ids[(action.flow, action.name)] = action.id
            result.done(Step("updated", action.flow, action.name, action.id))
        except ServerError as error:
            result.failed, result.error, result.server_failed = action, str(error), error.transient
            result.not_attempted = pending[position + 1:]
            break
    return result
