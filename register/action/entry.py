"""The registrar's entry (entrypoint.py): read the inputs, run `flow-register deploy` (or `destroy`),
exit with its code.

The same code runs in three places, with the same inputs:

- the composite action (`uses: org/flow-register@v1`): action.yml hands each input over as
  `INPUT_<NAME>` through `env:`, and register/action/launcher.py starts this in the registrar image
  or on the runner;
- the Docker action (`uses: docker://ghcr.io/org/flow-register:v1`): the runner sets `INPUT_<NAME>`
  from `with:` and keeps the dashes (`INPUT_PREFECT-API-URL`), and applies no defaults;
- a terminal: `INPUT_ENVIRONMENT=dev INPUT_PREFECT_API_URL=... python entrypoint.py`.

It decides nothing about deployments: the engine validates, builds, plans, registers, and writes the
outputs, the step summary and the annotations. This maps inputs onto the engine's command line and
settings (register/settings.py), and masks secrets before anything is printed. This process's own
environment is left as the runner gave it: the engine reads none of it, only the settings it is handed.
"""

from __future__ import annotations

import glob
import json
import os
import shlex
import shutil
import sys
import tempfile
from collections.abc import Mapping
from pathlib import Path

from register.action.inputs import LABELS, InputError, command_line, engine_environment, manifests, read_inputs
from register.action.masking import mask_secrets
from register.report import github
from register.settings import Settings

NO_DIRECTORY = "working-directory '{path}' does not exist in {root}"
NO_MANIFEST = ("manifest '{path}' does not exist in {root}; give its path relative to working-directory "
               "with the 'manifest' input (default flows.yaml)")
NOT_CHECKED_OUT = ("the workspace {root} has no repository checked out, so there is no {what}: check the "
                   "repository out first, with `- uses: actions/checkout@v4` before this step")

# Set by the launcher when it runs this in a container: the runner's Docker config, read-only.
DOCKER_CONFIG_MOUNT = "FLOW_REGISTER_DOCKER_CONFIG_RO"


def writable_docker_config(mounted: str) -> str | None:
    """A writable copy of the runner's Docker config (a `docker login` before this step), keeping
    only the credential helpers this image has: a helper that is missing fails every pull."""
    source = Path(mounted) / "config.json"
    try:
        config = json.loads(source.read_text())
    except (OSError, ValueError):
        return None
    if config.get("credsStore") and not shutil.which(f"docker-credential-{config['credsStore']}"):
        del config["credsStore"]
    helpers = config.get("credHelpers") or {}
    config["credHelpers"] = {host: h for host, h in helpers.items() if shutil.which(f"docker-credential-{h}")}
    target = Path(tempfile.mkdtemp(prefix="docker-config-"))
    (target / "config.json").write_text(json.dumps(config))
    return str(target)


def fail(message: str, title: str) -> int:
    """Say what is wrong where a user looks: the log, an error annotation, the step summary. Exit 1."""
    print(message, file=sys.stderr, flush=True)
    if github.active():
        for line in message.splitlines():
            print(github.error(line, title=f"flow-register: {title}"), flush=True)
    items = "\n".join(f"- {github.code(line)}" for line in message.splitlines())  # inputs quoted: text, not Markdown
    try:
        github.add_summary(f"### flow-register: {title}\n\n{items}\n\nNothing was registered.\n")
    except OSError as error:  # the message is out already; a missing summary file must not hide it
        print(f"(no step summary: {error})", file=sys.stderr)
    return 1


def echo(argv: list[str]) -> str:
    """The command line as a shell would take it, on one line: an input's newline, carriage return or
    invisible character is shown as an escape, so nothing echoed can start a workflow command."""
    return " ".join(shlex.quote(github.visible(arg)) for arg in argv)


def _checked_out(root: Path) -> bool:
    return (root / ".git").exists() or any(root.iterdir())


def main(environ: Mapping[str, str] | None = None) -> int:
    environ = dict(os.environ if environ is None else environ)
    github.use(Settings.from_environ(environ).github)
    # Mask first, from the raw variables, so that even an error about the inputs cannot print a secret;
    # then no text printed (inputs, manifest, server replies) can start a workflow command: each line is
    # made text (guard_output), and the runner reads no command but the framed ones (commands_off).
    github.guard_output()
    mask_secrets(environ, sys.stdout)  # first in the one stream the runner reads
    github.commands_off()
    try:
        inputs = read_inputs(environ)
    except InputError as error:
        return fail(str(error), "invalid inputs")

    root = Path(environ.get("GITHUB_WORKSPACE") or os.getcwd())
    workdir = root / inputs["working-directory"]
    if not workdir.is_dir():
        if root.is_dir() and not _checked_out(root):
            return fail(NOT_CHECKED_OUT.format(root=root, what=f"working-directory '{inputs['working-directory']}'"),
                        "no manifest")
        return fail(NO_DIRECTORY.format(path=inputs["working-directory"], root=root), "invalid inputs")
    for manifest in manifests(inputs["manifest"]) or [inputs["manifest"]]:
        if glob.has_magic(manifest) or (workdir / manifest).is_file():
            continue  # a glob is the engine's to expand, and to refuse when it matches nothing
        if not _checked_out(root):
            return fail(NOT_CHECKED_OUT.format(root=root, what=f"manifest '{manifest}'"), "no manifest")
        return fail(NO_MANIFEST.format(path=manifest, root=workdir), "invalid inputs")

    env = engine_environment(inputs, environ)
    if environ.get(DOCKER_CONFIG_MOUNT) and "DOCKER_CONFIG" not in environ:
        config = writable_docker_config(environ[DOCKER_CONFIG_MOUNT])
        if config:
            env["DOCKER_CONFIG"] = config
    argv = command_line(inputs)
    print(f"flow-register {echo(argv)}  (in {github.visible(str(workdir))})", flush=True)

    os.chdir(workdir)
    from register.cli import main as flow_register

    return flow_register(argv, labels=LABELS, settings=Settings.from_environ(env))


def run() -> int:
    """As the image's entry point: under GitHub Actions, stderr goes where stdout goes, so that the
    runner reads one stream in the order it was written (see github.commands_off)."""
    if Settings.from_environ().github.active:
        sys.stderr.flush()
        os.dup2(sys.stdout.fileno(), sys.stderr.fileno())
    return main()
