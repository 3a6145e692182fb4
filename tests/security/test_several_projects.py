"""A run over several manifests writes one step summary and one pull request comment. A manifest's path
comes from the repository (a pull request can add `pipelines/<anything>/flows.yaml` that a glob picks up):
in the summary, the comment and the log it is text, and the comment is one, found again by its marker."""

from __future__ import annotations

import dataclasses
import json

import pytest
from action.fake_github import TOKEN, fake_github
from markdown_it import MarkdownIt

from register.engine.desired import State
from register.engine.planner import Action, Plan
from register.report import github
from register.report import formats as report
from register.report.projects import Projects
from register.settings import GitHub, Settings

HOSTILE = "pipelines/[x](https://evil.example)<img src=x>@mallory\n::error::forged/flows.yaml"


def outcome(project: str) -> report.Outcome:
    fields = {"work_pool": "pool", "job_variables": {}, "parameters": {}, "schedules": [], "triggers": [],
              "tags": [], "description": None, "entrypoint": "flows/f.py:f", "pull_steps": None, "paused": False}
    plan = Plan(project, "dev", actions=[Action("create", "daily", "f", desired=State("f", "daily", fields))])
    return report.Outcome(plan, "http://prefect.example/api", dry_run=True)


@pytest.fixture(autouse=True)
def fresh_commands(monkeypatch):
    monkeypatch.setattr(github, "_resume", None)
    monkeypatch.setattr(github, "_masked", set())
    monkeypatch.delenv("GITHUB_ACTIONS", raising=False)


def test_one_comment_and_one_summary_for_every_project_with_the_paths_as_text(tmp_path, monkeypatch, capsys):
    output, summary, event = tmp_path / "output", tmp_path / "summary.md", tmp_path / "event.json"
    event.write_text(json.dumps({"pull_request": {"number": 7}}))
    monkeypatch.setenv("GITHUB_OUTPUT", str(output))
    monkeypatch.setenv("GITHUB_STEP_SUMMARY", str(summary))
    with fake_github() as api:
        gh = GitHub(active=True, repository="org/flows", api_url=api.url, token=TOKEN, sha="0" * 16, run_id="1",
                    server_url="https://github.example", event_name="pull_request", event_path=str(event),
                    output=str(output), step_summary=str(summary))
        for attempt in range(2):  # a second run updates the comment, never adds one
            reporter = Projects("text", Settings(github=dataclasses.replace(gh)), comment=True)
            for manifest, project in ((HOSTILE, "sales"), ("pipelines/stock/flows.yaml", "stock")):
                reporter.start(manifest, project)
                reporter.planned(outcome(project))
                reporter.finished(outcome(project))
            reporter.close("dev")
        assert len(api.comments) == 1, api.comments
        comment = api.comments[0]["body"]
    written = summary.read_text()
    assert written.count("## flow-register: 2 projects") == 2  # one section per run, not per project
    for markdown in (comment, written):
        rendered = MarkdownIt("commonmark", {"html": True}).render(markdown)
        assert "<img" not in rendered and 'href="https://evil' not in rendered, rendered
        assert "### flow-register plan: `sales` → `dev`" in markdown and "`stock` → `dev`" in markdown
    log = capsys.readouterr()
    lines = (log.out + log.err).splitlines()
    assert not any(line.lstrip().startswith("::error::") for line in lines), lines
    assert "== pipelines/stock/flows.yaml ==" in log.out
    outputs = output.read_text()
    assert "created=2" in outputs and "forged" not in outputs.split("plan=")[0]
