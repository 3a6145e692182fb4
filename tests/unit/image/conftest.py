"""A stand-in `docker` on PATH that records each call (argv and stdin) and succeeds."""

from __future__ import annotations

import json
import stat
from pathlib import Path

import pytest

FAKE_DOCKER = r'''#!/usr/bin/env python3
import json, os, sys
log = os.environ["FAKE_DOCKER_LOG"]
stdin = "" if sys.stdin is None or sys.stdin.isatty() else sys.stdin.read()
with open(log, "a") as f:
    f.write(json.dumps({"argv": sys.argv[1:], "stdin": stdin,
                        "buildkit": os.environ.get("DOCKER_BUILDKIT")}) + "\n")
args = sys.argv[1:]
if args[:1] == ["version"]:
    print("20.10.24")
elif args[:2] == ["buildx", "version"]:
    sys.exit(0 if os.environ.get("FAKE_DOCKER_BUILDX") else 1)
elif args[:2] == ["image", "inspect"]:
    sys.exit(1)
elif args[:1] == ["login"]:
    print("Login Succeeded")
'''


class FakeDocker:
    def __init__(self, log: Path):
        self.log = log

    @property
    def calls(self) -> list[dict]:
        if not self.log.exists():
            return []
        return [json.loads(line) for line in self.log.read_text().splitlines()]

    def commands(self) -> list[list[str]]:
        return [c["argv"] for c in self.calls]


@pytest.fixture
def fake_docker(tmp_path, monkeypatch) -> FakeDocker:
    bin_dir = tmp_path / "fake-bin"
    bin_dir.mkdir()
    script = bin_dir / "docker"
    script.write_text(FAKE_DOCKER)
    script.chmod(script.stat().st_mode | stat.S_IEXEC)
    log = tmp_path / "docker-calls.jsonl"
    monkeypatch.setenv("PATH", f"{bin_dir}:{__import__('os').environ['PATH']}")
    monkeypatch.setenv("FAKE_DOCKER_LOG", str(log))
    monkeypatch.delenv("FLOW_REGISTER_BUILDER", raising=False)
    monkeypatch.delenv("GITHUB_ACTIONS", raising=False)
    monkeypatch.delenv("GITHUB_SHA", raising=False)
    for name in ("REGISTRY_USERNAME", "REGISTRY_PASSWORD"):
        monkeypatch.delenv(name, raising=False)
    return FakeDocker(log)
