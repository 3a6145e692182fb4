"""zizmor finds nothing in the action, its workflows, the test workflows, or the example repository's
workflows (audited as the team's own repository, with its own zizmor.yml)."""

from __future__ import annotations

import json
import re
import shutil
import subprocess
import sys
from pathlib import Path

from support.action_repos import EXAMPLES, ROOT, TEST_WORKFLOWS, git_repository

ZIZMOR = Path(sys.executable).with_name("zizmor")


def zizmor(*inputs: Path | str, cwd: Path) -> tuple[list[dict], str]:
    process = subprocess.run([str(ZIZMOR), "--offline", "--format", "json", *map(str, inputs)], cwd=cwd,
                             capture_output=True, text=True, timeout=300)
    assert process.returncode in (0, 10, 11, 12, 13, 14), process.stderr  # 1x: findings of some severity
    return json.loads(process.stdout or "[]"), process.stderr


def audited(log: str) -> set[str]:
    return {Path(line.rsplit(" ", 1)[-1]).name for line in log.splitlines() if "completed" in line}


def describe(findings: list[dict]) -> str:
    return "\n".join(f"{f['ident']}: {f['desc']} at {loc['symbolic']['key']['Local']['verbatim_path']}:"
                     f"{loc['concrete']['location']['start_point']['row'] + 1}"
                     for f in findings for loc in f["locations"][-1:])


def test_the_action_and_its_workflows():
    workflows = sorted(TEST_WORKFLOWS.glob("*.yml"))
    findings, log = zizmor(".", *(w.relative_to(ROOT) for w in workflows), cwd=ROOT)
    assert findings == [], describe(findings)
    assert {"action.yml", "ci.yml", "release.yml", "register.yml", "docker-action.yml"} <= audited(log), log


def test_the_example_repository_as_a_team_would_have_it(tmp_path):
    repo = tmp_path / "flows"
    shutil.copytree(EXAMPLES, repo, ignore=shutil.ignore_patterns("__pycache__"))
    git_repository(repo)
    findings, log = zizmor(".", cwd=repo)
    assert findings == [], describe(findings)
    expected = {p.name for p in (EXAMPLES / ".github" / "workflows").glob("*.yml")}
    assert len(expected) >= 5 and expected <= audited(log), log


def test_the_readmes_complete_workflow(tmp_path):
    readme = (ROOT / "README.md").read_text()
    workflow = re.search(r"## A complete workflow.*?```yaml\n(.*?)```", readme, re.S).group(1)
    repo = tmp_path / "flows"
    (repo / ".github" / "workflows").mkdir(parents=True)
    (repo / ".github" / "workflows" / "flows.yml").write_text(workflow)
    shutil.copy(EXAMPLES / ".github" / "zizmor.yml", repo / ".github" / "zizmor.yml")
    git_repository(repo)
    findings, log = zizmor(".", cwd=repo)
    assert findings == [], describe(findings)
    assert "flows.yml" in audited(log), log


def test_the_monorepo_example_as_a_team_would_have_it(tmp_path):
    repo = tmp_path / "pipelines"
    shutil.copytree(EXAMPLES / "monorepo", repo, ignore=shutil.ignore_patterns("__pycache__"))
    git_repository(repo)
    findings, log = zizmor(".", cwd=repo)
    assert findings == [], describe(findings)
    assert "deploy.yml" in audited(log), log
