"""The content tag: what a user changes that Docker would see changes it; nothing else does."""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import pytest

from register.image.context import content_tag, context_paths

DOCKERFILE = "FROM prefecthq/prefect:3-python3.11\nCOPY . /opt/prefect/app\n"


@pytest.fixture
def project(tmp_path) -> Path:
    root = tmp_path / "project"
    (root / "flows").mkdir(parents=True)
    (root / "flows" / "sales.py").write_text("from prefect import flow\n\n@flow\ndef daily():\n    pass\n")
    (root / "requirements.txt").write_text("pandas==2.2.0\n")
    (root / "Dockerfile").write_text(DOCKERFILE)
    (root / ".dockerignore").write_text("# local clutter\n.git\n**/__pycache__\n*.log\n!keep.log\n")
    return root


def tag(root: Path, **kwargs) -> str:
    kwargs.setdefault("dockerfile", "Dockerfile")
    return content_tag(root, (root / kwargs["dockerfile"]).read_bytes() if kwargs["dockerfile"] else DOCKERFILE,
                       **kwargs)


def test_the_tag_is_short_stable_and_a_valid_docker_tag(project):
    first = tag(project)
    assert first == tag(project)
    assert first.startswith("ct-") and len(first) == 23
    assert all(c in "0123456789abcdef" for c in first[3:])


def test_changing_a_flow_changes_the_tag(project):
    before = tag(project)
    (project / "flows" / "sales.py").write_text("from prefect import flow\n\n@flow\ndef daily():\n    return 1\n")
    assert tag(project) != before


@pytest.mark.parametrize("change", [
    lambda root: (root / "flows" / "new.py").write_text("x = 1\n"),
    lambda root: (root / "flows" / "sales.py").unlink(),
    lambda root: (root / "flows" / "sales.py").rename(root / "flows" / "renamed.py"),
    lambda root: (root / "data").mkdir(),
    lambda root: (root / "requirements.txt").write_text("pandas==2.2.1\n"),
    lambda root: (root / "keep.log").write_text("re-included by !keep.log\n"),
    lambda root: (root / ".dockerignore").write_text(".git\n"),  # __pycache__ and *.log come back
], ids=["file added", "file removed", "file renamed", "empty folder added", "requirements changed",
        "re-included file", "dockerignore changed"])
def test_what_docker_sends_decides_the_tag(project, change):
    (project / "flows" / "__pycache__").mkdir()
    (project / "flows" / "__pycache__" / "sales.cpython-311.pyc").write_bytes(b"\0\1")
    before = tag(project)
    change(project)
    assert tag(project) != before


@pytest.mark.parametrize("change", [
    lambda root: (root / ".git").mkdir(),
    lambda root: (root / "run.log").write_text("ignored by *.log\n"),
    lambda root: (root / "flows" / "__pycache__").mkdir() or (root / "flows" / "__pycache__" / "x.pyc").write_bytes(b"1"),
    lambda root: os.utime(root / "flows" / "sales.py", (1, 1)),
    lambda root: os.chmod(root / "flows" / "sales.py", 0o600),
], ids=["ignored folder", "ignored file", "ignored nested pattern", "timestamps", "non-executable mode bits"])
def test_what_docker_does_not_send_leaves_the_tag_alone(project, change):
    before = tag(project)
    change(project)
    assert tag(project) == before


def test_the_executable_bit_counts(project):
    before = tag(project)
    os.chmod(project / "flows" / "sales.py", 0o755)
    assert tag(project) != before


def test_a_symlink_counts_by_its_target(project):
    (project / "current.py").symlink_to("flows/sales.py")
    before = tag(project)
    (project / "current.py").unlink()
    (project / "current.py").symlink_to("flows/other.py")
    assert tag(project) != before


def test_the_dockerfile_text_counts_wherever_it_lives(project, tmp_path):
    before = tag(project)
    (project / "Dockerfile").write_text(DOCKERFILE + "ENV MODE=prod\n")
    assert tag(project) != before
    # A Dockerfile outside the context counts by its text too.
    outside = content_tag(project, DOCKERFILE, dockerfile=None)
    assert outside != content_tag(project, DOCKERFILE + "# another\n", dockerfile=None)


def test_the_dockerfile_is_always_sent_even_if_ignored(project):
    (project / ".dockerignore").write_text("Dockerfile\n")
    assert "Dockerfile" in context_paths(project, dockerfile="Dockerfile")


def test_build_args_count_but_not_their_order(project):
    base = tag(project, build_args={"A": "1", "B": "2"})
    assert tag(project, build_args={"B": "2", "A": "1"}) == base
    assert tag(project, build_args={"A": "1", "B": "3"}) != base
    assert tag(project, build_args={"A": "1"}) != base
    # YAML's true reaches docker as "true", the same as the string.
    assert tag(project, build_args={"FLAG": True}) == tag(project, build_args={"FLAG": "true"})


def test_the_platform_counts(project):
    assert tag(project, platform="linux/amd64") != tag(project, platform="linux/arm64")
    assert tag(project, platform="linux/amd64") != tag(project)


def test_the_same_tree_elsewhere_has_the_same_tag(project, tmp_path):
    copy = tmp_path / "elsewhere" / "checkout"
    shutil.copytree(project, copy, symlinks=True)
    assert tag(copy) == tag(project)


def test_our_own_exclusions_leave_the_tag_alone(project):
    before = tag(project)
    (project / ".flow-register").mkdir()
    (project / ".flow-register" / "Dockerfile").write_text("FROM x\n")
    assert tag(project, exclude=(".flow-register",)) == before


def test_context_paths_match_docker_py_reference(project):
    (project / "flows" / "__pycache__").mkdir()
    (project / "flows" / "__pycache__" / "sales.pyc").write_bytes(b"1")
    (project / "a.log").write_text("")
    (project / "keep.log").write_text("")
    assert context_paths(project, dockerfile="Dockerfile") == [
        ".dockerignore", "Dockerfile", "flows", "flows/sales.py", "keep.log", "requirements.txt"]


def test_a_new_commit_that_changes_no_file_leaves_the_tag_alone(project):
    import subprocess

    (project / ".dockerignore").unlink()  # even without a .dockerignore, .git never counts
    git = ["git", "-C", str(project), "-c", "user.name=t", "-c", "user.email=t@example.com"]
    subprocess.run([*git, "init", "-q"], check=True)
    subprocess.run([*git, "add", "-A"], check=True)
    subprocess.run([*git, "commit", "-qm", "one"], check=True)
    before = tag(project)
    subprocess.run([*git, "commit", "-q", "--allow-empty", "-m", "two"], check=True)
    assert tag(project) == before
