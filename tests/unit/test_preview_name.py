"""A preview's name becomes part of deployment names, tags and the deploy lease: a bad one is refused
before anything (the server included) is asked."""

from __future__ import annotations

from pathlib import Path

import pytest

from register.cli import main

EXAMPLES = Path(__file__).resolve().parents[2] / "examples"


@pytest.mark.parametrize("command", [["plan", "-e", "dev"], ["destroy", "-e", "dev"]])
@pytest.mark.parametrize("name", ["PR 7", "pr/7", "pr_7", "a" * 41])
def test_a_preview_name_that_is_not_a_slug_is_refused_offline(command, name, capsys, monkeypatch):
    monkeypatch.chdir(EXAMPLES)
    monkeypatch.setenv("PREFECT_API_URL", "http://127.0.0.1:9/api")  # never asked
    assert main([*command, "--preview", name]) == 1
    err = capsys.readouterr().err
    assert f"--preview: error: '{name}' is not a preview name: up to 40 lowercase letters" in err
    assert "cannot reach" not in err
