"""A deployment that clones a branch or tag: its `version` names the commit the ref points at when deployed,
so a deploy after the branch moved is an update, not "unchanged" (issue 22, item 5)."""

from __future__ import annotations

import json
import os
import signal
import subprocess
from pathlib import Path

import pytest

from register.cli import main
from devtools.local_server import free_port

FLOW = (Path(__file__).parent / "manifests" / "flows" / "etl.py").read_text()

MANIFEST = """\
version: 1
project: etl
defaults:
  work_pool: {{name: pool, type: process}}
  code:
    git: {{repository: "{repository}", ref: {ref}}}
environments:
  dev: {{}}
deployments:
  - name: nightly
    entrypoint: flows/etl.py:nightly
    parameters: {{region: eu}}
"""


def git(root: Path, *args: str) -> str:
    return subprocess.run(["git", "-C", str(root), "-c", "user.name=t", "-c", "user.email=t@t", *args],
                          check=True, capture_output=True, text=True).stdout.strip()


def version(capsys, manifest: Path) -> str | None:
    assert main(["render", "-f", str(manifest), "-e", "dev"]) == 0
    return json.loads(capsys.readouterr().out)["deployments"][0]["version"]


@pytest.fixture
def served(tmp_path):
    """A repository served by `git daemon` on loopback; yields (its working copy, its URL)."""
    work, served = tmp_path / "work", tmp_path / "served"
    work.mkdir()
    served.mkdir()
    (work / "README").write_text("v1\n")
    git(work, "init", "-q", "-b", "main")
    git(work, "add", ".")
    git(work, "commit", "-qm", "v1")
    git(work, "tag", "-a", "v1.0", "-m", "release")
    subprocess.run(["git", "clone", "-q", "--bare", str(work), str(served / "flows.git")], check=True)
    git(work, "remote", "add", "origin", str(served / "flows.git"))
    port = free_port()
    daemon = subprocess.Popen(["git", "daemon", "--reuseaddr", "--export-all", f"--base-path={served}",
                               "--listen=127.0.0.1", f"--port={port}", str(served)],
                              stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True)
    try:
        import time
        for _ in range(50):
            if subprocess.run(["git", "ls-remote", f"git://127.0.0.1:{port}/flows.git"],
                              capture_output=True).returncode == 0:
                break
            time.sleep(0.1)
        yield work, f"git://127.0.0.1:{port}/flows.git"
    finally:
        os.killpg(daemon.pid, signal.SIGTERM)
        daemon.wait(timeout=30)


def project(tmp_path: Path, repository: str, ref: str) -> Path:
    root = tmp_path / "project"
    (root / "flows").mkdir(parents=True, exist_ok=True)
    (root / "flows" / "etl.py").write_text(FLOW)
    (root / "flows.yaml").write_text(MANIFEST.format(repository=repository, ref=ref))
    return root / "flows.yaml"


def test_a_moving_branch_moves_the_version(tmp_path, capsys, served):
    work, url = served
    manifest = project(tmp_path, url, "main")
    first = version(capsys, manifest)
    assert first == f"main@{git(work, 'rev-parse', 'HEAD')[:12]}"
    (work / "README").write_text("v2\n")
    git(work, "commit", "-qam", "v2")
    git(work, "push", "-q", "origin", "main")
    second = version(capsys, manifest)
    assert second != first and second == f"main@{git(work, 'rev-parse', 'HEAD')[:12]}"


def test_a_tag_names_its_commit_not_the_tag_object(tmp_path, capsys, served):
    work, url = served
    manifest = project(tmp_path, url, "v1.0")
    assert version(capsys, manifest) == f"v1.0@{git(work, 'rev-parse', 'v1.0^{commit}')[:12]}"


def test_a_ref_that_cannot_be_asked_leaves_no_version(tmp_path, capsys):
    port = free_port()  # nothing listens there
    manifest = project(tmp_path, f"git://127.0.0.1:{port}/flows.git", "main")
    assert version(capsys, manifest) is None
