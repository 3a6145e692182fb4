"""examples/everything: one manifest that sets up everything a flows repository needs on the Prefect side
(deployments, the automations their triggers make, variables, blocks, Cloud webhooks), the work pools
aside. It validates offline as it is and its workflow passes zizmor; tests/cloud/test_everything_example.py
deploys it end to end through the Cloud stand-in (every kind, a re-run, a secret's change, drift)."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

from support.registration import CLI, Result, client_env

EXAMPLE = Path(__file__).resolve().parents[2] / "examples" / "everything"


def cli(root: Path, api_url: str | None, *args: str, **extra: str) -> Result:
    done = subprocess.run([CLI, *args], cwd=root, capture_output=True, text=True, timeout=300,
                          env=client_env(api_url, root.parent / "home", **extra))
    return Result(done.returncode, done.stdout, done.stderr)


def test_the_example_validates_offline_as_it_is():
    checked = cli(EXAMPLE, None, "validate", SLACK_TOKEN="xoxb-test-token")
    assert checked.code == 0, checked
    assert "flows.yaml: valid (2 deployments; environments: dev, prod)" in checked.out, checked


def test_the_examples_workflow_passes_zizmor_as_the_teams_own_repository(tmp_path):
    repo = tmp_path / "payments"
    shutil.copytree(EXAMPLE, repo)
    commit = ["-c", "user.email=t@example.com", "-c", "user.name=t", "commit", "-qm", "init"]
    for args in (["init", "-q"], ["add", "-A"], commit):
        subprocess.run(["git", "-C", str(repo), *args], check=True, capture_output=True)
    audit = subprocess.run([str(Path(CLI).with_name("zizmor")), "--offline", "--format", "plain", "."], cwd=repo,
                           capture_output=True, text=True, timeout=300)
    assert audit.returncode == 0, audit.stdout + audit.stderr
    assert "completed ./.github/workflows/flows.yml" in audit.stderr, audit.stderr
