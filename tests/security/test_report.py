"""What flow-register shows is only what it means to show: attacks on the plan comment, the step summary,
the outputs and the log, by whoever writes the manifest, the flow source or what the Prefect server holds.

- The comment edited on a push is only one the token's own identity wrote, never one that merely carries
  the marker (GitHub's API is a local stand-in, tests/action/fake_github.py, built from its documented
  shapes).
- Every name, value and message from outside is a code span in the Markdown: the summary and the comment
  are rendered here (markdown-it, CommonMark with tables, raw HTML on, as GitHub has it) and read as a
  reader would see them.
- Every masked value is `***` in the summary, the comment and the outputs.
- No line printed by the CLI in a `run:` step, nor echoed by the action, starts a workflow command that
  flow-register did not mean to write: each printed line is read as the runner reads it (`^\\s*::`,
  `##[`, lines ending at `\\r` too) with no `::stop-commands::` to hide behind.
"""

from __future__ import annotations

import dataclasses
import html.parser
import json
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest
import yaml
from action.fake_github import BOT, TOKEN, fake_github, user
from markdown_it import MarkdownIt
from support.registration import CLI, _serve, client_env

from register.engine.desired import State
from register.engine.kind import Change
from register.engine.planner import Action, Plan
from register.report import github
from register.report import formats as report
from register.report.comment import marker, upsert_comment
from register.report.reporters import choose
from register.settings import GitHub, Settings
from register.commands.smoke import SmokeRun

ROOT = Path(__file__).resolve().parents[2]

# What a manifest, a flow's source or a server user can put in a name, a tag, a value or an error.
ATTACKS = {
    "html-comment": "x <!-- the rows below are hidden",
    "forged-row": "x\n| create | `forged` | `f` | `pool` | |",
    "forged-summary": "x\n\nPlan: 1 to create, 0 to update, 0 unchanged, 0 to delete. Dry run: nothing was written.",
    "mention": "x @mallory please approve",
    "link": "[click me](https://evil.example/login)",
    "image": "![pixel](https://evil.example/track.png)",
    "html": "<img src=https://evil.example/x.png onerror=alert(1)>",
    "pipes": "x | y | z",
    "backticks": "x `` ` `` y`",
    "close-comment": "x --> <b>bold</b>",
    "bidi": "x\u202egnp.exe\u202c y",
    "zero-width": "x\u200b\u2060y\ufeff",
    "workflow-command": "x\n::error::forged\r::add-mask::flows",
}
INVISIBLE = re.compile("[\u200b-\u200f\u202a-\u202e\u2060-\u2069\ufeff\r]")


def state(name: str, flow: str = "f", **fields) -> State:
    base = {"work_pool": "pool", "work_queue": "default", "job_variables": {}, "parameters": {},
            "parameter_schema": {"type": "object", "properties": {}}, "schedules": [], "triggers": [],
            "tags": [], "description": None, "entrypoint": "flows/f.py:f", "pull_steps": None,
            "concurrency_limit": None, "concurrency_options": None, "enforce_parameter_schema": True,
            "paused": False, "version": None}
    base.update(fields)
    return State(flow, name, base, manifest_name=name)


def hostile_outcome(text: str) -> report.Outcome:
    """A plan whose every outside text is `text`: a deployment's name, flow and pool, a tag and a value
    that change, a note, a kept deployment from the server, a smoke run's name, state and message."""
    created = state(text, flow=text, work_pool=text)
    before = state("daily", tags=["etl"], description="old")
    after = state("daily", tags=["etl", text], description=text)
    plan = Plan("sales", "dev", actions=[
        Action("create", text, text, desired=created, notes=[text]),
        Action("update", "daily", "f", id="d1", desired=after, registered=before,
               changes=[Change("tags", ["etl"], ["etl", text]), Change("description", "old", text)]),
    ], kept=[state(text, flow=text)])
    smoke = SmokeRun(text, text, "0b9c3c52", text, "FAILED", text, message=text,
                     url=f"http://prefect.example/runs/flow-run/{text}")  # a server's id in the link
    return report.Outcome(plan, "http://prefect.example/api", dry_run=True, smoke=[smoke])


class Reader(html.parser.HTMLParser):
    """What a reader sees of rendered Markdown: the text outside code, the table's rows, links, images,
    and any HTML the Markdown let through."""

    def __init__(self):
        super().__init__()
        self.prose, self.rows, self.tags, self.comments = [], [], [], []
        self.in_code = 0
        self.in_cell = False

    def handle_starttag(self, tag, attrs):
        self.tags.append(tag)
        if tag == "code":
            self.in_code += 1
        if tag == "tr":
            self.rows.append([])
        if tag in ("td", "th") and self.rows:
            self.rows[-1].append("")
            self.in_cell = True

    def handle_endtag(self, tag):
        if tag == "code":
            self.in_code -= 1
        if tag in ("td", "th"):
            self.in_cell = False

    def handle_comment(self, data):
        self.comments.append(data)

    def handle_data(self, data):
        if not self.in_code:
            self.prose.append(data)
        if self.in_cell:
            self.rows[-1][-1] += data


def read(markdown: str) -> Reader:
    reader = Reader()
    reader.feed(MarkdownIt("commonmark", {"html": True}).enable("table").render(markdown))
    return reader


@pytest.fixture(autouse=True)
def fresh_commands(monkeypatch):
    """Each test starts as a new step does: commands on, nothing masked, the streams as pytest has them."""
    monkeypatch.setattr(github, "_resume", None)
    monkeypatch.setattr(github, "_masked", set())
    monkeypatch.delenv("GITHUB_ACTIONS", raising=False)


# -- the summary and the comment: Markdown with nothing of the attacker's ---------------------------------

@pytest.mark.parametrize("text", ATTACKS.values(), ids=ATTACKS.keys())
def test_outside_text_in_the_summary_is_text(text):
    markdown = report.markdown(hostile_outcome(text))
    seen = read(markdown)
    assert not INVISIBLE.search(markdown), markdown
    # the plan (header, two rows) and the smoke runs (header, one row): no row hidden or forged
    assert [len(row) for row in seen.rows] == [5, 5, 5, 3, 3], seen.rows
    assert seen.rows[1][0] == "create" and seen.rows[2][0] == "update"
    assert [tag for tag in seen.tags if tag == "a"] == ["a"]  # the smoke run's link, ours
    assert seen.comments == [] and not {"img", "b"} & set(seen.tags), seen.tags
    prose = "".join(seen.prose)
    assert "@mallory" not in prose and "evil.example" not in prose and "forged" not in prose, prose
    assert re.findall(r"Plan: \d+ to create", prose) == ["Plan: 1 to create"], prose
    # what the reader sees in the cells is the text itself, escapes for what cannot be seen
    assert seen.rows[1][1] == github.visible(text) and seen.rows[1][2] == github.visible(text)


@pytest.mark.parametrize("text", ATTACKS.values(), ids=ATTACKS.keys())
def test_outside_text_in_the_summary_of_problems_is_text(text):
    from register.problems import Problem
    from register.report.problems import summary

    markdown = summary([Problem("flows.yaml", 3, 5, f"work pool '{text}' does not exist", "pool"),
                        Problem(text, 0, 0, text, "input")])
    assert not INVISIBLE.search(markdown), markdown
    seen = read(markdown)
    assert [len(row) for row in seen.rows] == [4, 4, 4], seen.rows
    assert seen.comments == [] and not {"a", "img", "b"} & set(seen.tags), seen.tags
    assert "@mallory" not in "".join(seen.prose) and "evil.example" not in "".join(seen.prose)


@pytest.fixture
def github_api():
    with fake_github() as fake:
        yield fake


def pull_request(github_api, tmp_path) -> GitHub:
    event = tmp_path / "event.json"
    event.write_text(json.dumps({"pull_request": {"number": 7}}))
    return GitHub(active=True, repository="org/flows", api_url=github_api.url, token=TOKEN, sha="0123456789abcdef",
                  run_id="42", server_url="https://github.example", event_name="pull_request",
                  event_path=str(event))


def test_a_comment_by_someone_else_that_carries_the_marker_is_never_edited(github_api, tmp_path):
    mark = marker("sales", "dev")
    theirs = {"id": 1, "body": f"{mark}\nmallory's table", "user": user("mallory", 666)}
    quoted = {"id": 2, "body": f"{mark}\n{mark}", "user": {"login": "other-app[bot]", "id": 777, "type": "Bot"}}
    github_api.comments += [theirs, quoted]
    note = upsert_comment("| plan |", pull_request(github_api, tmp_path), project="sales", environment="dev")
    assert not note.warning and note.startswith("plan comment written on pull request #7"), note
    assert github_api.edited_others == [] and theirs["body"] == f"{mark}\nmallory's table"
    ours = github_api.comments[-1]
    assert ours["user"] == BOT and ours["body"].startswith(mark + "\n| plan |")

    note = upsert_comment("| plan, again |", pull_request(github_api, tmp_path), project="sales", environment="dev")
    assert note.startswith("plan comment updated"), note
    assert len(github_api.comments) == 3 and "| plan, again |" in ours["body"] and github_api.edited_others == []


def test_when_github_does_not_say_who_the_token_is_no_comment_is_edited(github_api, tmp_path):
    github_api.no_viewer = True
    github_api.comments.append({"id": 1, "body": marker("sales", "dev") + "\nold", "user": user("mallory", 666)})
    note = upsert_comment("| plan |", pull_request(github_api, tmp_path), project="sales", environment="dev")
    assert note.warning and "GitHub did not say who the token is" in note and "no earlier comment was edited" in note
    assert github_api.edited_others == [] and len(github_api.comments) == 2


def test_a_project_name_cannot_close_the_hidden_marker(github_api, tmp_path):
    upsert_comment("| plan |", pull_request(github_api, tmp_path), project="x --> @mallory <img src=x>",
                   environment="dev")
    seen = read(github_api.comments[-1]["body"])
    assert len(seen.comments) == 1 and "img" not in seen.tags and "@mallory" not in "".join(seen.prose)


@pytest.mark.parametrize("text", [ATTACKS["html-comment"], ATTACKS["forged-row"], ATTACKS["mention"]],
                         ids=["html-comment", "forged-row", "mention"])
def test_the_comment_says_only_what_flow_register_wrote(github_api, tmp_path, text):
    upsert_comment(report.markdown(hostile_outcome(text)), pull_request(github_api, tmp_path), project="sales",
                   environment="dev")
    seen = read(github_api.comments[-1]["body"])
    assert [len(row) for row in seen.rows] == [5, 5, 5, 3, 3], seen.rows
    assert len(seen.comments) == 1  # the marker
    prose = "".join(seen.prose)
    assert "@mallory" not in prose and "forged" not in prose and "hidden" not in "".join(seen.comments)


# -- masked values: redacted wherever the runner does not mask ------------------------------------------

SECRET = "pnu_s3cret\"value\\with-quote"


def test_a_masked_value_is_redacted_in_the_summary_the_comment_and_the_outputs(github_api, tmp_path, monkeypatch,
                                                                               capsys):
    """`${PREFECT_API_KEY}` in a description: masked in the log, so never in what the runner does not mask."""
    output, summary = tmp_path / "output", tmp_path / "summary.md"
    monkeypatch.setenv("GITHUB_ACTIONS", "true")
    monkeypatch.setenv("GITHUB_OUTPUT", str(output))
    monkeypatch.setenv("GITHUB_STEP_SUMMARY", str(summary))
    gh = pull_request(github_api, tmp_path)
    settings = Settings(github=dataclasses.replace(gh, output=str(output), step_summary=str(summary)))
    reporter = choose("text", settings, comment=True)
    reporter.secrets([SECRET])
    outcome = hostile_outcome(f"key={SECRET}")
    outcome.plan.actions[1].changes.append(Change("parameters", {"key": "x"}, {"key": SECRET, SECRET: 1}))
    reporter.planned(outcome)
    reporter.finished(outcome)
    assert f"::add-mask::{SECRET}" in capsys.readouterr().err.replace("%25", "%")
    written = {"summary": summary.read_text(), "outputs": output.read_text(),
               "comment": github_api.comments[-1]["body"]}
    for where, text in written.items():
        for form in (SECRET, json.dumps(SECRET)[1:-1], "s3cret"):
            assert form not in text, (where, form)
        assert "***" in text, where
    plan = json.loads(next(line for line in written["outputs"].splitlines() if line.startswith("plan="))[5:])
    assert plan["deployments"][1]["diff"]["description"]["to"] == "key=***"


def test_a_secret_of_the_job_named_as_one_is_redacted_too(tmp_path, monkeypatch):
    """`${MY_SERVICE_TOKEN}` in a description, from the job's secrets: GitHub masks it in the log only."""
    output, summary = tmp_path / "output", tmp_path / "summary.md"
    monkeypatch.setenv("GITHUB_OUTPUT", str(output))
    monkeypatch.setenv("GITHUB_STEP_SUMMARY", str(summary))
    settings = Settings(environ={"MY_SERVICE_TOKEN": "tok_0123456789", "DRY_RUN": "true"},
                        github=GitHub(output=str(output), step_summary=str(summary)))
    reporter = choose("json", settings)
    reporter.finished(hostile_outcome("tok_0123456789"))
    for text in (summary.read_text(), output.read_text()):
        assert "tok_0123456789" not in text and "***" in text
    assert "true" in output.read_text()  # a short value is no secret: `changes=true` stays


# -- the log: no line starts a workflow command flow-register did not write -----------------------------

def commands_in(output: str) -> list[str]:
    """Every line the runner would take for a workflow command, read without `::stop-commands::` (which a
    CLI in a `run:` step does not write): lines end at \\n and \\r, white space before `::` is skipped."""
    return [line.strip() for line in re.split(r"\r\n|\r|\n", output) if re.match(r"\s*(::|##\[)", line)]


OURS = re.compile(r"::(add-mask|group|endgroup|stop-commands|[0-9a-f]{32})::|"
                  r"::(error|warning|notice) (file=[^,]*,line=\d+,col=\d+,)?title=flow-register%3A [\w -]+::")


def assert_nothing_forged(output: str, *, masks: set[str] = frozenset()) -> None:
    commands = commands_in(output)
    assert all(OURS.match(line) for line in commands), [c for c in commands if not OURS.match(c)]
    for line in commands:
        assert "forged" not in line.split("::", 2)[1], line  # only in a command's escaped data, never its name
    unescape = lambda data: data.replace("%0A", "\n").replace("%0D", "\r").replace("%25", "%")  # noqa: E731
    assert {unescape(line[len("::add-mask::"):]) for line in commands if line.startswith("::add-mask::")} <= set(masks)


HOSTILE_FLOW = '''from prefect import flow


@flow(name="etl\\n::error::forged-flow\\r::add-mask::flows")
def extract(region: str = "eu"):
    pass
'''


def hostile_repository(root: Path, pool: str, project: str) -> Path:
    (root / "flows").mkdir(parents=True)
    (root / "flows" / "etl.py").write_text(HOSTILE_FLOW)
    manifest = {"version": 1, "project": project,
                "defaults": {"work_pool": {"name": pool, "type": "docker"}, "name_template": "{name}-{project}"},
                "environments": {"dev": {}},
                "deployments": [
                    {"name": "a\n::set-output name=created::99\n::error::forged-name",
                     "entrypoint": "flows/etl.py:extract", "tags": ["t\n::add-mask::forged-tag"],
                     "description": "d\n::error::forged-description"},
                    {"name": "b\r::warning::forged-cr  ##[error]x", "entrypoint": "flows/etl.py:extract"},
                    {"name": "c\n  ::error::forged-indented\n##[error]forged-v1", "entrypoint": "flows/etl.py:extract"},
                ]}
    (root / "flows.yaml").write_text(yaml.safe_dump(manifest, sort_keys=False))
    return root


def run_cli(root: Path, env: dict, *args: str) -> subprocess.CompletedProcess:
    return subprocess.run([CLI, *args], cwd=root, env=env, capture_output=True, text=True, timeout=180)


def actions_env(root: Path, api_url: str | None, **extra) -> dict:
    """A `run:` step's environment: GitHub Actions, its files, the job's secret."""
    return client_env(api_url, root / ".home", GITHUB_ACTIONS="true", GITHUB_WORKSPACE=str(root),
                      GITHUB_STEP_SUMMARY=str(root / "summary.md"), GITHUB_OUTPUT=str(root / "output"),
                      PREFECT_API_KEY="pnu_key_of_the_job", **extra)


def test_the_cli_offline_prints_no_command_of_the_manifests(tmp_path):
    """validate, render and their JSON, a usage error with a hostile value: no forged command, JSON parses."""
    root = hostile_repository(tmp_path / "repo", "pool", "forge")
    env = actions_env(root, None)
    runs = [run_cli(root, env, "validate"), run_cli(root, env, "validate", "--output", "json"),
            run_cli(root, env, "render", "-e", "dev"),
            run_cli(root, env, "render", "-e", "dev\n::error::forged-env"),
            run_cli(root, env, "validate", "--output", "x\n::error::forged-usage"),
            run_cli(root, env, "validate", "-f", "missing\n::error::forged-path.yaml")]
    for run in runs:
        assert_nothing_forged(run.stdout + run.stderr)
    assert [run.returncode for run in runs] == [0, 0, 0, 1, 2, 2], [(r.returncode, r.stderr) for r in runs]
    assert json.loads(runs[1].stdout)["valid"] is True
    rendered = json.loads(runs[2].stdout)
    assert any("::error::forged-name" in d["name"] for d in rendered["deployments"])  # the data, kept whole


def test_a_traceback_or_a_warning_prints_no_command(tmp_path):
    code = ("import sys, warnings; from register.cli import main; main(['validate', '-f', 'none.yaml']); "
            "warnings.warn('w\\n::error::forged-warning'); raise RuntimeError('boom\\n::error::forged-traceback')")
    run = subprocess.run([sys.executable, "-c", code], cwd=tmp_path, capture_output=True, text=True,
                         env={**os.environ, "GITHUB_ACTIONS": "true"}, timeout=60)
    assert run.returncode == 1 and "forged-traceback" in run.stderr and "forged-warning" in run.stderr
    assert_nothing_forged(run.stdout + run.stderr)


@pytest.mark.integration
def test_plan_and_deploy_in_a_run_step_print_no_command_of_the_manifests_or_the_servers(tmp_path, prefect_server,
                                                                                       api):
    """`flow-register plan` in a `run:` step, text and JSON, against the real server with hostile names,
    then against a server whose errors carry commands."""
    from support.registration import unique

    pool = unique("docker")
    api.create_pool(pool, "docker")
    root = hostile_repository(tmp_path / "repo", pool, unique("forge"))
    env = actions_env(root, prefect_server.api_url)
    text = run_cli(root, env, "plan", "-e", "dev")
    as_json = run_cli(root, env, "plan", "-e", "dev", "--output", "json")
    for run in (text, as_json):
        assert run.returncode == 0, run.stderr
        assert_nothing_forged(run.stdout + run.stderr, masks={"pnu_key_of_the_job"})
    assert "::set-output name=created::99" in text.stdout  # shown, as text
    plan = json.loads(as_json.stdout)
    assert [d["action"] for d in plan["deployments"]] == ["create"] * 3

    class Hostile(__import__("http.server").server.BaseHTTPRequestHandler):
        def _answer(self):
            body = json.dumps({"detail": "no\n::error::forged-server\r::add-mask::flows"}).encode()
            self.send_response(422)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        do_GET = do_POST = _answer

        def log_message(self, *args):
            pass

    with _serve(Hostile) as address:
        env = actions_env(root, f"http://{address}/api")
        failed = [run_cli(root, env, "plan", "-e", "dev"),
                  run_cli(root, env, "deploy", "-e", "dev", "--output", "json")]
    for run in failed:
        assert run.returncode != 0 and "forged-server" in run.stdout + run.stderr
        assert_nothing_forged(run.stdout + run.stderr, masks={"pnu_key_of_the_job"})


# -- exit codes ------------------------------------------------------------------------------------------

def test_every_exit_code_is_distinct_and_detailed_exitcode_gives_1_on_every_error(tmp_path):
    from register.problems import Detailed, Exit

    assert len({int(code) for code in Exit}) == len(Exit) and len({int(c) for c in Detailed}) == len(Detailed)
    env = client_env("http://127.0.0.1:9/api", tmp_path / "home")
    missing = subprocess.run([CLI, "plan", "--detailed-exitcode", "-e", "dev", "-f", "missing.yaml"], cwd=tmp_path,
                             env=env, capture_output=True, text=True)
    assert missing.returncode == 1, missing.stderr
    usage = subprocess.run([CLI, "plan", "--detailed-exitcode", "-e", "dev", "--bogus"], cwd=tmp_path, env=env,
                           capture_output=True, text=True)
    assert usage.returncode == 1, usage.stderr
    plain = subprocess.run([CLI, "plan", "-e", "dev", "-f", "missing.yaml"], cwd=tmp_path, env=env,
                           capture_output=True, text=True)
    assert plain.returncode == Exit.USAGE == 2
    readme = (ROOT / "README.md").read_text()
    for code in Exit:
        assert f"| {code:d} | {code.meaning} |" in readme


# -- the action's entry: nothing it echoes starts a command, whatever the inputs ---------------------------

def action_inputs() -> list[str]:
    return list(yaml.safe_load((ROOT / "action.yml").read_text())["inputs"])


FORMS = {"newline": "\n::error::forged-{name}", "percent": "%0A::error::forged-{name}",
         "carriage-return": "\r::error::forged-{name}  ##[error]forged"}
# Inputs that pass the entry's checks with any text, so that it goes on to echo its command line.
FREE_TEXT = ("environment", "work-pool", "cpu", "memory", "deployments", "image-tag", "preview", "prefect-api-url",
             "prefect-api-key", "prefect-api-auth-string", "registry-username", "registry-password", "aws-region",
             "github-token")
SECRET_INPUTS = ("prefect-api-key", "prefect-api-auth-string", "registry-password", "github-token")


def run_entry(root: Path, inputs: dict[str, str]) -> subprocess.CompletedProcess:
    env = {"PATH": os.environ["PATH"], "GITHUB_ACTIONS": "true", "GITHUB_WORKSPACE": str(root),
           "PREFECT_HOME": str(root / ".home"), "GITHUB_STEP_SUMMARY": str(root / "summary.md"),
           **{f"INPUT_{name.upper().replace('-', '_')}": value for name, value in inputs.items()}}
    return subprocess.run([sys.executable, str(ROOT / "entrypoint.py")], env=env, cwd=root, stdout=subprocess.PIPE,
                          stderr=subprocess.STDOUT, text=True, timeout=120)


@pytest.mark.parametrize("form", FORMS.values(), ids=FORMS.keys())
def test_no_input_makes_the_action_print_a_command(tmp_path, form):
    """Every input of action.yml carries a command: all at once (the inputs' errors are told), and those that
    pass the checks (the command line is echoed, then the engine runs and fails on the server)."""
    root = hostile_repository(tmp_path / "repo", "pool", "forge")
    everything = {name: "v" + form.format(name=name) for name in action_inputs()}
    free = {name: ("http://127.0.0.1:9/api" if name == "prefect-api-url" else "dev" if name == "environment" else "v")
            + form.format(name=name) for name in FREE_TEXT}
    for inputs in (everything, free):
        run = run_entry(root, inputs)
        assert run.returncode == 1, run.stdout
        masks = {line for name in SECRET_INPUTS for line in inputs[name].splitlines() if line.strip()}
        assert_nothing_forged(run.stdout, masks=masks)
        assert "forged-" in run.stdout  # the values are shown, as text
        summary = read((root / "summary.md").read_text())
        assert "forged" not in "".join(summary.prose) and not {"a", "img"} & set(summary.tags)
    assert "flow-register deploy --file flows.yaml --environment " in run.stdout  # the echo was reached
