"""rollback against a real Prefect server: deploy v1, deploy v2, roll back to v1, as a user runs it.

The deploy history is Prefect artifacts on the server (register/commands/history.py); each test has a project of
its own, so its history key is its own too.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from support.registration import Project, client_env, fake_registry
from support.rollback import deploy_v1_and_v2, registered, variable_name, what_runs

pytestmark = pytest.mark.integration

ROOT = Path(__file__).resolve().parents[2]


def action(project: Project, tmp_path, **inputs: str) -> subprocess.CompletedProcess:
    """The action's entry, as the runner starts it: inputs as INPUT_* variables, GitHub's files."""
    env = client_env(None, project.home, GITHUB_WORKSPACE=str(project.root), GITHUB_ACTIONS="true",
                     GITHUB_STEP_SUMMARY=str(tmp_path / "summary.md"), GITHUB_OUTPUT=str(tmp_path / "output"),
                     INPUT_ENVIRONMENT="dev", INPUT_PREFECT_API_URL=project.api_url, **inputs)
    return subprocess.run([sys.executable, str(ROOT / "entrypoint.py")], cwd=project.root, env=env,
                          capture_output=True, text=True, timeout=180)


def test_rollback_puts_v1_back_and_a_second_rollback_writes_nothing(project, api, pool, tmp_path):
    with fake_registry() as (registry, _):
        first, second = deploy_v1_and_v2(project, pool, registry)
        v2 = {name: what_runs(d) for name, d in registered(api, project).items()}
        ids = {name: d["id"] for name, d in registered(api, project).items()}

        listed = project.cli("rollback", "-e", "dev", "--list")
        assert listed.code == 0, listed
        lines = listed.out.splitlines()
        assert lines[0].startswith("revision 2: ") and "(registered now)" in lines[0]
        assert lines[1].startswith("revision 1: ") and first.json["image"]["reference"] in lines[1]

        planned = project.cli("rollback", "-e", "dev", "--to", "1", "--dry-run", "--detailed-exitcode")
        assert planned.code == 2, planned  # something would change
        assert "update" in planned.out and "parameters" in planned.out
        # kept because a rollback prunes nothing by itself, not because the manifest lost it
        assert f"Not in the deploy rolled back to (revision 1), kept: extra-{project.name} (flow extract); " \
               "--prune deletes them" in planned.out, planned
        assert {name: what_runs(d) for name, d in registered(api, project).items()} == v2  # nothing written

        rolled = project.cli("rollback", "-e", "dev", "--to", "1", "--output", "json")
        assert rolled.code == 0, rolled
        now = registered(api, project)
        extract = now["extract"]
        assert extract["job_variables"]["image"] == first.json["image"]["reference"]
        assert extract["parameters"] == {"region": "eu"}
        assert [s["schedule"]["cron"] for s in extract["schedules"]] == ["0 6 * * *"]
        assert extract["version"] == first.json["image"]["content_tag"]
        assert {name: d["id"] for name, d in now.items()} == ids  # updated in place
        # made after revision 1: kept and listed without --prune, as a deploy keeps what the manifest lost
        assert "extra" in now and "extra" in rolled.out
        assert len(api.automations_of(extract["id"])) == 1
        variable = api.post("/variables/filter", {"variables": {"name": {"any_": [variable_name(project)]}}})
        assert variable[0]["value"] == "eu"  # the variables the revision had, too

        again = project.cli("rollback", "-e", "dev", "--to", "1", "--output", "json")
        assert again.code == 0, again
        assert again.json["requests"]["writes"] == 0
        assert {d["action"] for d in again.json["deployments"]} == {"unchanged"}

        # the rollback is a revision of its own: rolling back to revision 2 puts v2 back
        listed = project.cli("rollback", "-e", "dev", "--list")
        assert listed.out.splitlines()[0].startswith("revision 3: ") and "rollback to revision 1" in listed.out
        forward = action(project, tmp_path, INPUT_ROLLBACK="2")  # the action's rollback mode
        assert forward.returncode == 0, forward.stdout + forward.stderr
        assert "flow-register rollback --file flows.yaml --environment dev --to 2" in forward.stdout
        assert "updated" in (tmp_path / "summary.md").read_text()
        assert {name: what_runs(d) for name, d in registered(api, project).items()} == v2

        pruned = project.cli("rollback", "-e", "dev", "--to", "1", "--prune", "--output", "json")
        assert pruned.code == 0, pruned
        assert set(registered(api, project)) == {"extract", "weekly"}
