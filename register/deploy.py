"""plan and deploy: manifest -> server reads and pool checks -> image -> plan -> apply -> report.

Everything that can be wrong is found before the first write: the manifest, the server's address and
credentials, the work pools and the job variables they accept. Then the image, then the plan; a dry run
stops there. Reads are in bulk (a handful of requests, however many deployments); writes are only
what changed.
"""

from __future__ import annotations

import dataclasses
import contextlib
import json
import os
import sys
import time
from dataclasses import dataclass

from register.manifest import Overrides
from register.problems import Exit, Invalid, Problem


@dataclass
class DeployOptions:
    manifest: str
    environment: str
    overrides: Overrides
    dry_run: bool = False
    prune: bool = False
    output: str = "text"  # text | json
    build: str = "auto"  # auto | always | never
    push: bool = True
    image_tag: str | None = None
    # An image made elsewhere, used as it is instead of asking the image stage (the demo, which needs no
    # Docker or registry, computes its reference offline); `image_note` says so in the report.
    image: object = None
    image_note: str | None = None
    # Register under this name template instead of the manifest's (the demo, where all environments
    # share one server).
    name_template: str | None = None
    concurrency: int = 8  # requests in flight at once while applying
    lock_wait: float = 600  # seconds to wait for another deploy of this project and environment


def _server_problem(error, connection) -> Problem:
    if error.unreachable:
        return Problem("PREFECT_API_URL", 0, 0, f"{error}; check PREFECT_API_URL and that the server is running",
                       "server-unreachable")
    if error.status in (401, 403):
        name = "PREFECT_API_KEY" if connection.api_key else \
            "PREFECT_API_AUTH_STRING" if connection.auth_string else "PREFECT_API_URL"
        return Problem(name, 0, 0, str(error), "server-auth")
    return Problem("PREFECT_API_URL", 0, 0, str(error), "server")


def _server_failed(error) -> int:
    """The server kept failing before the first write (not the manifest's fault): its own exit code."""
    from register.report import github

    message = str(error) if error.status == 423 else \
        f"the Prefect server failed: {error}; nothing was written, run again"  # 423: the deploy lease is taken
    print(f"flow-register: error: {message}", file=sys.stderr, flush=True)
    if github.active():
        print(github.error(message, "flow-register: server failed"), flush=True)
    return Exit.SERVER_FAILED


def _conflict(manifest, deployments, have, server: str) -> Problem:
    from register.plan import owner_of

    project, environment = owner_of(have)
    index = next(d.index for d in deployments if (d.flow, d.name) == have.key)
    return manifest.source.problem(
        ("deployments", index, "name"),
        f"deployment '{have.name}' of flow '{have.flow}' on {server} belongs to project '{project}', environment "
        f"'{environment}'; registering it here would take it away from there. Give this environment names of "
        "its own (name_template: '{name}-{environment}') or a Prefect server of its own", "deployment-owner")


def run(options: DeployOptions) -> int:
    from register.apply import apply
    from register.flows import parameter_schema
    from register.manifest import load_manifest
    import os

    from register import code
    from register.manifest.resolve import ownership_tags, render_name
    from register.plan import automation_deployments, conflicts, desired, make_plan, registered
    from register.report import github
    from register.report import plan as report
    from register.report.problems import print_problems
    from register.server import Server, ServerError, connection_from_environment
    from register.server import pools as pool_checks

    started = time.monotonic()
    env = options.environment
    manifest = load_manifest(options.manifest, env, options.overrides, environ=os.environ)
    if manifest.errors():
        raise Invalid(manifest.problems)
    print_problems(manifest.problems)  # warnings
    deployments = manifest.deployments(env, options.overrides)
    everything = deployments if options.overrides.only is None else \
        manifest.deployments(env, dataclasses.replace(options.overrides, only=None))
    if options.name_template:
        for d in {id(d): d for d in deployments + everything}.values():
            d.name = render_name(options.name_template, d.manifest_name, env, manifest.project)
    owner = ownership_tags(manifest.project, env)

    connection = connection_from_environment(os.environ)
    for secret in connection.secrets():
        github.mask(secret)
    with Server(connection) as server, contextlib.ExitStack() as held:
        with github.group(f"Read {server.url}"):
            try:
                # one deploy at a time per project and environment; the plan is made after it is held
                lease = None if options.dry_run else held.enter_context(server.lease(
                    manifest.project, env, wait=options.lock_wait,
                    say=lambda text: print(text, file=sys.stderr, flush=True)))
                pools = server.work_pools([d.work_pool for d in deployments])
                registered_raw = server.deployments([d.name for d in deployments], owner)
                flows = server.flows([d.flow for d in deployments], [str(r["flow_id"]) for r in registered_raw])
                automations = server.automations(owner)
                image_spec = manifest.image(env)
                checked = pool_checks.check(
                    manifest, env, deployments, pools, server=server.url, pool_names=server.work_pool_names,
                    image=f"{image_spec['repository']}:latest" if image_spec else None)
            except ServerError as error:
                if error.transient:
                    return _server_failed(error)
                raise Invalid([_server_problem(error, connection)]) from None
        flow_names = {str(f["id"]): f["name"] for f in flows}
        by_deployment: dict[str, list[dict]] = {}
        for automation in automations:
            for deployment_id in automation_deployments(automation):
                by_deployment.setdefault(deployment_id, []).append(automation)
        registered_states = [registered(r, flow_names[str(r["flow_id"])], by_deployment.get(str(r["id"]), []), owner)
                             for r in registered_raw if str(r["flow_id"]) in flow_names]
        taken = conflicts([(d.flow, d.name) for d in deployments], registered_states)
        problems = checked.problems + [_conflict(manifest, deployments, have, server.url) for have in taken]
        if any(p.severity == "error" for p in problems):
            raise Invalid(problems)
        print_problems([p for p in problems if p not in manifest.problems])  # new warnings

        image = options.image
        if image_spec and image is None:
            from register.image import ImageError, prepare

            try:
                image = prepare(manifest, env, build=options.build, push=options.push, image_tag=options.image_tag,
                                dry_run=options.dry_run)
            except ImageError as error:
                message = f"{connection.redact(str(error))}; no deployment was written"
                print(f"flow-register: error: {message}", file=sys.stderr, flush=True)
                if github.active():
                    print(github.error(message, "flow-register: image"), flush=True)
                return Exit.IMAGE_FAILED

        desired_states = []
        at = code.checkout(manifest.root, os.environ.get("GITHUB_SHA")) if any(d.code for d in deployments) \
            else code.Checkout()
        for d in deployments:
            job_variables = checked.job_variables[d.name]
            if image is not None and image.reference and checked.takes_image[d.name]:
                job_variables = {"image": image.reference, **job_variables}  # a job_variables.image wins
            desired_states.append(desired(
                d, job_variables=job_variables, parameter_schema=parameter_schema(manifest.root, d.entrypoint),
                pull_steps=code.pull_steps(manifest, d, image_spec, at),
                version=d.version or (image.content_tag if image is not None else None), owner_tags=owner))
        plan = make_plan(manifest.project, env, desired_states, registered_states,
                         manifest_keys={(d.flow, d.name) for d in everything}, prune=options.prune)

        outcome = report.Outcome(plan, server.url, image=image, dry_run=options.dry_run, image_how=options.image_note)
        text = options.output == "text"
        if text:
            print(report.table(outcome), flush=True)
        if not options.dry_run and plan.changes_anything:
            if text:
                print(flush=True)
            with github.group("Apply"):
                progress = (lambda step: print(report.step_line(step), flush=True)) if text else None
                flow_ids = {f["name"]: str(f["id"]) for f in flows}
                outcome.result = apply(plan, server, flow_ids, progress, concurrency=options.concurrency,
                                       lease=lease)
                if outcome.result.server_failed:
                    outcome.result.error = f"the Prefect server failed: {outcome.result.error}"
        outcome.reads, outcome.writes = server.reads, server.writes
        outcome.seconds = time.monotonic() - started

    if text:
        print("\n" + report.summary_line(outcome), flush=True)
    else:
        print(json.dumps(report.as_json(outcome), indent=2), flush=True)
    report.write_github(outcome)
    if outcome.result is not None and not outcome.result.ok:
        print(report.failure_text(outcome), file=sys.stderr, flush=True)
        if github.active():
            print(github.error(outcome.result.error, "flow-register: apply failed"), flush=True)
        return Exit.SERVER_FAILED if outcome.result.server_failed else Exit.APPLY_FAILED
    return Exit.OK
