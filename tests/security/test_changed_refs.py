"""`changed --since REF` runs git on the checkout. A pull request's author may choose the ref where a
workflow passes one from the event (a branch name, a `before` commit): no ref or path becomes an option
of git, and a ref that names no commit is an error, never an empty matrix that skips a deploy."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

from support.registration import CLI

import pytest

MANIFEST = """version: 1
project: one
defaults: {work_pool: {name: p, type: docker}}
environments: {dev: {}}
deployments:
  - {name: a, entrypoint: flows/a.py:a}
"""


@pytest.fixture
def repo(tmp_path) -> Path:
    root = tmp_path / "repo"
    (root / "flows").mkdir(parents=True)
    (root / "flows.yaml").write_text(MANIFEST)
    (root / "flows" / "a.py").write_text("from prefect import flow\n\n\n@flow\ndef a():\n    pass\n")
    for args in (["init", "-q"], ["add", "-A"], ["-c", "user.email=t@e", "-c", "user.name=t", "commit", "-qm", "i"]):
        subprocess.run(["git", "-C", str(root), *args], check=True, capture_output=True)
    return root


def changed(root: Path, *args: str) -> subprocess.CompletedProcess:
    return subprocess.run([CLI, "changed", *args], cwd=root, capture_output=True, text=True, timeout=120)


@pytest.mark.parametrize("ref", ["--output=/tmp/flow-register-owned", "-p", "--exec=touch owned",
                                 "HEAD --output=x", "main..HEAD", "HEAD\n"])
def test_a_ref_that_git_would_read_as_an_option_or_a_range_is_refused_and_writes_nothing(repo, ref, tmp_path):
    done = changed(repo, f"--since={ref}")
    assert done.returncode == 1, done
    assert "is not a git ref" in done.stderr and "[input-since]" in done.stderr
    assert done.stdout == ""  # no matrix: the workflow's deploy job does not run on a half answer
    assert not Path("/tmp/flow-register-owned").exists() and not (repo / "owned").exists()


def test_a_ref_that_names_no_commit_is_an_error_not_an_empty_matrix(repo):
    done = changed(repo, "--since", "origin/main")
    assert done.returncode == 1, done
    assert "'origin/main' names no commit" in done.stderr and "fetch-depth: 0" in done.stderr
    assert done.stdout == ""


def test_a_file_named_like_an_option_is_a_path_to_git(repo):
    """A changed file called '--output=x' is listed as a file, and makes its manifest count only if used."""
    (repo / "--output=x").write_text("not an option\n")
    (repo / "flows" / "a.py").write_text((repo / "flows" / "a.py").read_text() + "# edited\n")
    done = changed(repo, "--since", "HEAD")
    assert done.returncode == 0, done
    assert json.loads(done.stdout) == {"include": [{"manifest": "flows.yaml", "project": "one"}]}
    assert not (repo / "x").exists()
