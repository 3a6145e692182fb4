"""One report for a run over several manifests: each project's plan under its manifest's name, then one
JSON document, one set of action outputs, one step summary and one pull request comment for them all.
It formats what each project's run hands it, as the one-manifest reporters do."""

from __future__ import annotations

import contextlib
import json
import sys
from dataclasses import dataclass

from register.report import github
from register.report import formats
from register.report.comment import upsert_comment
from register.report.reporters import FORMATS, GitHub, Reporter, secret_values
from register.settings import Settings


@dataclass
class Part:
    manifest: str
    project: str
    outcome: formats.Outcome | None = None
    error: str | None = None  # why it has no outcome (its server or image failed), or it was not run


class Projects(Reporter):
    def __init__(self, output: str, settings: Settings, *, comment: bool = False):
        self.json = output == "json"
        github.use(settings.github)  # GitHub's commands, outputs and summary: as these settings say
        self.main = FORMATS[output]()
        gh = settings.github
        self.github = GitHub(settings) if gh.active or gh.output or gh.step_summary or comment else None
        if self.github:
            self.github.secrets(secret_values(settings.environ))
        self.settings = settings
        self.comment = comment
        self.parts: list[Part] = []

    @property
    def _all(self) -> list[Reporter]:
        return [self.main] + ([self.github] if self.github else [])

    def start(self, manifest: str, project: str) -> None:
        self.parts.append(Part(manifest, project))
        if not self.json:
            print(f"\n== {github.visible(manifest)} ==", flush=True)

    def skipped(self, manifest: str, project: str, why: str) -> None:
        self.parts.append(Part(manifest, project, error=why))

    def problems(self, problems):
        self.main.problems(problems)

    def secrets(self, secrets):
        for r in self._all:
            r.secrets(secrets)

    @contextlib.contextmanager
    def phase(self, title):
        with contextlib.ExitStack() as stack:
            for r in self._all:
                stack.enter_context(r.phase(title))
            yield

    def note(self, text):
        self.main.note(text)

    def output(self, text):
        self.main.output(text)

    def planned(self, outcome):
        self.main.planned(outcome)

    def step(self, step):
        self.main.step(step)

    def finished(self, outcome):
        self.parts[-1].outcome = outcome
        if self.json:
            if outcome.result is not None and not outcome.result.ok:
                print(formats.failure_text(outcome), file=sys.stderr, flush=True)
        else:
            self.main.finished(outcome)
        if self.github and outcome.result is not None and not outcome.result.ok:
            print(github.error(outcome.result.error, "flow-register: apply failed"), file=sys.stderr, flush=True)

    def failed(self, message, title):
        if self.parts and self.parts[-1].outcome is None:
            self.parts[-1].error = message
        for r in self._all:
            r.failed(message, title)

    def close(self, environment: str) -> None:
        """Everything that is one for the run: the JSON document, the outputs, the summary, the comment."""
        document = {"environment": environment, "projects": [self._json(p) for p in self.parts],
                    "summary": {kind: sum(p.outcome.plan.count(kind) for p in self.parts if p.outcome)
                                for kind in ("create", "update", "unchanged", "delete")}}
        if self.json:
            print(json.dumps(document, indent=2), flush=True)
        elif len(self.parts) > 1:
            s = document["summary"]
            print(f"\n{len(self.parts)} projects: {s['create']} to create, {s['update']} to update, "
                  f"{s['unchanged']} unchanged, {s['delete']} to delete", flush=True)
        if self.github is None:
            return
        github.set_outputs(self._outputs(document))
        markdown = self._markdown()
        github.add_summary(markdown)
        if self.comment:
            projects = ",".join(sorted(p.project for p in self.parts))
            note = upsert_comment(markdown, self.settings.github, project=projects, environment=environment)
            print(github.warning(note, "flow-register: comment") if note.warning else note, file=sys.stderr,
                  flush=True)

    @staticmethod
    def _json(part: Part) -> dict:
        if part.outcome is None:
            return {"manifest": part.manifest, "project": part.project, "error": part.error}
        return {"manifest": part.manifest, **formats.as_json(part.outcome)}

    def _outputs(self, document: dict) -> dict[str, str]:
        each = [formats.github_outputs(p.outcome) for p in self.parts if p.outcome]
        return {
            "image": ",".join(o["image"] for o in each if o["image"]),
            "plan": json.dumps(github.redacted(document), separators=(",", ":")),
            "deployments": json.dumps(github.redacted([{"project": p.project, **d} for p in self.parts if p.outcome
                                                       for d in formats.deployments_list(p.outcome)]),
                                      separators=(",", ":")),
            **{key: str(sum(int(o[key]) for o in each)) for key in ("created", "updated", "unchanged", "deleted")},
            "changes": str(any(o["changes"] == "true" for o in each)).lower(),
        }

    def _markdown(self) -> str:
        lines = [f"## flow-register: {len(self.parts)} projects", ""]
        for part in self.parts:
            lines += [f"Manifest {github.code(part.manifest)}", ""]
            if part.outcome is not None:
                lines += [formats.markdown(part.outcome), ""]
            else:
                lines += [f"### {github.code(part.project)}: not applied", "", github.code(part.error or ""), ""]
        return "\n".join(lines)
