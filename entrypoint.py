#!/usr/bin/env python3
"""The action's entry point: read the inputs, run `flow-register deploy`, exit with its code.

The same file runs in three places, with the same inputs:

- the composite action (`uses: org/flow-register@v1`): action.yml hands each input over as
  `INPUT_<NAME>` through `env:`, then runs this file in the registrar image or on the runner;
- the Docker action (`uses: docker://ghcr.io/org/flow-register:v1`): the runner sets `INPUT_<NAME>`
  from `with:` and keeps the dashes (`INPUT_PREFECT-API-URL`), and applies no defaults;
- a terminal: `INPUT_ENVIRONMENT=dev INPUT_PREFECT_API_URL=... python entrypoint.py`.

It decides nothing about deployments: the engine (register/) validates, builds, plans, registers,
and writes the outputs, the step summary and the annotations. This file only maps inputs onto the
engine's command line and environment, and masks secrets before anything is printed.
"""

from __future__ import annotations

import difflib
import json
import os
import shutil
import sys
import tempfile
import urllib.parse
from pathlib import Path

from register.problems import one_of
from register.report import github

# Every message a user can hit here, in one place.
MISSING = "input '{name}' is required: {hint}"
UNKNOWN = "unknown input '{name}'{suggestion}; the inputs are: {choices}"
TWICE = "input '{name}' is given twice with different values{values}; give it once"
NOT_BOOLEAN = "input '{name}' must be 'true' or 'false'; got '{value}'"
NOT_CHOICE = "input '{name}' must be {choices}; got '{value}'"
NO_DIRECTORY = "working-directory '{path}' does not exist in {root}"
NO_MANIFEST = ("manifest '{path}' does not exist in {root}; give its path relative to working-directory "
               "with the 'manifest' input (default flows.yaml)")

REQUIRED = {
    "environment": "the manifest environment to register, e.g. dev or prod",
    "prefect-api-url": "the Prefect API URL, e.g. https://api.prefect.cloud/api/accounts/.../workspaces/... "
                       "(pass it from a secret)",
}
# name -> default; None: required. Defaults repeat action.yml's, since a Docker action gets none.
INPUTS: dict[str, str | None] = {
    "environment": None,
    "manifest": "flows.yaml",
    "working-directory": ".",
    "work-pool": "",
    "cpu": "",
    "memory": "",
    "deployments": "",
    "dry-run": "false",
    "prune": "false",
    "build": "auto",
    "push": "true",
    "image-tag": "",
    "prefect-api-url": None,
    "prefect-api-key": "",
    "prefect-api-auth-string": "",
    "registry-username": "",
    "registry-password": "",
    "aws-region": "",
    "runtime": "",  # chooses where action.yml runs this file; nothing to do here
}
SECRETS = ("prefect-api-key", "prefect-api-auth-string", "registry-password")
BUILD_CHOICES = ("auto", "always", "never")
TRUE, FALSE = ("true", "yes", "1", "on"), ("false", "no", "0", "off", "")

# Set by action.yml when it runs this file in a container: the runner's Docker config, read-only.
DOCKER_CONFIG_MOUNT = "FLOW_REGISTER_DOCKER_CONFIG_RO"


_masked: set[str] = set()


class InputError(Exception):
    pass


def read_inputs(environ: dict[str, str]) -> dict[str, str]:
    """The inputs from INPUT_* variables, named either way (INPUT_DRY-RUN, INPUT_DRY_RUN), defaults applied.

    Every problem is collected, so one run names them all."""
    given: dict[str, str] = {}
    problems: list[str] = []
    for key, value in sorted(environ.items()):
        if not key.upper().startswith("INPUT_"):
            continue
        name = key[len("INPUT_"):].lower().replace("_", "-")
        if name not in INPUTS:
            close = difflib.get_close_matches(name, INPUTS, n=1)
            problems.append(UNKNOWN.format(name=name, suggestion=f" (did you mean '{close[0]}'?)" if close else "",
                                           choices=", ".join(INPUTS)))
        elif name in given and given[name] != value:
            values = "" if name in SECRETS else f" ({given[name]!r} and {value!r})"
            problems.append(TWICE.format(name=name, values=values))
        else:
            given[name] = value
    inputs = {}
    for name, default in INPUTS.items():
        value = given.get(name, "").strip()
        if not value and default is None:
            problems.append(MISSING.format(name=name, hint=REQUIRED[name]))
        inputs[name] = value or (default or "")
    for name in ("dry-run", "prune", "push"):
        if inputs[name].lower() not in TRUE + FALSE:
            problems.append(NOT_BOOLEAN.format(name=name, value=inputs[name]))
    if inputs["build"] not in BUILD_CHOICES:
        problems.append(NOT_CHOICE.format(name="build", choices=one_of(BUILD_CHOICES), value=inputs["build"]))
    if problems:
        raise InputError("\n".join(problems))
    return inputs


def is_true(value: str) -> bool:
    return value.lower() in TRUE


def secrets_in(environ: dict[str, str]) -> list[str]:
    """What must never appear in the log, from the raw INPUT_* variables (so before any check):
    the secret inputs, and a password inside the API URL."""
    values = []
    for key, value in environ.items():
        name = key[len("INPUT_"):].lower().replace("_", "-") if key.upper().startswith("INPUT_") else None
        if name in SECRETS and value:
            values.append(value)
        elif name == "prefect-api-url":
            try:
                password = urllib.parse.urlsplit(value.strip()).password
            except ValueError:
                password = None
            if password:
                values.append(password)
    return values


def mask(values: list[str]) -> None:
    """`::add-mask::` each secret; only under GitHub Actions, where the runner swallows the command.
    GitHub matches masks line by line: a multi-line secret needs each line masked."""
    if not github.active():
        return
    for value in values:
        for line in [line for line in value.splitlines() if line not in _masked]:
            if line.strip():
                print(f"::add-mask::{line}", flush=True)
                _masked.add(line)


def command_line(inputs: dict[str, str]) -> list[str]:
    """`flow-register deploy ...` for these inputs."""
    argv = ["deploy", "--file", inputs["manifest"], "--environment", inputs["environment"],
            "--build", inputs["build"], "--output", "text"]
    for name, flag in (("work-pool", "--work-pool"), ("cpu", "--cpu"), ("memory", "--memory"),
                       ("deployments", "--only"), ("image-tag", "--image-tag")):
        if inputs[name]:
            argv += [flag, inputs[name]]
    if is_true(inputs["dry-run"]):
        argv.append("--dry-run")
    if is_true(inputs["prune"]):
        argv.append("--prune")
    if not is_true(inputs["push"]):
        argv.append("--no-push")
    return argv


def engine_environment(inputs: dict[str, str], environ: dict[str, str]) -> dict[str, str]:
    """The variables the engine reads: the Prefect server, registry credentials, the AWS region.

    Inputs win over variables already set; an empty input leaves an existing variable alone."""
    env = dict(environ)
    for name, variable in (("prefect-api-url", "PREFECT_API_URL"), ("prefect-api-key", "PREFECT_API_KEY"),
                           ("prefect-api-auth-string", "PREFECT_API_AUTH_STRING"),
                           ("registry-username", "REGISTRY_USERNAME"), ("registry-password", "REGISTRY_PASSWORD"),
                           ("aws-region", "AWS_REGION")):
        if inputs[name]:
            env[variable] = inputs[name]
    if inputs["aws-region"]:
        env.setdefault("AWS_DEFAULT_REGION", inputs["aws-region"])
    return env


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
    print(message, file=sys.stderr)
    if github.active():
        for line in message.splitlines():
            print(github.error(line, title=f"flow-register: {title}"), flush=True)
    items = "\n".join(f"- {line}" for line in message.splitlines())
    try:
        github.add_summary(f"### flow-register: {title}\n\n{items}\n\nNothing was registered.\n")
    except OSError as error:  # the message is out already; a missing summary file must not hide it
        print(f"(no step summary: {error})", file=sys.stderr)
    return 1


def main(environ: dict[str, str] | None = None) -> int:
    environ = dict(os.environ if environ is None else environ)
    # Mask first, from the raw variables, so that even an error about the inputs cannot print a secret.
    mask(secrets_in(environ))
    try:
        inputs = read_inputs(environ)
    except InputError as error:
        return fail(str(error), "invalid inputs")

    root = Path(environ.get("GITHUB_WORKSPACE") or os.getcwd())
    workdir = root / inputs["working-directory"]
    if not workdir.is_dir():
        return fail(NO_DIRECTORY.format(path=inputs["working-directory"], root=root), "invalid inputs")
    if not (workdir / inputs["manifest"]).is_file():
        return fail(NO_MANIFEST.format(path=inputs["manifest"], root=workdir), "invalid inputs")

    env = engine_environment(inputs, environ)
    if environ.get(DOCKER_CONFIG_MOUNT) and "DOCKER_CONFIG" not in environ:
        config = writable_docker_config(environ[DOCKER_CONFIG_MOUNT])
        if config:
            env["DOCKER_CONFIG"] = config
    argv = command_line(inputs)
    print(f"flow-register {' '.join(argv)}  (in {workdir})", flush=True)

    os.chdir(workdir)
    os.environ.clear()
    os.environ.update(env)
    from register.cli import main as flow_register

    return flow_register(argv)


if __name__ == "__main__":
    sys.exit(main())
