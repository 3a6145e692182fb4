"""The Docker CLI: log in, build (buildx when present, the classic builder otherwise), push.

Build and push output streams to the log as it comes, folded under GitHub Actions. A password
reaches Docker on stdin only, so it never shows in a process list or an error message, and `docker
login` writes it into a Docker config of the run's own (`private_config`), removed when the image stage
ends: nothing of it stays in the user's `~/.docker/config.json` or a credential store.

Every `docker` process runs with the variables of the run's settings (`private_config(environ)`, or
`environ` given to a call made outside it), never this process's own.
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import subprocess
import tempfile
from collections import deque
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

from register.image.context import build_arg_value

# FLOW_REGISTER_BUILDER=classic|buildx forces a builder (e.g. to reproduce a runner without buildx).
BUILDER_VARIABLE = "FLOW_REGISTER_BUILDER"


class DockerError(Exception):
    """A Docker command failed; the message says which and its last lines (never a secret)."""


@dataclass
class Build:
    context: str
    dockerfile: str
    tags: list[str]
    build_args: dict = field(default_factory=dict)
    platform: str | None = None
    labels: dict = field(default_factory=dict)
    cache_scope: str | None = None  # the GitHub Actions cache scope (buildx under Actions only)


def docker_binary() -> str:
    found = shutil.which("docker")
    if not found:
        raise DockerError("the Docker CLI (`docker`) is not on PATH; install Docker to build the image")
    return found


_CONFIG: str | None = None  # DOCKER_CONFIG of the run's own, while private_config() is open
_ENVIRON: Mapping[str, str] | None = None  # the run's variables, while private_config() is open


@contextlib.contextmanager
def private_config(environ: Mapping[str, str]):
    """Every Docker command inside runs with `environ` (the run's settings) and a Docker config folder of its
    own, removed at the end: a copy of the user's (so its logins and credential helpers still serve other
    registries, a private base image's included), in which `login` writes into the file, never into a
    credential store."""
    global _CONFIG, _ENVIRON
    if _CONFIG is not None:
        yield
        return
    home = environ.get("HOME")
    user = Path(environ.get("DOCKER_CONFIG") or (Path(home) if home else Path.home()) / ".docker") / "config.json"
    try:
        config = json.loads(user.read_text())
        if not isinstance(config, dict):
            config = {}
    except (OSError, ValueError):
        config = {}
    with tempfile.TemporaryDirectory(prefix="flow-register-docker-") as folder:
        fd = os.open(Path(folder) / "config.json", os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "w") as out:
            json.dump(config, out)
        _CONFIG, _ENVIRON = folder, environ
        try:
            yield
        finally:
            _CONFIG, _ENVIRON = None, None


def _env(extra: dict | None = None, environ: Mapping[str, str] | None = None) -> dict:
    """The variables of a `docker` process: `environ`, or private_config's, with its config folder."""
    base = environ if environ is not None else _ENVIRON
    if base is None:
        raise RuntimeError("a docker command outside private_config() needs the run's environ")
    return {**base, **({"DOCKER_CONFIG": _CONFIG} if _CONFIG else {}), **(extra or {})}


def _run(args: list[str], *, input: str | None = None, env: dict | None = None, timeout: float | None = None,
         environ: Mapping[str, str] | None = None):
    return subprocess.run([docker_binary(), *args], input=input, capture_output=True, text=True,
                          env=env or _env(environ=environ), timeout=timeout)


def _stream(args: list[str], *, what: str, env: dict | None = None, out) -> None:
    """Run `docker ARGS`, copying its output to `out` (the image stage's events) line by line; raise
    DockerError on failure."""
    tail: deque[str] = deque(maxlen=15)
    process = subprocess.Popen([docker_binary(), *args], stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                               stdin=subprocess.DEVNULL, text=True, errors="replace", bufsize=1,
                               env=env or _env())
    assert process.stdout is not None
    for line in process.stdout:
        out.write(line)
        tail.append(line.rstrip("\n"))
    out.flush()
    if process.wait() != 0:
        last = "\n  ".join(tail)
        raise DockerError(f"{what} failed (docker exit {process.returncode}); its last lines:\n  {last}")


def daemon_answers(environ: Mapping[str, str] | None = None) -> str | None:
    """None if the engine answers; else why not (one line)."""
    try:
        out = _run(["version", "--format", "{{.Server.Version}}"], timeout=30, environ=environ)
    except subprocess.TimeoutExpired:
        return "the Docker engine did not answer within 30 s"
    if out.returncode != 0:
        lines = (out.stderr or out.stdout).strip().splitlines()
        return lines[-1] if lines else f"docker version exited {out.returncode}"
    return None


def has_buildx() -> bool:
    forced = _env().get(BUILDER_VARIABLE, "").strip().lower()
    if forced in ("classic", "buildx"):
        return forced == "buildx"
    try:
        return _run(["buildx", "version"], timeout=30).returncode == 0
    except subprocess.TimeoutExpired:
        return False


def buildx_driver() -> str | None:
    out = _run(["buildx", "inspect"], timeout=60)
    for line in out.stdout.splitlines():
        key, _, value = line.partition(":")
        if key.strip() == "Driver":
            return value.strip()
    return None


def gha_cache_available() -> tuple[bool, str]:
    """Whether buildx can use GitHub's cache here, and if not, why (for the log)."""
    environ = _env()
    if environ.get("GITHUB_ACTIONS") != "true":
        return False, "not under GitHub Actions"
    if not environ.get("ACTIONS_RUNTIME_TOKEN") or not (
            environ.get("ACTIONS_CACHE_URL") or environ.get("ACTIONS_RESULTS_URL")):
        return False, ("ACTIONS_RUNTIME_TOKEN / ACTIONS_CACHE_URL are not exposed to this step "
                       "(run flow-register as a Docker action, or expose them with crazy-max/ghaction-github-runtime)")
    driver = buildx_driver()
    if driver == "docker":
        return False, "the buildx builder uses the `docker` driver, which cannot export a cache (use docker/setup-buildx-action)"
    return True, ""


def login(server: str, username: str, password: str) -> None:
    """`docker login SERVER --username U --password-stdin`: the password goes on stdin, not in argv; inside
    `private_config`, into that config's file (a credential store would keep it for good)."""
    if _CONFIG is not None:
        path = Path(_CONFIG) / "config.json"
        config = json.loads(path.read_text())
        if config.pop("credsStore", None) or server in (config.get("credHelpers") or {}):
            (config.get("credHelpers") or {}).pop(server, None)
            path.write_text(json.dumps(config))
    out = _run(["login", server, "--username", username, "--password-stdin"], input=password + "\n", timeout=120)
    if out.returncode != 0:
        message = (out.stderr or out.stdout).strip().replace(password, "***")
        raise DockerError(f"docker login to {server} as {username} failed: {message.splitlines()[-1] if message else ''}")


def image_exists(reference: str, environ: Mapping[str, str] | None = None) -> bool:
    return _run(["image", "inspect", "--format", "{{.Id}}", reference], timeout=60, environ=environ).returncode == 0


def _common_args(build: Build) -> list[str]:
    args = ["--file", build.dockerfile]
    for tag in build.tags:
        args += ["--tag", tag]
    for name, value in sorted(build.build_args.items()):
        args += ["--build-arg", f"{name}={build_arg_value(value)}"]
    for name, value in sorted(build.labels.items()):
        args += ["--label", f"{name}={value}"]
    if build.platform:
        args += ["--platform", build.platform]
    return args


def build_classic(build: Build, *, out) -> None:
    _stream(["build", *_common_args(build), build.context], what="docker build", env=_env({"DOCKER_BUILDKIT": "0"}),
            out=out)


def build_buildx(build: Build, *, push: bool, gha_cache: bool, out) -> set[str]:
    """One buildx build; with `push`, it pushes every tag itself (one upload, no local copy needed). Returns the
    digest buildx pushed (from its metadata file), when it says."""
    with tempfile.TemporaryDirectory(prefix="flow-register-buildx-") as folder:
        metadata = Path(folder) / "metadata.json"
        args = ["buildx", "build", "--progress", "plain", *_common_args(build), "--push" if push else "--load",
                "--metadata-file", str(metadata)]
        if gha_cache:
            scope = build.cache_scope or "flow-register"
            args += ["--cache-from", f"type=gha,scope={scope}", "--cache-to", f"type=gha,mode=max,scope={scope}"]
        _stream([*args, build.context], what="docker buildx build", out=out)
        try:
            digest = json.loads(metadata.read_text()).get("containerimage.digest")
        except (OSError, ValueError, AttributeError):
            return set()
    return {digest} if isinstance(digest, str) and digest.startswith("sha256:") else set()


def pushed_digests(reference: str, repository: str) -> set[str]:
    """The digests under which the engine pushed the image `reference` names to `repository` (its RepoDigests)."""
    out = _run(["image", "inspect", "--format", "{{json .RepoDigests}}", reference], timeout=60)
    if out.returncode != 0:
        return set()
    try:
        found = json.loads(out.stdout)
    except ValueError:
        return set()
    return {d.split("@", 1)[1] for d in found or [] if isinstance(d, str) and d.startswith(f"{repository}@")}


def tag(source: str, target: str) -> None:
    out = _run(["tag", source, target], timeout=60)
    if out.returncode != 0:
        raise DockerError(f"docker tag {source} {target} failed: {out.stderr.strip()}")


def push(reference: str, *, out) -> None:
    _stream(["push", reference], what=f"docker push {reference}", out=out)


def pull(reference: str, *, out) -> None:
    """Pull `reference` (repository@sha256:...: that image and no other) into the engine."""
    _stream(["pull", reference], what=f"docker pull {reference}", out=out)
