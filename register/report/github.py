"""GitHub Actions workflow commands: annotations, groups, masks, outputs and the step summary.

Standard library only: the action's launcher (register/action/launcher.py) imports this module with
the runner's own python3, before any venv exists.

Nothing printed may start a workflow command of its own. Every command's data and properties are
escaped as GitHub's toolkit escapes them, so text inside a command stays inside it; `guard_output()`
makes every other printed line that would start a command text (a backslash before its `::`), the
CLI's in a `run:` step too; and once `commands_off()` has run (the action's entry), the runner reads no
command at all in what else is printed (manifest text, inputs, server replies, build logs), while the
commands written through this module turn them back on for their own line only.

Text from outside (names, values, server messages) is shown as what it is: `visible` escapes what
cannot be seen or reorders what can, `code` makes it a Markdown code span, `redact` removes every
masked value from what the runner does not mask (the summary, the comment, the outputs).
"""

from __future__ import annotations

import contextlib
import os
import re
import secrets
import sys
import unicodedata
import uuid
from dataclasses import dataclass

from register.problems import Problem


@dataclass(frozen=True)
class Context:
    """What this module needs of the run's GitHub context (settings.GitHub has it all)."""

    active: bool = False  # a GitHub Actions step: the runner reads workflow commands
    workspace: str | None = None  # GITHUB_WORKSPACE, where annotations' paths start
    output: str | None = None  # GITHUB_OUTPUT
    step_summary: str | None = None  # GITHUB_STEP_SUMMARY


# Set once where the program starts (the CLI, the action's entry, the launcher), from its settings: like the
# masks and the commands-off token below, it is about this process's output streams, which are one per process.
_context = Context()
_resume: str | None = None  # the token that turns workflow commands back on, while they are off
_masked: set[str] = set()  # every value masked: never shown in the summary, the comment or the outputs


class Command(str):
    """A workflow command this module wrote. `print()` hands it to the stream as it is (not as a plain
    str), so the output guard lets exactly these through and nothing else that looks like a command."""

    def __str__(self) -> str:
        return self


def use(context) -> None:
    """This run's GitHub context (a settings.GitHub, or a `Context`); outside Actions none is needed."""
    global _context
    _context = Context(active=bool(context.active), workspace=context.workspace, output=context.output,
                       step_summary=context.step_summary)


def active() -> bool:
    return _context.active


def _escape_data(text: str) -> str:
    return text.replace("%", "%25").replace("\r", "%0D").replace("\n", "%0A")


def _escape_property(text: str) -> str:
    return _escape_data(text).replace(":", "%3A").replace(",", "%2C")


def command(name: str, data: str = "", **properties: str) -> str:
    """`::name key=value,...::data`, escaped; framed to pass through while commands are off."""
    props = ",".join(f"{key}={_escape_property(str(value))}" for key, value in properties.items())
    line = f"::{name}{' ' + props if props else ''}::{_escape_data(str(data))}"
    return Command(f"::{_resume}::\n{line}\n::stop-commands::{_resume}" if _resume else line)


def commands_off(stream=None) -> None:
    """Under GitHub Actions, stop the runner from reading workflow commands in anything printed from
    now on; only `command()` writes them. Call it where the program starts, after the masks: a line
    of text that starts with `::` (a newline in an environment name, an input, a server's reply) then
    stays text. Both streams should then be one (the caller's business): the runner reads stdout and
    stderr apart, and a framed command must not be interleaved with text from the other stream."""
    global _resume
    if active() and _resume is None:
        _resume = secrets.token_hex(16)
        print(Command(f"::stop-commands::{_resume}"), file=stream or sys.stdout, flush=True)


def _repository_path(file: str) -> str:
    """GitHub places an annotation by its path from the repository root; the tool may run in a
    subfolder (the action's working-directory) and names files relative to it."""
    workspace = _context.workspace
    if not workspace:
        return file
    path = os.path.relpath(os.path.abspath(file), os.path.abspath(workspace))
    return file if path.startswith("..") else path


def annotation(problem: Problem) -> str:
    """`::error file=..,line=..,col=..,title=..::message`: shown on the file's line in the pull request."""
    kind = "warning" if problem.severity == "warning" else "error"
    if not problem.line:  # not in a file: about an input or a flag, which the message names first
        return command(kind, _plain(f"{problem.file}: {problem.message}"), title=f"flow-register: {problem.rule}")
    where = {"file": _repository_path(problem.file), "line": problem.line, "col": problem.col}
    return command(kind, _plain(problem.message), **where, title=_plain(f"flow-register: {problem.rule}"))


def error(message: str, title: str) -> str:
    """`::error title=..::message`: an error that belongs to no file (a bad input, a failed step)."""
    return command("error", _plain(message), title=_plain(title))


def warning(message: str, title: str) -> str:
    return command("warning", _plain(message), title=_plain(title))


def notice(message: str, title: str) -> str:
    return command("notice", _plain(message), title=_plain(title))


def mask(secret: str | None, stream=None) -> None:
    """`::add-mask::` a secret under GitHub Actions (on stderr by default: stdout may be data); everywhere,
    remember it, so that `redact` keeps it out of the step summary, the comment and the outputs, which
    the runner does not mask. The runner masks line by line: a multi-line secret is masked line by line
    too, never printed whole."""
    if not secret:
        return
    for line in secret.splitlines():
        if line.strip() and line not in _masked:
            if active():
                print(command("add-mask", line), file=stream or sys.stderr, flush=True)
            _masked.add(line)


# -- text from outside (manifest, inputs, servers): redacted, and shown as what it is --------------------

REDACTED = "***"


def redact(text: str) -> str:
    """`text` without any masked value (each line of a multi-line secret, longest first). Values under 4
    characters are left: redacting every `1` would garble counts and hide nothing worth hiding."""
    for secret in sorted(_masked, key=len, reverse=True):
        if len(secret) >= 4:
            text = text.replace(secret, REDACTED)
    return text


def redacted(value):
    """`value` (JSON-like: str, list, dict) with every masked value redacted in its strings and keys."""
    if isinstance(value, str):
        return redact(value)
    if isinstance(value, dict):
        return {redacted(k): redacted(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [redacted(v) for v in value]
    return value


_NAMED = {"\n": "\\n", "\r": "\\r", "\t": "\\t"}


def visible(text: str, keep: str = "") -> str:
    """`text` with every character that is invisible or moves others shown as an escape (`\\n`,
    `\\u202e`): control characters, line and paragraph separators, bidi controls, zero-width characters,
    unassigned code points. A name then reads as what it is, on one line, in the reader's order."""
    out = []
    for char in text:
        if char in keep or unicodedata.category(char) not in ("Cc", "Cf", "Zl", "Zp", "Co", "Cs", "Cn"):
            out.append(char)
        elif char in _NAMED:
            out.append(_NAMED[char])
        else:
            code = ord(char)
            out.append(f"\\x{code:02x}" if code < 0x100 else f"\\u{code:04x}" if code < 0x10000 else f"\\U{code:08x}")
    return "".join(out)


def _plain(text: str) -> str:
    """An annotation's text: GitHub shows it as plain text, lines kept; invisible characters shown."""
    return visible(redact(str(text)), keep="\n\r\t")


def code(text: str, *, cell: bool = False) -> str:
    """`text` as a Markdown code span: nothing in it is Markdown, HTML, a mention, a link or an emoji, on
    GitHub or anywhere. Redacted, on one line, invisible characters shown; `cell`: inside a table, where
    a pipe would end the cell."""
    text = visible(redact(str(text)))
    if cell:
        text = text.replace("|", "\\|")
    if not text:
        return ""
    fence = "`" * (max((len(run) for run in re.findall("`+", text)), default=0) + 1)
    pad = " " if text[0] in "` " or text[-1] in "` " else ""
    return f"{fence}{pad}{text}{pad}{fence}"


# -- nothing printed starts a command of its own --------------------------------------------------------

_LINE_START_COMMAND = ("::", "##[")  # the runner's command forms (v2, and the older `##[name]`)


def _neutral(chunk: str) -> str:
    """A line (or the start of one) that would start a workflow command, made text: the runner reads a
    command where a line starts, after white space, with `::` or `##[`. A backslash goes after the white
    space (and any invisible character), so indented text keeps its indent."""
    start = 0
    while start < len(chunk) and (chunk[start].isspace() or unicodedata.category(chunk[start]) in ("Cf", "Cc")):
        start += 1
    head = chunk[start:]
    if head.startswith(_LINE_START_COMMAND) or head in (":", "#", "##"):
        return chunk[:start] + "\\" + head
    return chunk


class _Guarded:
    """sys.stdout or sys.stderr under GitHub Actions: every line written is text, except the commands
    this module made (`Command`). Whole lines are checked; what is left of a line when the stream is
    flushed is checked as a line start too, and so is what follows it, so no split write slips through.
    Lines end where the runner ends them (`\\r` too) and wherever Python does."""

    def __init__(self, stream):
        self._stream = stream
        self._tail = ""

    def write(self, text) -> int:
        if isinstance(text, Command):
            self._flush_tail()
            self._stream.write(text)
            return len(text)
        self._tail += text
        lines = self._tail.splitlines(keepends=True)
        self._tail = lines.pop() if lines and lines[-1].splitlines()[0] == lines[-1] else ""
        for line in lines:
            self._stream.write(_neutral(line))
        return len(text)

    def _flush_tail(self) -> None:
        if self._tail:
            self._stream.write(_neutral(self._tail))
            self._tail = ""

    def flush(self) -> None:
        self._flush_tail()
        self._stream.flush()

    def writelines(self, lines) -> None:
        for line in lines:
            self.write(line)

    def __getattr__(self, name):
        return getattr(self._stream, name)


def guard_output() -> None:
    """Under GitHub Actions, make every line this process prints from now on text, whatever is in it
    (a deployment name, a server's error, a traceback, a build log): only `Command`s stay commands.
    The CLI runs in a step of its own (`run: flow-register deploy`) where the runner reads commands."""
    if active():
        for name in ("stdout", "stderr"):
            stream = getattr(sys, name)
            if not isinstance(stream, _Guarded):
                setattr(sys, name, _Guarded(stream))


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
    path = _context.output
    if not path:
        return
    with open(path, "a", encoding="utf-8") as out:
        for name, value in outputs.items():
            value = redact(str(value))
            if "\n" in value or "\r" in value:
                delimiter = f"ghadelimiter_{uuid.uuid4()}"
                out.write(f"{name}<<{delimiter}\n{value}\n{delimiter}\n")
            else:
                out.write(f"{name}={value}\n")


def add_summary(markdown: str) -> None:
    path = _context.step_summary
    if path:
        with open(path, "a", encoding="utf-8") as out:
            out.write(redact(markdown).rstrip() + "\n")
