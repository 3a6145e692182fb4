"""What the action tests share beyond their fixtures (tests/action/conftest.py): where the checkout's parts
are, the work pools, a flows repository committed as a team's own, and the deployments a run left."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import httpx

ROOT = Path(__file__).resolve().parents[2]
EXAMPLES = ROOT / "examples"
TEST_WORKFLOWS = ROOT / "tests" / "action" / "workflows"
BIN = Path(sys.executable).parent
REGISTRAR_IMAGE = "flow-register-test/action:local"
DOCKER_CLI_IMAGE = "flow-register-test/docker-cli:local"

# The pools the tests register into; a platform team provisions them, here the tests do.
POOLS = {"act-ecs": "ecs", "act-docker": "docker", "dev-docker": "docker"}


# What GitHub downloads for `uses: org/flow-register@v1`: the action's files at that tag.
ACTION_FILES = ("action.yml", "entrypoint.py", "Dockerfile", ".dockerignore", "pyproject.toml", "uv.lock",
                "registrar", "README.md", "register", "schemas")


def git_repository(path: Path) -> Path:
    """Commit `path` as a repository of its own, as a team's repository would be."""
    git = ["git", "-c", "user.name=test", "-c", "user.email=test@example.com", "-c", "init.defaultBranch=main"]
    subprocess.run([*git, "init", "-q", str(path)], check=True)
    subprocess.run([*git, "-C", str(path), "add", "-A"], check=True)
    subprocess.run([*git, "-C", str(path), "commit", "-q", "-m", "flows"], check=True)
    return path


def add_test_workflows(root: Path) -> None:
    """tests/action/workflows/*.yml into the repository's .github/workflows, beside its own."""
    target = root / ".github" / "workflows"
    target.mkdir(parents=True, exist_ok=True)
    for workflow in sorted(TEST_WORKFLOWS.glob("*.yml")):
        shutil.copy(workflow, target / f"test-{workflow.name}")


def deployments_on(api_url: str, project: str, environment: str) -> list[dict]:
    """What the server has for one project and environment, by the ownership tags."""
    body = {"deployments": {"tags": {"all_": ["managed-by:flow-register", f"project:{project}",
                                              f"environment:{environment}"]}}}
    response = httpx.post(f"{api_url}/deployments/filter", json=body, timeout=30)
    response.raise_for_status()
    return response.json()
