"""A stand-in `docker` on PATH that records each call (argv, stdin) and succeeds.

Use it as a fixture: `from support.fake_docker import fake_docker` in a conftest. With
FAKE_DOCKER_ECR=1 its `push` puts a small image manifest under the pushed tag into the ECR that
boto3 reaches (moto's server), so the ECR path can run end to end without a real ECR.
"""

from __future__ import annotations

import json
import stat
import sys
from pathlib import Path

import pytest

FAKE_DOCKER = r'''#!{python}
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
elif args[:1] == ["push"] and os.environ.get("FAKE_DOCKER_ECR"):
    import boto3, re
    host, _, rest = args[1].partition("/")
    name, _, tag = rest.rpartition(":")
    m = re.match(r"(\d{12})\.dkr\.ecr\.([a-z0-9-]+)\.", host)
    manifest = {"schemaVersion": 2, "mediaType": "application/vnd.docker.distribution.manifest.v2+json",
                "config": {"mediaType": "application/vnd.docker.container.image.v1+json", "size": 1,
                           "digest": "sha256:" + "c" * 64}, "layers": []}
    boto3.client("ecr", region_name=m[2]).put_image(registryId=m[1], repositoryName=name, imageTag=tag,
                                                      imageManifest=json.dumps(manifest))
    print(f"{tag}: digest: pushed")
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
    script.write_text(FAKE_DOCKER.replace("{python}", sys.executable, 1))
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
