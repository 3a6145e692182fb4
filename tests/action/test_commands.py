"""No input or manifest text can start a workflow command of its own: each command's data and
properties are escaped as GitHub's toolkit escapes them, and the registrar turns the runner's
command reading off for everything else it prints. The output is read here the way the runner
reads it (one stream, `::stop-commands::TOKEN` ... `::TOKEN::`)."""

from __future__ import annotations

import os
import re
import subprocess
import sys

import pytest
from support.action_repos import ROOT

from register.problems import Problem
from register.report import github

FORGED = ["::error::forged", "::set-output name=created::99", "::add-mask::flows", "::stop-commands::x",
          "::warning file=flows.yaml,line=1::forged"]


def runner_reads(output: str) -> list[tuple[str, str]]:
    """(command, data) of every workflow command the runner would act on, as it parses a step's log."""
    found, resume = [], None
    for line in output.splitlines():
        match = re.match(r"::([\w-]+)( [^:]*)?::(.*)$", line.lstrip())
        if not match:
            continue
        name, data = match.group(1), match.group(3)
        if resume is not None:
            if name == resume:
                resume = None
            continue
        if name == "stop-commands":
            resume = data
            continue
        found.append((name, data.replace("%0A", "\n").replace("%0D", "\r").replace("%25", "%")))
    return found


@pytest.fixture(autouse=True)
def fresh_commands(monkeypatch):
    monkeypatch.setattr(github, "_resume", None)
    monkeypatch.setattr(github, "_masked", set())
    github.use(github.Context(active=True))  # as the CLI or the action's entry sets it under GitHub Actions


@pytest.mark.parametrize("forged", FORGED)
def test_a_command_keeps_its_text_inside_it(forged):
    text = f"environment 'dev\n{forged}\r\n{forged}' is not declared"
    lines = [github.error(text, title=f"x\n{forged}"), github.warning(text, title="t"),
             github.annotation(Problem(f"f,low:s\n{forged}.yaml", 3, 1, text, "rule")), github.command("group", text)]
    for line in lines:
        assert len(line.splitlines()) == 1
        ((name, data),) = runner_reads(line)
        assert data == text


def test_with_commands_off_only_the_registrars_own_commands_are_read(capsys):
    github.mask("s3cret", stream=sys.stdout)
    github.commands_off()
    print(f"text from a manifest\n{FORGED[0]}\n{FORGED[1]}")
    print(github.error("bad\n::add-mask::x", title="flow-register: t"))
    with github.group("Apply", stream=sys.stdout):
        print(FORGED[3].replace("x", "another"))
        print(FORGED[2])
    assert runner_reads(capsys.readouterr().out) == [("add-mask", "s3cret"), ("error", "bad\n::add-mask::x"),
                                                     ("group", "Apply"), ("endgroup", "")]


MANIFEST = """version: 1
project: forge
environments:
  dev: {work_pool: {name: pool, type: docker}}
ENVIRONMENT
deployments:
  - name: "hello\\n::set-output name=created::99\\n::add-mask::flows"
    entrypoint: flows/hello.py:hello
"""
FORGED_ENVIRONMENT = '  "dev\\n::error::forged-env\\n::stop-commands::x": {work_pool: {name: pool, type: docker}}'


@pytest.mark.parametrize("environment, inputs, printed", [
    (FORGED_ENVIRONMENT, {"INPUT_ENVIRONMENT": "dev\n::error::forged-input\n::add-mask::dev",
                          "INPUT_CPU": "1\n::error::forged-cpu"}, "::error::forged-env"),
    ("", {"INPUT_ENVIRONMENT": "dev", "INPUT_DEPLOYMENTS": "nope\n::warning::forged-only"},
     "::set-output name=created::99"),
], ids=["environment", "deployment-name"])
def test_nothing_is_forged_through_an_input_or_the_manifest(tmp_path, environment, inputs, printed):
    """The registrar as a step runs it (one stream): an environment name, a deployment name and input
    values that carry commands; the runner acts on the masks and flow-register's annotations only."""
    (tmp_path / "flows").mkdir()
    (tmp_path / "flows" / "hello.py").write_text("from prefect import flow\n\n@flow\ndef hello():\n    pass\n")
    (tmp_path / "flows.yaml").write_text(MANIFEST.replace("ENVIRONMENT", environment))
    env = {"PATH": os.environ["PATH"], "GITHUB_ACTIONS": "true", "GITHUB_WORKSPACE": str(tmp_path),
           "INPUT_PREFECT_API_URL": "http://127.0.0.1:9/api", "INPUT_PREFECT_API_KEY": "pnu_key",
           "PREFECT_HOME": str(tmp_path / "home"), **inputs}
    run = subprocess.run([sys.executable, str(ROOT / "entrypoint.py")], env=env, cwd=tmp_path,
                         stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, timeout=120)
    assert run.returncode == 1, run.stdout
    assert f"\n\\{printed}" in run.stdout  # printed at the start of a line, as text after a backslash
    read = runner_reads(run.stdout)
    assert [name for name, _ in read if name != "error"] == ["add-mask"], read
    assert ("add-mask", "pnu_key") in read
    errors = [data for name, data in read if name == "error"]
    assert errors and all("forged" not in data.splitlines()[0] for data in errors), errors
