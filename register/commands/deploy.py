"""plan and deploy, as their stages: load -> read the server -> check -> image -> plan -> apply -> report.

Everything that can be wrong is found before the first write: the manifest, the server's address and
credentials, the work pools and the job variables they accept. Then the image, then the plan; a dry run
stops there. Reads are in bulk (a handful of requests, however many deployments); writes are only
what changed. Each stage is a function here; what it shows goes to the reporter.
"""

from __future__ import annotations

import contextlib
import dataclasses
import re
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from types import SimpleNamespace

from register.engine import desired as desired_state
from register.commands import history
from register.engine import planner
from register.engine.applier import apply
from register.engine.kind import Item, Unavailable
from register.flows import Schemas
from register.image import Image, ImageError, inspect, prepare, secret_teller
from register.kinds import BY_NAME, DEPLOYMENTS, IN_ORDER, KINDS
from register.kinds import deployment as deployments_kind
from register.manifest import Manifest, Overrides, load_manifest
from register.manifest.checks import ProblemReport, check_parameters
from register.manifest import pools as pool_checks
from register.manifest import references
from register.manifest.resolve import Deployment, ownership_tags, render_name
from register.engine.planner import Plan
from register.problems import Detailed, Exit, Invalid, Problem
from register.report.formats import Outcome
from register.report.reporters import Reporter
from register.server import Server, ServerError, cloud, connection_from_environment
from register.server import releases
from register.commands import smoke as smoke_runs
from register.code import upload as code_upload
from register.settings import CONCURRENCY, Settings


@dataclass
class DeployOptions:
    manifest: str
    environment: str
    overrides: Overrides
    dry_run: bool = False
    prune: bool = False
    build: str = "auto"  # auto | always | never
    push: bool = True
    image_tag: str | None = None
    # An image made elsewhere, used as it is instead of asking the image stage (the demo, which needs no
    # Docker or registry, computes its reference offline); `image_note` says so in the report.
    image: Image | None = None
    image_note: str | None = None
    # Register under this name template instead of the manifest's (the demo, where all environments
    # share one server).
    name_template: str | None = None
    preview: str | None = None  # register as this preview (e.g. pr-123): see `load`
    preview_active: bool = False  # a preview's schedules and triggers on, as in the environment
    comment: bool = False  # the plan as a pull request comment
    detailed_exitcode: bool = False  # a plan exits 2 when it would change something
    concurrency: int = CONCURRENCY
    lock_wait: float = 600
    smoke: list[str] | None = None  # smoke-run these deployments (manifest names), not the manifest's list
    smoke_timeout: float | None = None  # seconds, for a smoke run that does not give its own


@dataclass
class Loaded:
    """The manifest and this environment's deployments (`everything`: also those --only left out)."""

    manifest: Manifest
    deployments: list[Deployment]
    everything: list[Deployment]
    owner: list[str]
    # The flows' parameter schemas, built from the flow source. The checks that need them wait for the
    # server's read (see check).
    schemas: Schemas = field(default_factory=Schemas)
    # The manifest has mistakes (all in manifest.problems): nothing is registered, but `deployments` (those
    # that can be) are still checked against the server, so one run tells every mistake.
    broken: bool = False
    # The other kinds' desired things, by kind name, for the kinds the manifest manages (it has their section)
    others: dict[str, list[Item]] = field(default_factory=dict)


@dataclass
class ServerState:
    """What the server has that the plan needs, read in bulk."""

    pools: dict[str, desired_state.Pool]
    registered: list  # plan.State of each deployment of interest
    flow_ids: dict[str, str]  # flow name -> id
    others: dict[str, list[Item]] = field(default_factory=dict)  # the other kinds' registered things, by kind
    unavailable: dict[str, str] = field(default_factory=dict)  # kinds this server has none of: why, by kind


def lease_scope(environment: str, preview: str | None) -> str:
    """What one deploy lease covers: an environment, or one preview of it (previews deploy side by side)."""
    return f"{environment}.{preview}" if preview else environment


PREVIEW_NAME = re.compile(r"[a-z0-9][a-z0-9-]{0,39}")


def _preview_problems(name: str, label: str) -> list[Problem]:
    """A preview's name goes into deployment names, tags and the lease: a short slug, e.g. pr-123."""
    if PREVIEW_NAME.fullmatch(name):
        return []
    return [Problem(label, 0, 0, f"'{name}' is not a preview name: up to 40 lowercase letters, digits and '-', "
                                 "starting with a letter or digit, e.g. pr-123", "preview")]


def _names_known(manifest: Manifest, deployments: list[Deployment]) -> bool:
    """Whether a manifest with mistakes still gives its deployments their names and owners: the server is
    not asked about names that a mistake made up (it would answer with other projects' deployments). A name
    is made up when the schema dropped the project or a name_template, or an error sits where a deployment's
    name is made (its name_template, or the deployment when no template applies)."""
    if any(path == ("project",) or path[-1:] == ("name_template",) for path in manifest.dropped):
        return False
    made = {(p.file, p.line, p.col) for p in (manifest.source.problem(d.origin("name_template"), "", "")
                                              for d in deployments)}
    return not any(p.severity == "error" and (p.file, p.line, p.col) in made for p in manifest.problems)


SLUG = "[a-z0-9][a-z0-9-]*"  # a project or environment name as a manifest can write it


def move_hint(old_project: str | None, old_env: str | None, project: str, env: str) -> str:
    """What a deploy refusing another name's deployment adds: if it is this manifest's under an old name
    (the project or environment renamed), the command that moves it here."""
    if not all(re.fullmatch(SLUG, name or "x") for name in (old_project, old_env)):
        return ""  # server-held text: only names a manifest could have go into a command to copy
    flags = (f" --from-project {old_project}" if old_project and old_project != project else "") + \
        (f" --from-environment {old_env}" if old_env and old_env != env else "")
    if not flags:
        return ""
    return (f". If the project or environment was renamed, move its deployments here first, keeping their ids and "
            f"runs: flow-register move -e {env}{flags}")


def preview_owner(project: str, environment: str, preview: str) -> list[str]:
    """A preview's ownership: an environment of its own, so that neither the environment's prune nor another
    preview's destroy ever touches it."""
    return ownership_tags(project, f"{environment}/{preview}") + [f"preview:{preview}"]


def load_valid(path: str, environment: str, settings: Settings) -> Manifest:
    """The manifest of a command that acts on what is registered (rollback, move, destroy): a mistake in it
    refuses the command, with every mistake told. The flows' parameters are not checked: such a command
    registers nothing from the flow source."""
    manifest = load_manifest(path, environment, environ=settings.environ, parameters=False)
    if manifest.errors():
        raise Invalid(manifest.problems)
    return manifest


def load(options: DeployOptions, settings: Settings, reporter: Reporter) -> Loaded:
    env = options.environment
    manifest = load_manifest(options.manifest, env, options.overrides, environ=settings.environ, parameters=False)
    preview_problems = _preview_problems(options.preview, options.overrides.label("preview")) \
        if options.preview else []
    broken = bool(manifest.errors() or preview_problems)
    if broken:
        # The same report as `validate` (the parameter checks too, with every schema built), and what can
        # still be checked against the server.
        manifest = load_manifest(options.manifest, env, options.overrides, environ=settings.environ)
        manifest.problems += preview_problems
        if manifest.usable is None:
            raise Invalid(manifest.problems)
        deployments = everything = manifest.checkable(env, options.overrides)
        if not _names_known(manifest, deployments):
            raise Invalid(manifest.problems)
    else:
        reporter.problems(manifest.problems)  # warnings
        deployments = manifest.deployments(env, options.overrides)
        everything = deployments if options.overrides.only is None else \
            manifest.deployments(env, dataclasses.replace(options.overrides, only=None))
    owner = ownership_tags(manifest.project, env)
    if options.name_template:
        for d in {id(d): d for d in deployments + everything}.values():
            d.name = render_name(options.name_template, d.manifest_name, env, manifest.project)
    if options.preview:
        # Next to the environment's own deployments, in its pools: suffixed names, its own ownership tags,
        # and (unless asked) nothing that starts runs by itself.
        preview = preview_owner(manifest.project, env, options.preview)
        for d in {id(d): d for d in deployments + everything}.values():
            d.name = f"{d.name}-{options.preview}"
            d.tags = [t for t in d.tags if t not in owner] + preview
            if not options.preview_active:
                d.schedules = [{**s, "active": False} for s in d.schedules]
                d.triggers = []
                d.slas = None  # a frequency or lateness SLA would report violations of runs never meant to start
        owner = preview
    # The other kinds the manifest has a section for (the deployments' desired states wait for the image and
    # the pools: see build_plan); a preview's deployments use the environment's.
    others = {} if options.preview else \
        {kind.name: found for kind in IN_ORDER if (found := kind.desired(manifest, env)) is not None}
    return Loaded(manifest, deployments, everything, owner, broken=broken, others=others)


def read_server(server: Server, loaded: Loaded) -> ServerState:
    """Each kind's things read in bulk, and the work pools the deployments name, all at once: against a
    hosted server each read costs a round trip."""
    with ThreadPoolExecutor(2 + len(loaded.others), thread_name_prefix="read") as pool:
        reading_others = {name: pool.submit(KINDS[name].read, server, [i.name for i in items], loaded.owner)
                          for name, items in loaded.others.items()}
        reading_pools = pool.submit(server.work_pools, [d.work_pool for d in loaded.deployments])
        reading_deployments = pool.submit(deployments_kind.read_with_flows, server, loaded.deployments, loaded.owner)
        pools = {name: desired_state.Pool.from_server(raw) for name, raw in reading_pools.result().items()}
        states, flow_ids = reading_deployments.result()
        others, unavailable = {}, {}
        for name, reading in reading_others.items():
            try:
                others[name] = reading.result()
            except Unavailable as error:  # told at the manifest's section by `check`, with the other mistakes
                unavailable[name] = str(error)
    return ServerState(pools, states, flow_ids, others, unavailable)


def check(loaded: Loaded, state: ServerState, server: Server, environment: str) -> list[Problem]:
    """The plan-time checks (parameters, pools, job variables, names taken elsewhere); the problems not seen
    before."""
    manifest = loaded.manifest
    report = ProblemReport(manifest)
    if not loaded.broken:  # a broken manifest's parameters were checked with its other mistakes (see load)
        # Every schema is built from the flow source, never taken from the server: a server user can rewrite a
        # registered schema together with the label that says what it was made from, and a schema taken from
        # there would then be compared with itself, its edit hidden from the plan.
        for problem in check_parameters(manifest, environment, loaded.deployments, loaded.schemas):
            report.problems.setdefault((problem.file, problem.line, problem.col, problem.message), problem)
    # Found before the first write, not by the server half way; a number validate's range checks already
    # refused at that line is one problem, not two.
    refused = {(p.file, p.line) for p in [*manifest.problems, *report.problems.values()] if p.severity == "error"}
    for deployment in loaded.deployments:
        for path, message in deployments_kind.unstorable(deployment):
            problem = manifest.source.problem(deployment.origin(*path), "", "server-range")
            if (problem.file, problem.line) not in refused:
                report.at(deployment.origin(*path), f"deployment '{deployment.manifest_name}': {message}",
                          "server-range")
    for deployment in loaded.deployments:
        for path, message in releases.unkept(deployment, server.release):
            report.at(deployment.origin(*path), f"deployment '{deployment.manifest_name}': {message}", "server-release")
    if cloud.scope(server.connection.url) is None:
        cloud_only(report, loaded.deployments, server.url)
    spec = manifest.image(environment)
    pool_checks.check(report, environment, loaded.deployments, state.pools, server=server.url,
                      pool_names=server.work_pool_names, image=f"{spec['repository']}:latest" if spec else None)
    declared = {i.name for i in loaded.others.get("variable", [])}  # written before the deployments naming them
    blocks = {tuple(i.name.split("/", 1)) for i in loaded.others.get("block", [])}  # the same, as (type, name)
    references.check(report, loaded.deployments, server=server.url,
                     existing_blocks=lambda wanted: (wanted & blocks) |
                     (server.existing_blocks(wanted - blocks) if wanted - blocks else set()),
                     existing_variables=lambda names: (names & declared) |
                     (server.existing_variables(names - declared) if names - declared else set()))
    for name, why in state.unavailable.items():
        report.at((KINDS[name].plural,), why, f"{name}-unavailable", key=True)
    for name, items in loaded.others.items():
        kind = KINDS[name]
        for want, have in planner.conflicts(kind, items, state.others.get(name, []), loaded.owner):
            project, env = planner.owner_of(have.tags)
            whose = f"belongs to project '{project}', environment '{env}'" if project else \
                "was made outside flow-register (it lacks the tag managed-by:flow-register)"
            report.at((kind.plural, want.index, "name"),
                      f"{kind.name} '{want.name}' on {server.url} {whose}; flow-register does not overwrite it. Give "
                      f"this one another name, or delete that one on the server to let this manifest own it"
                      + (move_hint(project, env, loaded.manifest.project, environment) if project else ""),
                      f"{kind.name}-owner")
    keyed = [SimpleNamespace(key=(d.flow, d.name), index=d.index) for d in loaded.deployments]
    for want, have in planner.conflicts(DEPLOYMENTS, keyed, state.registered, loaded.owner):
        project, env = planner.owner_of(have.fields["tags"])
        report.at(("deployments", want.index, "name"),
                  f"deployment '{have.name}' of flow '{have.flow}' on {server.url} belongs to project '{project}', "
                  f"environment '{env}'; registering it here would take it away from there. Give this environment "
                  "names of its own (name_template: '{name}-{environment}') or a Prefect server of its own"
                  + move_hint(project, env, loaded.manifest.project, environment), "deployment-owner")
    problems = sorted(report.problems.values())
    if any(p.severity == "error" for p in problems):
        raise Invalid(problems)
    return [p for p in problems if p not in manifest.problems]


def cloud_only(report: ProblemReport, deployments: list[Deployment], url: str) -> None:
    """What only Prefect Cloud takes, refused before any write when the server is not a Cloud workspace
    (its API URL names no /accounts/<id>/workspaces/<id>): SLAs (the open-source server has no SLA API;
    Prefect's own `prefect deploy` refuses them there too) and metric triggers (its automations take event,
    compound and sequence triggers only, and answer 422)."""
    elsewhere = (f"the server at {url} is not a Prefect Cloud workspace (its URL names no "
                 "/accounts/<id>/workspaces/<id>)")
    for d in deployments:
        if d.slas is not None:
            report.at(d.origin("sla"), f"deployment '{d.manifest_name}' sets SLAs, which only Prefect Cloud has; "
                                       f"{elsewhere}: remove 'sla' for this environment (e.g. sla: null in "
                                       "its environments entry)", "sla-cloud-only", key=True)
        for path in _metric_triggers(d.triggers, ("triggers",)):
            report.at(d.origin(*path, "type"), f"deployment '{d.manifest_name}' has a metric trigger, which only "
                                               f"Prefect Cloud runs; {elsewhere}: use an event, compound or sequence "
                                               "trigger here", "trigger-cloud-only")


def _metric_triggers(triggers, at: tuple):
    for i, trigger in enumerate(triggers if isinstance(triggers, list) else []):
        if isinstance(trigger, dict):
            if trigger.get("type") == "metric":
                yield at + (i,)
            yield from _metric_triggers(trigger.get("triggers"), at + (i, "triggers"))


def build_plan(options: DeployOptions, loaded: Loaded, state: ServerState, image: Image | None,
               settings: Settings, uploads: list | None = None) -> Plan:
    wanted = desired_state.for_environment(loaded.manifest, options.environment, loaded.deployments, image=image,
                                           pool=lambda d: state.pools[d.work_pool], owner=loaded.owner,
                                           github=settings.github, schemas=loaded.schemas, uploads=uploads,
                                           environ=settings.environ)
    desired = {**loaded.others, DEPLOYMENTS.name: wanted}
    registered = {**state.others, DEPLOYMENTS.name: state.registered}
    keep = {DEPLOYMENTS.name: {(d.flow, d.name) for d in loaded.everything}}
    planned = [(kind, *planner.plan_kind(kind, desired[kind.name], registered.get(kind.name, []), owner=loaded.owner,
                                         prune=options.prune, keep=keep.get(kind.name)))
               for kind in IN_ORDER if kind.name in desired]
    return planner.make_plan(loaded.manifest.project, options.environment, planned, prune=options.prune,
                             owner=loaded.owner)


def check_image(loaded: Loaded, plan: Plan, image: Image | None, environment: str, reporter: Reporter,
                settings: Settings) -> None:
    """Every deployment about to be written finds its flow file in the image it runs, where its pull step
    starts the run: read from the image itself, never run (register/image/inspect.py). Before any write."""
    by_key = {(d.flow, d.name): d for d in loaded.deployments}
    wanted = [w for a in plan.of("deployment") if inspect.needs_check(a) and (a.flow, a.name) in by_key
              and (w := inspect.expected(by_key[(a.flow, a.name)], a.desired.fields))]
    if not wanted:
        return
    spec = loaded.manifest.image(environment) or {}
    with reporter.phase("Check the image against the deployments"):
        problems, notes = inspect.check(loaded.manifest, environment, wanted,
                                        inspect.reader(image, spec.get("platform"), settings=settings,
                                                       secret=secret_teller(reporter)))
    for note in notes:
        reporter.note(note)
    if any(p.severity == "error" for p in problems):
        raise Invalid(problems)
    reporter.problems(problems)


def recorded_images(state: ServerState, owner: list[str]) -> list[str]:
    """The images this project's deployments in this environment (or preview) run, as the server holds them:
    the only registry images the image stage reuses, since writing them took the server's key and not only
    push access to the registry."""
    return [have.fields["job_variables"].get("image") for have in state.registered
            if have.owned and set(owner) <= set(have.fields["tags"])
            and isinstance(have.fields["job_variables"].get("image"), str)]


@dataclass
class ReadFailure:
    """How the reads before the first write ended, when they did not: see `_reads`."""

    problems: list[Problem] = field(default_factory=list)  # a brief read: the server's view of the mistakes
    exit: int | None = None  # the server failed (it kept failing, or the deploy lease is taken): the exit code


@contextlib.contextmanager
def _reads(connection, reporter: Reporter, loaded: Loaded | None = None, environment: str | None = None, *,
           brief: bool = False):
    """Every read before the first write (the deploy's, the destroy's, a rollback's, a move's, and the brief
    one that tells a broken manifest's server-side mistakes) runs under this, and what its failure means is
    decided here alone:

    - the server's answers show mistakes (Invalid): a brief read adds them to the manifest's; otherwise
      they are the run's (exit 1);
    - the server cannot be read (ServerError): a brief read leaves the manifest's own mistakes. Otherwise a
      mistake in the manifest is told first (the checks that waited for the server, run offline); then a
      refusal of the address or the credentials is a problem with the inputs (exit 1), and a server that
      kept failing, or a deploy lease held elsewhere, has its own exit code;
    - the checks crash on a manifest the schema cut parts out of: a brief read leaves the manifest's own
      mistakes; on a schema-valid manifest a crash is a bug, and raised.
    """
    failure = ReadFailure()
    try:
        yield failure
    except Invalid as found:
        if not brief:
            raise
        failure.problems += found.problems
    except ServerError as error:
        if brief:
            return
        if loaded is not None:
            problems = check_parameters(loaded.manifest, environment, loaded.deployments, loaded.schemas)
            if any(p.severity == "error" for p in problems):
                raise Invalid(problems) from None
        if not (error.transient or error.status == 423):
            raise Invalid([_server_problem(error, connection)]) from None
        message = str(error) if error.status == 423 else \
            f"the Prefect server failed: {error}; nothing was written, run again"  # 423: the deploy lease is taken
        if error.rule:  # a failure of its own kind (ServerError.rule): the lease, the request budget
            message += f" [{error.rule}]"
        reporter.failed(message, "server failed")
        failure.exit = Exit.SERVER_FAILED
    except (KeyError, TypeError, AttributeError, ValueError):
        if not (brief and loaded is not None and loaded.manifest.dropped):
            raise


def _broken(loaded: Loaded, settings: Settings, reporter: Reporter, environment: str) -> Invalid:
    """A manifest with mistakes is not registered; what the server would refuse in the rest of it (pools, job
    variables, names taken) is told with them, so one run shows every mistake. Read only, without the lease,
    and not waited for: a server that cannot tell now leaves the manifest's own mistakes."""
    problems = list(loaded.manifest.problems)
    if loaded.deployments:
        with _reads(None, reporter, loaded, environment, brief=True) as failed:
            connection = connection_from_environment(settings.environ)
            reporter.secrets(connection.secrets())
            brief = dataclasses.replace(connection, timeout=5.0, retry_seconds=5.0, first_contact_seconds=0.0)
            with Server(brief) as server:
                problems += check(loaded, read_server(server, loaded), server, environment)
        problems += failed.problems
    return Invalid(sorted(set(problems)))


def _server_problem(error: ServerError, connection) -> Problem:
    if error.unreachable:
        return Problem("PREFECT_API_URL", 0, 0, f"{error}; check PREFECT_API_URL and that the server is running",
                       "server-unreachable")
    if error.status in (401, 403):
        name = "PREFECT_API_KEY" if connection.api_key else \
            "PREFECT_API_AUTH_STRING" if connection.auth_string else "PREFECT_API_URL"
        return Problem(name, 0, 0, str(error), "server-auth")
    return Problem("PREFECT_API_URL", 0, 0, str(error), "server")


def _apply(outcome: Outcome, server: Server, flow_ids: dict[str, str], reporter: Reporter, started: float, *,
           concurrency: int, lease) -> None:
    """Write the plan unless it is a dry run or changes nothing; count the requests and the time."""
    if not outcome.dry_run and outcome.plan.changes_anything:
        with reporter.phase("Apply"):
            outcome.result = apply(outcome.plan, server, flow_ids, BY_NAME, reporter.step,
                                   concurrency=concurrency, lease=lease)
            if outcome.result.server_failed:
                outcome.result.error = f"the Prefect server failed: {outcome.result.error}"
            if outcome.result.rule:
                outcome.result.error += f" [{outcome.result.rule}]"
            if server.drops_automation_tags:
                reporter.note(f"the server at {server.url} did not keep the tags of the automations written: "
                              "flow-register finds its triggers by their names there instead")
    outcome.reads, outcome.writes, outcome.retries = server.reads, server.writes, server.retries
    outcome.busy_window = server.narrowest_window
    outcome.budget, outcome.refused, outcome.lowered_to = server.connection.budget, server.budget.refused, \
        server.budget.lowest
    outcome.seconds = time.monotonic() - started


def _exit(outcome: Outcome, detailed: bool = False) -> int:
    """How a command that plans and applies ends; with --detailed-exitcode a plan that changes something
    (applied or not) ends with Detailed.CHANGES."""
    if outcome.result is not None and not outcome.result.ok:
        return Exit.SERVER_FAILED if outcome.result.server_failed else Exit.APPLY_FAILED
    if detailed and outcome.plan.changes_anything:
        return Detailed.CHANGES
    return Exit.OK


def run(options: DeployOptions, settings: Settings, reporter: Reporter) -> int:
    started = time.monotonic()
    loaded = load(options, settings, reporter)
    if loaded.broken:
        raise _broken(loaded, settings, reporter, options.environment)
    smokes = smoke_runs.wanted(loaded.manifest, options.environment, options.smoke,
                               [d.manifest_name for d in loaded.everything],
                               label=options.overrides.labels.get("smoke", "--smoke"), timeout=options.smoke_timeout)
    connection = connection_from_environment(settings.environ)
    reporter.secrets(connection.secrets())
    with Server(connection) as server, contextlib.ExitStack() as held:
        with reporter.phase(f"Read {server.url}"), _reads(connection, reporter, loaded,
                                                           options.environment) as failed:
            # One deploy at a time per project and environment; the plan is made after it is held.
            lease = None if options.dry_run else held.enter_context(server.lease(
                loaded.manifest.project, lease_scope(options.environment, options.preview), wait=options.lock_wait,
                say=reporter.note))
            state = read_server(server, loaded)
            reporter.problems(check(loaded, state, server, options.environment))  # new warnings
        if failed.exit is not None:
            return failed.exit

        image = options.image
        if image is None and loaded.manifest.image(options.environment):
            try:
                image = prepare(loaded.manifest, options.environment, settings=settings, events=reporter,
                                build=options.build, push=options.push,
                                image_tag=options.image_tag, dry_run=options.dry_run,
                                recorded=recorded_images(state, loaded.owner),
                                pools={d.work_pool for d in loaded.deployments})
            except ImageError as error:
                reporter.failed(f"{connection.redact(str(error))}; no deployment was written", "image")
                return Exit.IMAGE_FAILED

        uploads = code_upload.uploads_for(loaded.manifest, loaded.deployments)
        if uploads:
            try:
                with reporter.phase("Upload the code"):
                    code_upload.prepare(uploads, dry_run=options.dry_run, settings=settings)
            except code_upload.UploadError as error:
                reporter.failed(f"{connection.redact(str(error))}; no deployment was written", "code upload")
                return Exit.IMAGE_FAILED

        plan = build_plan(options, loaded, state, image, settings, uploads)
        if options.image is None:  # an image made elsewhere (the demo's, never built) is not there to read
            check_image(loaded, plan, image, options.environment, reporter, settings)
        outcome = Outcome(plan, server.url, image=image, dry_run=options.dry_run, image_how=options.image_note,
                          uploads=uploads)
        reporter.planned(outcome)
        _apply(outcome, server, state.flow_ids, reporter, started, concurrency=options.concurrency, lease=lease)
        _record(outcome, server, loaded, options, settings, reporter)
        if smokes and options.dry_run:
            reporter.note(f"dry run: no smoke run ({', '.join(s.deployment for s in smokes)} would run after applying)")
        elif smokes and (outcome.result is None or outcome.result.ok):
            held.close()  # the deploy lease guards writes; the runs may take minutes and write nothing
            try:
                outcome.smoke = _smoke(smokes, outcome, loaded, server, settings, reporter)
            except ServerError as error:
                reporter.finished(outcome)
                reporter.failed(f"the Prefect server failed during the smoke runs: {connection.redact(str(error))}",
                                "smoke run")
                return Exit.SERVER_FAILED

    reporter.finished(outcome)
    if outcome.smoke and not all(run.ok for run in outcome.smoke) and _exit(outcome) == Exit.OK:
        return Exit.SMOKE_FAILED
    return _exit(outcome, options.detailed_exitcode)


def _record(outcome: Outcome, server: Server, loaded: Loaded, options: DeployOptions, settings: Settings,
            reporter: Reporter) -> None:
    """Keep what this deploy registered in the deploy history, for `rollback` (register/commands/history.py): after
    writes that all succeeded, under the lease. A history that cannot be written is told, not a failure."""
    if outcome.result is None or not outcome.result.ok or options.preview:
        return
    try:
        revision = history.record(server, outcome.plan, image=outcome.image.reference if outcome.image else None,
                                  everything={(d.flow, d.name) for d in loaded.everything},
                                  variables="variable" in loaded.others, settings=settings)
    except ServerError as error:
        reporter.note(f"warning: the deploy is not in the deploy history, so it cannot be rolled back to: {error}")
        return
    if revision is None:
        reporter.note("warning: the deploy is too large for the deploy history, so it cannot be rolled back to")


def _smoke(smokes: list, outcome: Outcome, loaded: Loaded, server: Server, settings: Settings,
           reporter: Reporter) -> list:
    """Run each smoke deployment once, after applying, and wait for the runs to end."""
    registered = {d.manifest_name: d for d in loaded.deployments}
    actions = {(a.flow, a.name): a for a in outcome.plan.of("deployment")}
    runs = []
    for smoke in smokes:
        d = registered.get(smoke.deployment)
        if d is None:  # left out by --only: not this run's to try
            reporter.note(f"no smoke run of {smoke.deployment}: it is not among the deployments registered now")
            continue
        action = actions.get((d.flow, d.name))
        deployment_id = outcome.deployment_id(action) if action else None
        if deployment_id:
            runs.append((smoke, deployment_id, d.name, d.flow))
    with reporter.phase("Smoke runs"):
        return smoke_runs.run(server, runs, ui=smoke_runs.ui_url(server.url, settings.environ), say=reporter.note)


def destroy(manifest_path: str, environment: str, preview: str, settings: Settings, reporter: Reporter, *,
            dry_run: bool = False, lock_wait: float = 600, concurrency: int = CONCURRENCY) -> int:
    """Delete exactly the preview's deployments and their triggers (a pull request's `closed` event)."""
    started = time.monotonic()
    if wrong := _preview_problems(preview, "--preview"):
        raise Invalid(wrong)
    manifest = load_valid(manifest_path, environment, settings)
    owner = preview_owner(manifest.project, environment, preview)
    connection = connection_from_environment(settings.environ)
    reporter.secrets(connection.secrets())
    with Server(connection) as server, contextlib.ExitStack() as held:
        with reporter.phase(f"Read {server.url}"), _reads(connection, reporter) as failed:
            lease = None if dry_run else held.enter_context(server.lease(
                manifest.project, lease_scope(environment, preview), wait=lock_wait, say=reporter.note))
            raw = server.deployments([], owner)
            flows = server.flows([], [str(r["flow_id"]) for r in raw])
        if failed.exit is not None:
            return failed.exit
        names = {str(f["id"]): f["name"] for f in flows}
        have = [deployments_kind.registered(r, names[str(r["flow_id"])], [], owner) for r in raw
                if str(r["flow_id"]) in names]
        plan = deployments_kind.make_plan(manifest.project, f"{environment}/{preview}", [], have,
                                          manifest_keys=set(), prune=True, owner=owner)
        outcome = Outcome(plan, server.url, dry_run=dry_run)
        reporter.planned(outcome)
        _apply(outcome, server, {}, reporter, started, concurrency=concurrency, lease=lease)
    reporter.finished(outcome)
    return _exit(outcome)
