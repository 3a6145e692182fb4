"""Tests as data: every valid manifest validates; every invalid one prints exactly its .expected lines."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from register.cli import main

HERE = Path(__file__).parent / "manifests"
VALID = sorted(HERE.glob("valid-*.yaml"))
INVALID = sorted(HERE.glob("invalid-*.yaml"))


def validate(capsys, monkeypatch, name: str, *extra: str):
    monkeypatch.chdir(HERE)
    code = main(["validate", "-f", name, *extra])
    out, err = capsys.readouterr()
    return code, out, err


@pytest.mark.parametrize("path", VALID, ids=lambda p: p.stem)
def test_valid_manifest_validates(path, capsys, monkeypatch):
    code, out, err = validate(capsys, monkeypatch, path.name)
    assert (code, err) == (0, "")
    assert out.startswith(f"{path.name}: valid")


@pytest.mark.parametrize("path", INVALID, ids=lambda p: p.stem)
def test_invalid_manifest_reports_exactly_its_errors(path, capsys, monkeypatch):
    code, out, err = validate(capsys, monkeypatch, path.name)
    expected = path.with_suffix(".expected").read_text().splitlines()
    reported = [line for line in err.splitlines() if line.startswith(f"{path.name}:")]
    assert code == 1
    assert reported == expected


def test_every_problem_shows_its_line_with_a_caret(capsys, monkeypatch):
    code, out, err = validate(capsys, monkeypatch, "invalid-schedules.yaml")
    lines = err.splitlines()
    at = lines.index(next(l for l in lines if "invalid cron" in l))
    assert lines[at + 1] == '   10 |       - {cron: "61 * * * *"}'
    assert lines[at + 2].index("^") == lines[at + 1].index('"61')


def test_json_output_lists_problems_with_positions(capsys, monkeypatch):
    code, out, err = validate(capsys, monkeypatch, "invalid-names.yaml", "--output", "json")
    report = json.loads(out)
    assert code == 1 and report["valid"] is False
    assert {"file": "invalid-names.yaml", "line": 14, "col": 11, "severity": "error",
            "message": "deployment name 'nightly' is already used by deployments[0]; names must be unique",
            "rule": "duplicate-name"} in report["problems"]


def test_github_annotations_under_actions(capsys, monkeypatch):
    monkeypatch.setenv("GITHUB_ACTIONS", "true")
    code, out, err = validate(capsys, monkeypatch, "invalid-duplicate-keys.yaml")
    assert "::error file=invalid-duplicate-keys.yaml,line=9,col=5,title=flow-register%3A duplicate-key::" \
           "duplicate key 'name' (first set on line 6); remove one of them" in out.splitlines()


def test_environment_must_be_declared(capsys, monkeypatch):
    code, out, err = validate(capsys, monkeypatch, "valid-minimal.yaml", "--environment", "prod")
    assert code == 1
    assert "--environment: error: environment 'prod' is not declared; the manifest declares 'dev' [environment]" in err


def test_exit_codes_as_a_user_sees_them(tmp_path):
    """Through the installed console script: 0 valid, 1 invalid, 2 usage."""
    def run(*args):
        return subprocess.run([Path(sys.executable).with_name("flow-register"), *args], cwd=HERE,
                              capture_output=True, text=True).returncode

    assert run("validate", "-f", "valid-minimal.yaml") == 0
    assert run("validate", "-f", "invalid-names.yaml") == 1
    assert run("validate", "--no-such-flag") == 2
    assert run("validate", "-f", "missing.yaml") == 2
    assert run("render", "-f", "valid-minimal.yaml") == 2  # --environment is required


def test_the_example_repository_is_valid(capsys, monkeypatch):
    monkeypatch.chdir(HERE.parents[2] / "examples")
    assert main(["validate"]) == 0


def test_step_summary_lists_the_problems_and_says_nothing_was_written(capsys, monkeypatch, tmp_path):
    summary = tmp_path / "summary.md"
    monkeypatch.setenv("GITHUB_ACTIONS", "true")
    monkeypatch.setenv("GITHUB_STEP_SUMMARY", str(summary))
    code, out, err = validate(capsys, monkeypatch, "invalid-names.yaml")
    text = summary.read_text()
    assert code == 1
    assert text.startswith("### flow-register: 4 problems, nothing was written\n")
    assert ("| invalid-names.yaml:14 | error | deployment name 'nightly' is already used by deployments[0]; "
            "names must be unique | `duplicate-name` |") in text.splitlines()
