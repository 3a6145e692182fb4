"""Read the state of the test services started by `bash .ci/services up`.

The script writes ``$FLOW_REGISTER_SERVICES/env`` (default ``/tmp/flow-register-services/env``) as
``KEY=value`` lines: DOCKER_HOST, REGISTRY, AUTH_REGISTRY, AUTH_REGISTRY_USER,
AUTH_REGISTRY_PASSWORD, BASE_IMAGE, MOTO_URL.
"""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
from pathlib import Path

DEFAULT_STATE = "/tmp/flow-register-services"
_HINT = "run `bash .ci/services up` (as root) first"


def state_dir() -> Path:
    return Path(os.environ.get("FLOW_REGISTER_SERVICES") or DEFAULT_STATE)


def env_file() -> Path:
    return state_dir() / "env"


def _parse(text: str) -> dict[str, str]:
    env: dict[str, str] = {}
    for line in text.splitlines():
        line = line.strip()
        if not line or line.startswith("#") or "=" not in line:
            continue
        key, value = line.split("=", 1)
        env[key.strip()] = value.strip()
    return env


def _docker_answers(docker_host: str, timeout: float = 5.0) -> bool:
    """True if the engine behind a ``unix://`` DOCKER_HOST answers ``GET /_ping`` with OK."""
    if not docker_host.startswith("unix://"):
        return False
    try:
        with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as sock:
            sock.settimeout(timeout)
            sock.connect(docker_host[len("unix://") :])
            sock.sendall(b"GET /_ping HTTP/1.0\r\nHost: docker\r\n\r\n")
            reply = b""
            while chunk := sock.recv(4096):
                reply += chunk
    except OSError:
        return False
    status_line, _, rest = reply.partition(b"\r\n")
    return status_line.split()[1:2] == [b"200"] and rest.rstrip().endswith(b"OK")


def services_env() -> dict[str, str]:
    """The services' settings, after checking that the Docker engine answers.

    Raises RuntimeError, saying how to start them, if the env file is missing or the engine is down.
    """
    path = env_file()
    try:
        env = _parse(path.read_text())
    except FileNotFoundError:
        raise RuntimeError(f"test services are not running: {path} does not exist; {_HINT}") from None
    docker_host = env.get("DOCKER_HOST", "")
    if not docker_host:
        raise RuntimeError(f"{path} has no DOCKER_HOST; {_HINT}")
    if not _docker_answers(docker_host):
        raise RuntimeError(f"the Docker engine at {docker_host} (from {path}) does not answer; {_HINT}")
    return env


def docker(services: dict[str, str], *args: str, **kwargs) -> subprocess.CompletedProcess:
    """The docker CLI against the services' engine (classic builder: there is no buildx here)."""
    env = {"DOCKER_HOST": services["DOCKER_HOST"], "PATH": "/usr/local/bin:/usr/bin:/bin", "DOCKER_BUILDKIT": "0"}
    kwargs.setdefault("check", True)
    return subprocess.run(["docker", *args], env=env, capture_output=True, text=True, **kwargs)


def stand_in_docker_cli(services: dict[str, str], folder: Path, tag: str, buildx: Path | None = None) -> str:
    """An image with the Docker CLI where docker:28-cli has it (the registrar Dockerfile copies it from
    there), made from this machine's CLI since no public image can be pulled. `buildx`: a real buildx
    plugin; without one, a plugin that only refuses."""
    folder.mkdir(parents=True, exist_ok=True)
    shutil.copy2(shutil.which("docker", path="/usr/local/bin:/usr/bin"), folder / "docker")
    if buildx is not None:
        shutil.copy2(buildx, folder / "docker-buildx")
    else:
        (folder / "docker-buildx").write_text("#!/bin/sh\necho 'no buildx in this test image' >&2\nexit 1\n")
        (folder / "docker-buildx").chmod(0o755)
    (folder / "Dockerfile").write_text(
        "FROM scratch\nCOPY docker /usr/local/bin/docker\n"
        "COPY docker-buildx /usr/local/libexec/docker/cli-plugins/docker-buildx\n")
    docker(services, "build", "--quiet", "--tag", tag, str(folder), timeout=300)
    return tag
