"""GitHub Actions workflow commands: annotations, groups, masks, outputs and the step summary.

Standard library only: the action's launcher (register/action/launcher.py) imports this module with
the runner's own python3, before any venv exists.

Nothing printed may start a workflow command of its own. Every command's data and properties are
escaped as GitHub's toolkit escapes them, so text inside a command stays inside it; and once
`commands_off()` has run, the runner reads no command at all in what else is printed (manifest text,
inputs, server replies, build logs), while the commands written through this module turn them back
on for their own line only.
"""

from __future__ import annotations

import contextlib
import os
import secrets
import sys
import uuid

from register.problems import Problem

_resume: str | None = None  # the token that turns workflow commands back on, while they are off
_masked: set[str] = set()


def active() -> bool:
    return os.environ.get("GITHUB_ACTIONS") == "true"


def _escape_data(text: str) -> str:
    return text.replace("%", "%25").replace("\r", "%0D").replace("\n", "%0A")


def _escape_property(text: str) -> str:
    return _escape_data(text).replace(":", "%3A").replace(",", "%2C")


def command(name: str, data: str = "", **properties: str) -> str:
    """`::name key=value,...::data`, escaped; framed to pass through while commands are off."""
    props = ",".join(f"{key}={_escape_property(str(value))}" for key, value in properties.items())
    line = f"::{name}{' ' + props if props else ''}::{_escape_data(str(data))}"
    return f"::{_resume}::\n{line}\n::stop-commands::{_resume}" if _resume else line


def commands_off(stream=None) -> None:
    """Under GitHub Actions, stop the runner from reading workflow commands in anything printed from
    now on; only `command()` writes them. Call it where the program starts, after the masks: a line
    of text that starts with `::` (a newline in an environment name, an input, a server's reply) then
    stays text. Both streams should then be one (the caller's business): the runner reads stdout and
    stderr apart, and a framed command must not be interleaved with text from the other stream."""
    global _resume
    if active() and _resume is None:
        _resume = secrets.token_hex(16)
        print(f"::stop-commands::{_resume}", file=stream or sys.stdout, flush=True)


def _repository_path(file: str) -> str:
    """GitHub places an annotation by its path from the repository root; the tool may run in a
    subfolder (the action's working-directory) and names files relative to it."""
    workspace = os.environ.get("GITHUB_WORKSPACE")
    if not workspace:
        return file
    path = os.path.relpath(os.path.abspath(file), os.path.abspath(workspace))
    return file if path.startswith("..") else path


def annotation(problem: Problem) -> str:
    """`::error file=..,line=..,col=..,title=..::message`: shown on the file's line in the pull request."""
    kind = "warning" if problem.severity == "warning" else "error"
    if not problem.line:  # not in a file: about an input or a flag, which the message names first
        return command(kind, f"{problem.file}: {problem.message}", title=f"flow-register: {problem.rule}")
    where = {"file": _repository_path(problem.file), "line": problem.line, "col": problem.col}
    return command(kind, problem.message, **where, title=f"flow-register: {problem.rule}")


def error(message: str, title: str) -> str:
    """`::error title=..::message`: an error that belongs to no file (a bad input, a failed step)."""
    return command("error", message, title=title)


def warning(message: str, title: str) -> str:
    return command("warning", message, title=title)


def notice(message: str, title: str) -> str:
    return command("notice", message, title=title)


def mask(secret: str | None, stream=None) -> None:
    """`::add-mask::` a secret, under GitHub Actions only. The runner masks line by line: a multi-line
    secret is masked line by line too, never printed whole."""
    if not (secret and active()):
        return
    for line in secret.splitlines():
        if line.strip() and line not in _masked:
            print(command("add-mask", line), file=stream or sys.stdout, flush=True)
            _masked.add(line)


@contextlib.contextmanager
def group(title: str, stream=None):
    """Fold a long phase in the log under GitHub Actions; a plain heading elsewhere."""
    stream = stream or sys.stderr
    if active():
        print(command("group", title), file=stream, flush=True)
        try:
            yield
        finally:
            print(command("endgroup"), file=stream, flush=True)
    else:
        yield


def set_outputs(outputs: dict[str, str]) -> None:
    path = os.environ.get("GITHUB_OUTPUT")
    if not path:
        return
    with open(path, "a", encoding="utf-8") as out:
        for name, value in outputs.items():
            value = str(value)
            if "\n" in value or "\r" in value:
                delimiter = f"ghadelimiter_{uuid.uuid4()}"
                out.write(f"{name}<<{delimiter}\n{value}\n{delimiter}\n")
            else:
                out.write(f"{name}={value}\n")


def add_summary(markdown: str) -> None:
    path = os.environ.get("GITHUB_STEP_SUMMARY")
    if path:
        with open(path, "a", encoding="utf-8") as out:
            out.write(markdown.rstrip() + "\n")
