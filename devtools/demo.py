"""The demo: the example registered into a local Prefect server, with nothing to install.

    uv run python -m devtools.demo [--port 4300] [--stop]      (from the repository's top)

It starts `prefect server start` (SQLite under `.flow-register/demo/` of this checkout, not ~/.prefect),
creates the example's work pools from the server's bundled worker templates (offline), and deploys
`examples/` into every environment, printing each plan. A second run finds the server running and
everything unchanged, and writes nothing.
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path

from register.problems import Exit
from register.settings import Settings

ROOT = Path(__file__).resolve().parents[1]
EXAMPLES = ROOT / "examples"
# FLOW_REGISTER_DEMO_HOME lets the tests run a demo of their own beside the user's.
HOME = Path(os.environ.get("FLOW_REGISTER_DEMO_HOME") or ROOT / ".flow-register" / "demo")
COMMAND = "python -m devtools.demo"


def _say(text: str) -> None:
    print(text, file=sys.stderr, flush=True)


def _relative(path: Path) -> str:
    try:
        return str(path.relative_to(Path.cwd()))
    except ValueError:
        return str(path)


def _pools(manifest) -> dict[str, str]:
    """Every work pool the example registers into, in any environment, with its declared type."""
    pools: dict[str, str] = {}
    for environment in manifest.environments:
        for deployment in manifest.deployments(environment):
            pools.setdefault(deployment.work_pool, deployment.work_pool_type)
    return pools


def _create_pools(server, wanted: dict[str, str]) -> list[str]:
    """Create the pools the server lacks, each from the bundled default template of its type."""
    from register.prefect.resources import base_type

    have = server.work_pools(list(wanted))
    missing = {name: kind for name, kind in wanted.items() if name not in have}
    if not missing:
        return []
    templates = {kind: worker.get("default_base_job_configuration") or {}
                 for workers in server.worker_metadata().values() for kind, worker in workers.items()}
    for name, kind in sorted(missing.items()):
        # A push pool runs the same job as its hybrid twin: the server accepts that template for it.
        server.create_work_pool(name, kind, templates.get(kind) or templates[base_type(kind)])
    return sorted(missing)


def run(port: int = 4300, stop: bool = False) -> int:
    from devtools import local_server
    from register import files

    if stop:
        server = local_server.running(HOME)
        if server is None:
            _say(f"No demo server is running (state: {_relative(HOME)}).")
            return Exit.OK
        server.stop()
        _say(f"Stopped the demo server on port {server.port}; its database stays in {_relative(HOME)}.")
        return Exit.OK

    started = time.monotonic()
    server = local_server.running(HOME)
    if server is None:
        _say(f"Starting a local Prefect server on port {port} (SQLite in {_relative(HOME)}; the first start "
             "takes a while) ...")
        try:
            server = local_server.start(HOME, port, ui=True, top=ROOT)
        except files.LinkRefused as error:
            _say(f"flow-register: error: {error}")
            return Exit.INVALID
        except RuntimeError as error:
            _say(f"flow-register: error: the demo server did not start: {error}\n"
                 f"Is port {port} taken? Try `{COMMAND} --port N`.")
            return Exit.INVALID
        _say(f"Started in {time.monotonic() - started:.1f}s: {server.api_url}")
    else:
        _say(f"The demo server is already running: {server.api_url}")

    # The deploy below gets its server the way CI gives it: PREFECT_API_URL, without a key.
    environ = {k: v for k, v in os.environ.items() if k not in ("PREFECT_API_KEY", "PREFECT_API_AUTH_STRING")}
    settings = Settings.from_environ({**environ, "PREFECT_API_URL": server.api_url})

    from register.commands.deploy import DeployOptions
    from register.commands.deploy import run as deploy
    from register.image import offline
    from register.manifest import Overrides, load_manifest
    from register.problems import Invalid
    from register.report.reporters import choose
    from register.server import Server, connection_from_environment

    manifest_path = EXAMPLES / "flows.yaml"
    manifest = load_manifest(manifest_path)
    if manifest.errors():
        raise Invalid(manifest.problems)
    with Server(connection_from_environment(settings.environ)) as client:
        created = _create_pools(client, _pools(manifest))
    if created:
        _say(f"Created work pools from the server's bundled templates: {', '.join(created)}")

    taken: set[tuple[str, str]] = set()
    for environment in manifest.environments:
        print(flush=True)
        names = {(d.flow, d.name) for d in manifest.deployments(environment)}
        template = None
        if names & taken:
            # In CI each environment has a Prefect server of its own; here they share one, where equal
            # names would be one deployment: the later environment gets its name in its deployments'.
            template = "{name}-{environment}"
            _say(f"Environment '{environment}' registers the same names as an earlier one; on this one demo server "
                 f"it registers them as '{template}'.")
            names = {(flow, f"{name}-{environment}") for flow, name in names}
        taken |= names
        image = offline(manifest, environment)  # nothing built: the demo needs no Docker
        code = deploy(DeployOptions(manifest=_relative(manifest_path), environment=environment,
                                    overrides=Overrides(), image=image, name_template=template,
                                    image_note="not built: the demo needs no Docker" if image else None),
                      settings, choose("text", settings))
        if code != Exit.OK:
            return code

    ui = server.api_url.removesuffix("/api")
    run = "uv run " if os.environ.get("UV") else ""  # the user's way in: `uv run python -m devtools.demo`
    manifest_arg = _relative(manifest_path)
    print(f"""
Done in {time.monotonic() - started:.1f}s. Where to look:
  the UI:            {ui}   (Deployments, Work Pools, Automations in its menu)
  the API:           PREFECT_API_URL={server.api_url} {run}prefect deployment ls
  the same plan:     PREFECT_API_URL={server.api_url} {run}flow-register plan -f {manifest_arg} -e dev
  the manifest:      {manifest_arg}: edit it and run the demo again; only what changed is written
  stop the server:   {run}{COMMAND} --stop   (its database stays in {_relative(HOME)})""", flush=True)
    return Exit.OK


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog=COMMAND, description="Start a local Prefect server and deploy the "
                                                               "example (examples/) into it.")
    parser.add_argument("--port", type=int, default=4300)
    parser.add_argument("--stop", action="store_true", help="stop the demo's server")
    args = parser.parse_args(argv)
    from register.problems import Invalid
    from register.report.problems import print_problems

    try:
        return int(run(port=args.port, stop=args.stop))
    except Invalid as invalid:
        print_problems(invalid.problems)
        return Exit.INVALID


if __name__ == "__main__":
    sys.exit(main())
