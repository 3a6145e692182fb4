"""`flow-register rollback`: put an environment back to what an earlier deploy registered.

The deploy history (register/commands/history.py) holds what each deploy applied. A rollback reads it, checks the
chosen record as strictly as a manifest, and plans it against what the server has now exactly as a deploy
plans the manifest (register/engine/planner.py, every kind's): the same table, the same lease, --dry-run and
--detailed-exitcode, the same apply. Nothing is built: the record names its image by digest, and only a
digest in the environment's registry (the manifest's `image.repository`) is accepted. Deployments made
after that revision are kept and listed, or deleted with --prune, as a deploy does. A rollback that
changes something is recorded as a revision of its own, so it can be rolled back too.
"""

from __future__ import annotations

import contextlib
import re
import time
from dataclasses import dataclass
from types import SimpleNamespace

from register.commands import history

from register.prefect import models
from register.commands.deploy import _apply, _exit, _reads, lease_scope, load_valid
from register.engine.desired import Pool
from register.image import Image
from register.engine import planner
from register.kinds import DEPLOYMENTS, KINDS, automation
from register.kinds.deployment import registered
from register.manifest import Overrides
from register.manifest.resolve import ownership_tags
from register.problems import Exit, Invalid, Problem
from register.report import github
from register.report.formats import Outcome
from register.report.reporters import Reporter
from register.server import Server, ServerError, connection_from_environment
from register.settings import CONCURRENCY, Settings


@dataclass
class RollbackOptions:
    manifest: str
    environment: str
    to: str | None = None  # a revision number or a commit (prefix); default: the revision before the newest
    list: bool = False
    dry_run: bool = False
    prune: bool = False
    detailed_exitcode: bool = False
    concurrency: int = CONCURRENCY
    lock_wait: float = 600
    label: str = "--to"  # how the user named `to` (the action: input 'rollback')


def _usage(label: str, message: str) -> Invalid:
    return Invalid([Problem(label, 0, 0, message, "rollback")])


def pick(raws: list[dict], to: str | None, label: str) -> dict:
    """The record to roll back to: by revision number, by commit (7 or more hex digits), or the one before
    the newest. Revision numbers come from the records: two records claiming one number are refused."""
    listed = ", ".join(str(r) for r in (history.revision_of(raw) for raw in raws) if r is not None) or "none"
    if not raws:
        raise _usage(label, "this environment has no deploy history yet: flow-register records each deploy that "
                            "writes something, so deploy first")
    if to is None or to in ("", "previous"):
        if len(raws) < 2:
            raise _usage(label, f"the deploy history has only revision {listed}, what is registered now; there is "
                                "nothing before it to roll back to")
        return raws[1]
    if to.isdigit() and len(to) < 7:  # 7 digits or more: a commit (revisions do not grow that far)
        found = [raw for raw in raws if history.revision_of(raw) == int(to)]
        if len(found) > 1 and any(raw.get("data") != found[0].get("data") for raw in found):
            raise _usage(label, f"two records of the deploy history claim revision {to}; one was written by someone "
                                "else. Roll back by commit instead, or deploy the commit you want")
        if found:
            return found[0]
        raise _usage(label, f"revision {to} is not in the deploy history; the revisions kept are {listed} "
                            f"(the newest {history.KEEP}); see rollback --list")
    if re.fullmatch(r"[0-9a-f]{7,64}", to):
        found = [raw for raw in raws if isinstance(raw.get("data"), dict)
                 and str(raw["data"].get("commit") or "").startswith(to)]
        if found:
            return found[0]  # the newest deploy of that commit
        raise _usage(label, f"no deploy of commit {to} is in the deploy history; see rollback --list")
    raise _usage(label, f"'{github.visible(to)[:80]}' is neither a revision number, a commit (7 or more hex digits) "
                        "nor 'previous'")


def _listing(raws: list[dict], check) -> list[str]:
    lines = []
    for position, raw in enumerate(raws):
        try:
            line = check(raw).line()
        except Invalid as refused:
            line = f"revision {history.revision_of(raw) or '?'}: refused: {refused.problems[0].message}"
        lines.append(github.visible(line) + ("  (registered now)" if position == 0 else ""))
    return lines


def run(options: RollbackOptions, settings: Settings, reporter: Reporter) -> int:
    started = time.monotonic()
    env = options.environment
    manifest = load_valid(options.manifest, env, settings)
    project = manifest.project
    owner = ownership_tags(project, env)
    spec = manifest.image(env)
    registry = spec.get("repository") if spec else None
    by_pool = dict(spec.get("repositories") or {}) if spec else {}
    prebuilt = {image for d in manifest.deployments(env, Overrides())
                if isinstance(image := (d.job_variables or {}).get("image"), str)}

    def check(raw: dict) -> history.Entry:
        return history.check(raw, project, env, owner, registry, prebuilt, by_pool)

    connection = connection_from_environment(settings.environ)
    reporter.secrets(connection.secrets())
    with Server(connection) as server, contextlib.ExitStack() as held:
        with reporter.phase(f"Read {server.url}"), _reads(connection, reporter) as failed:
            lease = None if options.dry_run or options.list else held.enter_context(server.lease(
                project, lease_scope(env, None), wait=options.lock_wait, say=reporter.note))
            raws = history.raw_records(server, project, env)
            if options.list:
                print("\n".join(_listing(raws, check)) or
                      f"no deploy history of project {project} in {env} yet", flush=True)
                return Exit.OK
            entry = check(pick(raws, options.to, options.label))
            reporter.note(github.visible(f"Rolling back project {project} in {env} to {entry.line()}"))
            state = _read(server, entry, owner)
        if failed.exit is not None:
            return failed.exit
        _refuse_conflicts(entry, state, owner, server.url)
        planned = [(DEPLOYMENTS, *planner.plan_kind(DEPLOYMENTS, entry.deployments, state.deployments, owner=owner,
                                                    prune=options.prune, keep=set(entry.keys)))]
        if entry.variables is not None:  # written before the deployments naming them, deleted after
            kind = KINDS["variable"]
            planned.insert(0, (kind, *planner.plan_kind(kind, entry.variables, state.variables, owner=owner,
                                                        prune=options.prune)))
        # a rollback prunes nothing by itself: what it keeps is what the revision lacks, whatever the manifest has
        plan = planner.make_plan(project, env, planned, prune=options.prune, owner=owner,
                                 kept_because=f"not in the deploy rolled back to (revision {entry.revision})")
        image = Image(reference=entry.image, repository=registry, exists=True,
                      digest=entry.image.rsplit("@", 1)[-1] if "@" in entry.image else None,
                      content_tag=_version(entry)) if entry.image else None
        outcome = Outcome(plan, server.url, image=image, dry_run=options.dry_run,
                          image_how=f"revision {entry.revision}'s, recorded {entry.at}")
        reporter.planned(outcome)
        _apply(outcome, server, state.flow_ids, reporter, started, concurrency=options.concurrency, lease=lease)
        if outcome.result is not None and outcome.result.ok:
            try:
                history.record(server, plan, image=entry.image, everything=entry.keys,
                               variables=entry.variables is not None, settings=settings,
                               rolled_back_to=entry.revision)
            except ServerError as error:
                reporter.note(f"warning: the rollback is not in the deploy history: {error}")
    reporter.finished(outcome)
    return _exit(outcome, options.detailed_exitcode)


def _version(entry: history.Entry) -> str | None:
    """The content tag the revision's deployments were versioned with, when they all say the same."""
    versions = {s.fields["version"] for s in entry.deployments}
    return versions.pop() if len(versions) == 1 else None


@dataclass
class _State:
    deployments: list
    flow_ids: dict[str, str]
    variables: list
    pools: dict[str, Pool]


def _read(server: Server, entry: history.Entry, owner: list[str]) -> _State:
    """What the server has of the record's deployments (and this environment's), in bulk, as deploy reads it."""
    raw = server.deployments([s.name for s in entry.deployments], owner)
    flows = server.flows([s.flow for s in entry.deployments], [str(r["flow_id"]) for r in raw])
    names = {str(f["id"]): f["name"] for f in flows}
    by_deployment = automation.by_deployment(server.automations(owner))
    states = [registered(r, names[str(r["flow_id"])], by_deployment.get(str(r["id"]), []), owner)
              for r in raw if str(r["flow_id"]) in names]
    variables = KINDS["variable"].read(server, [i.name for i in entry.variables], owner) \
        if entry.variables is not None else []
    pools = {name: Pool.from_server(p) for name, p in
             server.work_pools([s.fields["work_pool"] for s in entry.deployments]).items()}
    return _State(states, {f["name"]: str(f["id"]) for f in flows}, variables, pools)


def _refuse_conflicts(entry: history.Entry, state: _State, owner: list[str], url: str) -> None:
    """What the server would refuse, or what belongs to someone else, refused before any write."""
    problems = []
    where = f"revision {entry.revision}"
    keyed = [SimpleNamespace(key=key) for key in entry.keys]
    for _, have in planner.conflicts(DEPLOYMENTS, keyed, state.deployments, owner):
        project, env = planner.owner_of(have.fields["tags"])
        problems.append(Problem(where, 0, 0, f"deployment '{have.name}' of flow '{have.flow}' on {url} belongs to "
                                f"project '{project}', environment '{env}' now; a rollback does not take it",
                                "deployment-owner"))
    if entry.variables is not None:
        for want, have in planner.conflicts(KINDS["variable"], entry.variables, state.variables, owner):
            problems.append(Problem(where, 0, 0, f"variable '{want.name}' on {url} is not this environment's now; "
                                    "a rollback does not take it", "variable-owner"))
    for s in entry.deployments:
        pool = state.pools.get(s.fields["work_pool"])
        if pool is None:
            problems.append(Problem(where, 0, 0, f"deployment '{s.name}' ran in work pool '{s.fields['work_pool']}', "
                                    f"which {url} no longer has; create it, or deploy the manifest instead",
                                    "work-pool-missing"))
            continue
        for path, message in models.job_variable_problems(s.fields["job_variables"], pool.variables):
            problems.append(Problem(where, 0, 0, f"work pool '{pool.name}' rejects deployment '{s.name}''s job "
                                    f"variable '{'.'.join(map(str, path))}' now: {message}", "job-variables-schema"))
    if problems:
        raise Invalid(problems)
