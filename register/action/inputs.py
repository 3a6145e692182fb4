"""The action's inputs: names, defaults and descriptions read from action.yml, the one place they are
written (a Docker action gets no defaults from the runner, so the registrar applies them itself);
values read from the INPUT_* variables, named either way (INPUT_DRY-RUN, INPUT_DRY_RUN)."""

from __future__ import annotations

import difflib
import functools
import math
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

import yaml

from register.action.masking import SECRET_INPUTS, input_name
from register.problems import one_of

# action.yml: packaged beside this module in the wheel (pyproject's force-include), at the root of a checkout.
_HERE = Path(__file__).resolve().parent
ACTION_YML = next((p for p in (_HERE / "action.yml", _HERE.parents[1] / "action.yml") if p.is_file()),
                  _HERE.parents[1] / "action.yml")

# Every message a user can hit here, in one place.
MISSING = "input '{name}' is required: {hint}"
UNKNOWN = "unknown input '{name}'{suggestion}; the inputs are: {choices}"
TWICE = "input '{name}' is given twice with different values{values}; give it once"
NOT_BOOLEAN = "input '{name}' must be 'true' or 'false'; got '{value}'"
NOT_CHOICE = "input '{name}' must be {choices}; got '{value}'"
NOT_COUNT = "input '{name}' must be a whole number, at least 1; got '{value}'"
NOT_RATE = "input '{name}' must be a whole number of requests a minute, 0 for no budget; got '{value}'"
NOT_SECONDS = "input '{name}' must be a number of seconds, 0 or more; got '{value}'"
NO_SERVER = ("input 'prefect-api-url' is required, or 'prefect-account-id' with 'prefect-workspace-id' for a "
             "Prefect Cloud workspace: {hint}")
DESTROY_NEEDS_PREVIEW = ("input 'destroy' deletes a preview's deployments and needs input 'preview' (e.g. pr-123); "
                         "without it there is nothing it may delete")

BUILD_CHOICES = ("auto", "always", "never")
TRUE, FALSE = ("true", "yes", "1", "on"), ("false", "no", "0", "off", "")

# How the engine names an override (resolve.Overrides.labels) when it comes from the action: as the input.
LABELS = {"environment": "input 'environment'", "work_pool": "input 'work-pool'", "cpu": "input 'cpu'",
          "memory": "input 'memory'", "only": "input 'deployments'", "preview": "input 'preview'",
          "smoke": "input 'smoke'", "rollback": "input 'rollback'"}


# `changed-since` asks which manifests changed: it deploys nothing, so needs neither of these.
NOT_FOR_CHANGED = ("environment", "prefect-api-url")


def manifests(value: str) -> list[str]:
    """Input `manifest`: one path, or several, one a line or comma-separated (globs are the engine's)."""
    return [m.strip() for line in value.splitlines() for m in line.split(",") if m.strip()]


@dataclass(frozen=True)
class Input:
    name: str
    description: str
    default: str | None  # None: required

    @property
    def boolean(self) -> bool:
        return self.default in ("true", "false")


@functools.cache
def declared() -> dict[str, Input]:
    """action.yml's inputs, in its order. A default that is an expression (`${{ github.token }}`) is
    the runner's to evaluate, for a composite action only: here it counts as empty."""
    spec = yaml.safe_load(ACTION_YML.read_text(encoding="utf-8"))["inputs"]
    return {name: Input(name, " ".join(str(s.get("description", "")).split()),
                        None if s.get("required") else ("" if "${{" in str(s.get("default", "")) else
                                                        str(s.get("default", ""))))
            for name, s in spec.items()}


class InputError(Exception):
    pass


def read_inputs(environ: Mapping[str, str]) -> dict[str, str]:
    """Every input with its value or default. Every problem is collected, so one run names them all."""
    inputs = declared()
    given: dict[str, str] = {}
    problems: list[str] = []
    for variable, value in sorted(environ.items()):
        name = input_name(variable)
        if name is None:
            continue
        if name not in inputs:
            close = difflib.get_close_matches(name, inputs, n=1)
            problems.append(UNKNOWN.format(name=name, suggestion=f" (did you mean '{close[0]}'?)" if close else "",
                                           choices=", ".join(inputs)))
        elif name in given and given[name] != value:
            values = "" if name in SECRET_INPUTS else f" ({given[name]!r} and {value!r})"
            problems.append(TWICE.format(name=name, values=values))
        else:
            given[name] = value
    values = {}
    for name, spec in inputs.items():
        value = given.get(name, "").strip()
        if not value and spec.default is None and not (name in NOT_FOR_CHANGED and given.get("changed-since")):
            problems.append(MISSING.format(name=name, hint=spec.description))
        values[name] = value or (spec.default or "")
    for name in [n for n, spec in inputs.items() if spec.boolean]:
        if values[name].lower() not in TRUE + FALSE:
            problems.append(NOT_BOOLEAN.format(name=name, value=values[name]))
    if values["build"] not in BUILD_CHOICES:
        problems.append(NOT_CHOICE.format(name="build", choices=one_of(BUILD_CHOICES), value=values["build"]))
    if values["concurrency"] and not (values["concurrency"].isdigit() and int(values["concurrency"]) >= 1):
        problems.append(NOT_COUNT.format(name="concurrency", value=values["concurrency"]))
    if values["requests-per-minute"] and not values["requests-per-minute"].isdigit():
        problems.append(NOT_RATE.format(name="requests-per-minute", value=values["requests-per-minute"]))
    for name in ("lock-wait", "smoke-timeout"):
        if values[name] and not _seconds(values[name]):
            problems.append(NOT_SECONDS.format(name=name, value=values[name]))
    if not (values["prefect-api-url"] or values["prefect-account-id"] or values["prefect-workspace-id"]
            or values["changed-since"]):
        problems.append(NO_SERVER.format(hint=inputs["prefect-api-url"].description))
    if is_true(values["destroy"]) and not values["preview"]:
        problems.append(DESTROY_NEEDS_PREVIEW)
    if problems:
        raise InputError("\n".join(problems))
    return values


def _seconds(text: str) -> bool:
    try:
        return math.isfinite(float(text)) and float(text) >= 0
    except ValueError:
        return False


def is_true(value: str) -> bool:
    return value.lower() in TRUE


def command_line(inputs: dict[str, str]) -> list[str]:
    """`flow-register ...` for these inputs: `deploy`, `destroy` of a preview, `rollback`, or `changed`. The log
    is for people (the outputs carry the JSON); `changed` prints its matrix as JSON."""
    from register.report.reporters import FOR_PEOPLE

    files = [arg for m in manifests(inputs["manifest"]) for arg in ("--file", m)]
    if inputs["changed-since"]:
        return ["changed", f"--since={inputs['changed-since']}", "--output", "json", *files]
    where = [*files, "--environment", inputs["environment"]]
    server = [arg for name, flag in (("concurrency", "--concurrency"), ("lock-wait", "--lock-wait"),
                                     ("requests-per-minute", "--requests-per-minute"))
              if inputs[name] for arg in (flag, inputs[name])]
    if inputs["rollback"]:
        return ["rollback", *where, "--to", inputs["rollback"], "--output", FOR_PEOPLE, *server] + \
            [flag for name, flag in (("dry-run", "--dry-run"), ("prune", "--prune")) if is_true(inputs[name])]
    if is_true(inputs["destroy"]):
        return ["destroy", *where, "--preview", inputs["preview"], "--output", FOR_PEOPLE, *server] + \
            (["--dry-run"] if is_true(inputs["dry-run"]) else [])
    argv = ["deploy", *where, "--build", inputs["build"], "--output", FOR_PEOPLE]
    for name, flag in (("work-pool", "--work-pool"), ("cpu", "--cpu"), ("memory", "--memory"),
                       ("deployments", "--only"), ("image-tag", "--image-tag"), ("preview", "--preview"),
                       ("smoke", "--smoke"), ("smoke-timeout", "--smoke-timeout")):
        if inputs[name]:
            argv += [flag, inputs[name]]
    argv += server
    for name, flag in (("dry-run", "--dry-run"), ("prune", "--prune"), ("comment", "--comment"),
                       ("preview-active", "--preview-active")):
        if is_true(inputs[name]):
            argv.append(flag)
    if not is_true(inputs["push"]):
        argv.append("--no-push")
    return argv


def engine_environment(inputs: dict[str, str], environ: Mapping[str, str]) -> dict[str, str]:
    """The variables the engine reads: the Prefect server, registry credentials, the AWS region, the
    token for the pull request comment. Inputs win over variables already set; an empty input leaves
    an existing variable alone. No INPUT_* variable reaches the engine: what it needs of them is above."""
    env = {name: value for name, value in environ.items() if input_name(name) is None}
    for name, variable in (("prefect-api-url", "PREFECT_API_URL"), ("prefect-api-key", "PREFECT_API_KEY"),
                           ("prefect-api-auth-string", "PREFECT_API_AUTH_STRING"),
                           ("registry-host", "REGISTRY_HOST"), ("registry-username", "REGISTRY_USERNAME"), ("registry-password", "REGISTRY_PASSWORD"),
                           ("aws-region", "AWS_REGION"), ("prefect-account-id", "PREFECT_ACCOUNT_ID"),
                           ("prefect-workspace-id", "PREFECT_WORKSPACE_ID")):
        if inputs[name]:
            env[variable] = inputs[name]
    if inputs["github-token"] and is_true(inputs["comment"]):  # the engine gets the token only to comment
        env["GITHUB_TOKEN"] = inputs["github-token"]
    if inputs["aws-region"]:
        env.setdefault("AWS_DEFAULT_REGION", inputs["aws-region"])
    return env
