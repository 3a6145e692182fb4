"""GitHub Actions workflow commands: annotations, groups, masks, outputs and the step summary."""

from __future__ import annotations

import contextlib
import os
import sys
import uuid

from register.problems import Problem


def active() -> bool:
    return os.environ.get("GITHUB_ACTIONS") == "true"


def _escape_data(text: str) -> str:
    return text.replace("%", "%25").replace("\r", "%0D").replace("\n", "%0A")


def _escape_property(text: str) -> str:
    return _escape_data(text).replace(":", "%3A").replace(",", "%2C")


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
    props = [f"file={_escape_property(_repository_path(problem.file))}", f"line={problem.line}",
             f"col={problem.col}"] if problem.line else []
    props.append(f"title={_escape_property('flow-register: ' + problem.rule)}")
    return f"::{kind} {','.join(props)}::{_escape_data(problem.message)}"


def error(message: str, title: str) -> str:
    """`::error title=..::message`: an error that belongs to no file (a bad input, a failed step)."""
    return f"::error title={_escape_property(title)}::{_escape_data(message)}"


def mask(secret: str | None, stream=None) -> None:
    if secret and active():
        print(f"::add-mask::{secret}", file=stream or sys.stdout, flush=True)


@contextlib.contextmanager
def group(title: str, stream=None):
    """Fold a long phase in the log under GitHub Actions; a plain heading elsewhere."""
    stream = stream or sys.stderr
    if active():
        print(f"::group::{title}", file=stream, flush=True)
        try:
            yield
        finally:
            print("::endgroup::", file=stream, flush=True)
    else:
        yield


def set_outputs(outputs: dict[str, str]) -> None:
    path = os.environ.get("GITHUB_OUTPUT")
    if not path:
        return
    with open(path, "a", encoding="utf-8") as out:
        for name, value in outputs.items():
            value = str(value)
            if "\n" in value:
                delimiter = f"ghadelimiter_{uuid.uuid4()}"
                out.write(f"{name}<<{delimiter}\n{value}\n{delimiter}\n")
            else:
                out.write(f"{name}={value}\n")


def add_summary(markdown: str) -> None:
    path = os.environ.get("GITHUB_STEP_SUMMARY")
    if path:
        with open(path, "a", encoding="utf-8") as out:
            out.write(markdown.rstrip() + "\n")
