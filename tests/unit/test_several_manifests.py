"""validate over several manifests (offline): each is checked from its own folder, a glob that matches
nothing is a usage error, and two manifests of one project are refused at the second's project line."""

from __future__ import annotations

import json
import shutil
import subprocess
from pathlib import Path

from support.registration import CLI

EXAMPLE = Path(__file__).resolve().parents[2] / "examples" / "monorepo"


def validate(root: Path, *args: str) -> subprocess.CompletedProcess:
    return subprocess.run([CLI, "validate", *args], cwd=root, capture_output=True, text=True, timeout=120)


def test_each_manifest_is_valid_from_its_own_folder(tmp_path):
    root = shutil.copytree(EXAMPLE, tmp_path / "repo")
    done = validate(root, "-f", "pipelines/*/flows.yaml")
    assert done.returncode == 0, done.stderr
    assert done.stdout.splitlines() == [
        f"pipelines/{p}/flows.yaml: valid (project {p}: 1 deployment; environments: dev)"
        for p in ("reports", "sales", "stock")]


def test_a_glob_that_matches_nothing_is_a_usage_error(tmp_path):
    done = validate(tmp_path, "-f", "pipelines/*/flows.yaml")
    assert done.returncode == 2
    assert "'pipelines/*/flows.yaml' matches no manifest file" in done.stderr


def test_two_manifests_of_one_project_are_refused_at_the_project_line(tmp_path):
    root = shutil.copytree(EXAMPLE, tmp_path / "repo")
    stock = root / "pipelines" / "stock" / "flows.yaml"
    stock.write_text(stock.read_text().replace("project: stock", "project: sales"))
    done = validate(root, "--output", "json", "-f", "pipelines/sales/flows.yaml,pipelines/stock/flows.yaml")
    assert done.returncode == 1
    assert "pipelines/stock/flows.yaml:3:10: error: project 'sales' is also the project of " \
           "pipelines/sales/flows.yaml; give each manifest a project of its own [project-twice]" in done.stderr
    assert json.loads(done.stdout)["valid"] is False
