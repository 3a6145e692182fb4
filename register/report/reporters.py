"""Reporters: what a run shows, chosen by name. They format what the engine hands them; they never decide,
and the engine never prints.

    reporter = choose("text", settings)     # a name of FORMATS, plus GitHub's commands under Actions

FORMATS is the one list of output formats: the CLI's `--output` choices and help, and the format the action
logs in, come from it. A new event is a method of `Reporter`; `Reporters` hands every event on by itself.
"""

from __future__ import annotations

import contextlib
import json
import re
import sys

from register.problems import Problem
from register.report import github
from register.report import formats
from register.report.comment import upsert_comment
from register.report.problems import print_problems
from register.settings import Settings


class Reporter:
    """Every event of a run; each reporter overrides what it shows."""

    def problems(self, problems: list[Problem]) -> None: ...

    def secrets(self, secrets: list[str]) -> None:
        """Values never to be shown: kept out of all the report layer writes (GitHub masks them in the log)."""
        for secret in secrets:
            github.mask(secret)

    @contextlib.contextmanager
    def phase(self, title: str):
        yield

    def note(self, text: str) -> None: ...

    def output(self, text: str) -> None:
        """A tool's own output as it comes (Docker's build log): for people, never in a JSON document."""

    def planned(self, outcome: formats.Outcome) -> None: ...

    def step(self, step) -> None: ...

    def finished(self, outcome: formats.Outcome) -> None: ...

    def failed(self, message: str, title: str) -> None: ...


class Text(Reporter):
    """For people: problems with the offending line, the plan table, each write, a summary line."""

    help = "the plan as a table, each write, a summary line"

    def problems(self, problems):
        print_problems(problems)

    def note(self, text):
        print(text, file=sys.stderr, flush=True)

    def output(self, text):
        sys.stderr.write(text)
        if text.endswith("\n"):
            sys.stderr.flush()

    def planned(self, outcome):
        print(formats.table(outcome), flush=True)
        if not outcome.dry_run and outcome.plan.changes_anything:
            print(flush=True)

    def step(self, step):
        print(formats.step_line(step), flush=True)

    def finished(self, outcome):
        print("\n" + formats.summary_line(outcome), flush=True)
        for line in formats.smoke_lines(outcome):
            print(line, flush=True)
        self._failure(outcome)

    @staticmethod
    def _failure(outcome):
        if outcome.result is not None and not outcome.result.ok:
            print(formats.failure_text(outcome), file=sys.stderr, flush=True)

    def failed(self, message, title):
        print(f"flow-register: error: {message}", file=sys.stderr, flush=True)


class Json(Text):
    """For machines: the outcome as one JSON document on stdout; notes and problems on stderr."""

    help = "one JSON document on stdout (notes and problems on stderr)"

    def planned(self, outcome):
        pass

    def step(self, step):
        pass

    def finished(self, outcome):
        print(json.dumps(formats.as_json(outcome), indent=2), flush=True)
        self._failure(outcome)


class GitHub(Reporter):
    """Under GitHub Actions: annotations, folded phases, outputs, the step summary. Its commands go to
    stderr, which the runner reads as it reads stdout: stdout may be data (`--output json | jq`)."""

    def __init__(self, settings: Settings, *, comment: bool = False):
        self.settings = settings
        self.comment = comment  # the plan as a comment on the pull request, too

    def phase(self, title):
        return github.group(title)

    def finished(self, outcome):
        formats.write_github(outcome)
        if outcome.result is not None and not outcome.result.ok:
            print(github.error(outcome.result.error, "flow-register: apply failed"), file=sys.stderr, flush=True)
        for run in outcome.smoke:
            if not run.ok:
                print(github.error(f"smoke run of {run.deployment}: {run.state_name or run.state or 'not started'} "
                                   f"({run.url})", "flow-register: smoke run failed"), file=sys.stderr, flush=True)
        if self.comment:
            plan = outcome.plan
            note = upsert_comment(formats.markdown(outcome), self.settings.github, project=plan.project,
                                  environment=plan.environment)
            print(github.warning(note, "flow-register: comment") if note.warning else note, file=sys.stderr, flush=True)

    def failed(self, message, title):
        print(github.error(message, f"flow-register: {title}"), file=sys.stderr, flush=True)


class Reporters(Reporter):
    """Several reporters as one: each event goes to every one of them, in order."""

    def __init__(self, *reporters: Reporter):
        self.reporters = reporters

    @contextlib.contextmanager
    def phase(self, title):
        with contextlib.ExitStack() as stack:
            for r in self.reporters:
                stack.enter_context(r.phase(title))
            yield

    # A link (a webhook's URL) makes events with no other key: a secret under GitHub Actions, masked before
    # any reporter prints it (GitHub's `secrets`; elsewhere it is shown, for the sender to be given).
    def planned(self, outcome):
        plan = getattr(outcome, "plan", None)
        if links := [link for a in getattr(plan, "actions", []) if (link := formats.link(a))]:
            self.secrets(links)
        for r in self.reporters:
            r.planned(outcome)

    def step(self, step):
        if link := getattr(step, "link", None):
            self.secrets([link])
        for r in self.reporters:
            r.step(step)


def _fan_out(event: str):
    def each(self, *args, **kwargs):
        for r in self.reporters:
            getattr(r, event)(*args, **kwargs)
    each.__name__ = event
    return each


# Every event of Reporter; each but `phase` (a context, entered in each reporter above) is handed on as it is.
EVENTS = tuple(name for name, value in vars(Reporter).items() if callable(value) and not name.startswith("_"))
for _event in EVENTS:
    if _event not in vars(Reporters):
        setattr(Reporters, _event, _fan_out(_event))

# --output NAME: the one list of output formats (the CLI's choices and help, the action's log)
FORMATS: dict[str, type[Reporter]] = {"text": Text, "json": Json}
FOR_PEOPLE = "text"  # the CLI's default, and what the action logs (its outputs carry the JSON)


def formats_help() -> str:
    return "; ".join(f"{name}: {reporter.help}" for name, reporter in FORMATS.items())


# A variable named like this holds a secret (the manifest warns when it names one in `${...}`): the runner
# masks the job's secrets in the log, but not in the summary, the comment or the outputs.
SECRET_VARIABLE = re.compile(r"TOKEN|SECRET|PASSWORD|PASSWD|API_?KEY|AUTH|CREDENTIAL|PRIVATE", re.I)


def secret_values(environ) -> list[str]:
    """The values of the variables named like secrets; short ones and booleans are no secret worth a mask."""
    return [value for name, value in environ.items() if SECRET_VARIABLE.search(name) and len(value) >= 6
            and value.lower() not in ("true", "false")]


def choose(name: str, settings: Settings, *, comment: bool = False) -> Reporter:
    """The reporter called `name`, with GitHub's beside it when the run is a GitHub Actions step (or is
    given its output files, as `act` and the tests do); `comment`: the plan on the pull request too."""
    github.use(settings.github)  # GitHub's commands, outputs and summary: as these settings say
    main = FORMATS[name]()
    gh = settings.github
    if gh.active or gh.output or gh.step_summary or comment:
        reporter = GitHub(settings, comment=comment)
        reporter.secrets(secret_values(settings.environ))
        return Reporters(main, reporter)
    return main
