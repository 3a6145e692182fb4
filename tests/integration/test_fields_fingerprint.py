"""What an earlier version registered reads as unchanged, and a hand edit of it as drift, also after a field is
added: on a real Prefect server, deployments written with version 1's fingerprint (the code of flow-register
before the fields were declared, kept here) are planned by a flow-register whose declaration
(register/prefect/fields.py) has one field more."""

from __future__ import annotations

import hashlib
import json

import pytest

from register.prefect import fields
from register.cli import main
from register.engine.desired import STATE_LABEL, State
from support.registration import Project

pytestmark = pytest.mark.integration

# A field a later version might add (Prefect's DeploymentCreate has none of this name: it is never sent)
RETRIES = fields.Field("retries", None, desired=lambda i: None, read=lambda raw, _: None)


@pytest.fixture
def project(project) -> Project:
    """The base project, its weekly deployment with a description and paused (fields version 1 had)."""
    project.manifest["deployments"][1].update(description="weekly report", paused=True)
    project.write()
    return project


def version_1_fingerprint(state: State) -> str:
    """desired.State.fingerprint as flow-register wrote it before the fields were declared (main at ac00e5d)."""
    # version 1's states had its fields only (a field added since, like slas, was not there)
    held = {k: v for k, v in state.fields.items() if k in fields.VERSION_1}
    return hashlib.sha256(json.dumps(held, sort_keys=True).encode()).hexdigest()[:16]


def in_process(project: Project, monkeypatch, capsys, command: str) -> dict:
    monkeypatch.chdir(project.root)
    monkeypatch.setenv("PREFECT_API_URL", project.api_url)
    monkeypatch.setenv("PREFECT_HOME", str(project.home))
    monkeypatch.setenv("PREFECT_SERVER_EPHEMERAL_ENABLED", "false")
    capsys.readouterr()
    code = main([command, "-e", "dev", "--output", "json"])
    out = capsys.readouterr().out
    assert code == 0, out
    return {d["name"].removesuffix(f"-{project.name}"): d for d in json.loads(out)["deployments"]}


def test_a_field_added_later_leaves_earlier_writes_unchanged_and_their_hand_edits_drift(project, api, monkeypatch,
                                                                                         capsys):
    with monkeypatch.context() as old:
        old.setattr(State, "fingerprint", version_1_fingerprint)
        first = in_process(project, monkeypatch, capsys, "deploy")
    assert {d["action"] for d in first.values()} == {"create"}
    written = api.deployments(f"project:{project.name}")
    labels = {name: d["labels"][STATE_LABEL] for name, d in written.items()}
    assert len(labels) == 2 and all(labels.values())

    monkeypatch.setattr(fields, "FIELDS", fields.FIELDS + (RETRIES,))
    monkeypatch.setattr(fields, "BY_NAME", {**fields.BY_NAME, "retries": RETRIES})
    planned = in_process(project, monkeypatch, capsys, "plan")
    assert {name: d["action"] for name, d in planned.items()} == {"extract": "unchanged", "weekly": "unchanged"}

    # a person edits one on the server: the plan with the new field tells it from a manifest change
    weekly = written[f"weekly-{project.name}"]
    response = api.http.patch(f"/deployments/{weekly['id']}", json={"description": "edited by hand"})
    assert response.status_code == 204, response.text
    planned = in_process(project, monkeypatch, capsys, "plan")
    assert planned["weekly"]["action"] == "update"
    assert any("drift" in note for note in planned["weekly"].get("notes", [])), planned["weekly"]
    assert planned["extract"]["action"] == "unchanged"
