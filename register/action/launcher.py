"""Start the registrar for the composite action: mask the secrets, pick the runtime, prepare it, and
hand over to entrypoint.py, in a container that sees the runner as a step does, or on the runner.

action.yml runs this as `python3 -m register.action.launcher` from the action's folder, with the
runner's own python3, before any venv exists: standard library only, Python 3.9 or newer.

    runtime     what runs entrypoint.py
    image       the image released with this version of the action (built from its Dockerfile
                when there is none: an unreleased commit)
    dockerfile  the image built from this action's Dockerfile on the runner
    source      this action's code in a venv made by uv from the image's lock (registrar/uv.lock),
                on the runner
"""

from __future__ import annotations

import hashlib
import os
import re
import shlex
import shutil
import socket
import subprocess
import sys
from collections.abc import Mapping
from pathlib import Path

from register.action.masking import mask_secrets
from register.problems import one_of
from register.report import github
from register.settings import GitHub

ACTION = Path(__file__).resolve().parents[2]  # the action's folder: action.yml, Dockerfile, entrypoint.py
RUNTIMES = ("image", "dockerfile", "source")
RELEASED_IMAGE = "ghcr.io/org/flow-register:v{version}"
BUILT_IMAGE = "flow-register-action:v{version}"
DEFAULT_SOCKET = "/var/run/docker.sock"

# Every message a user can hit here, in one place.
BAD_RUNTIME = "{origin} must be {choices}; got '{value}'"
NOT_LINUX = ("the registrar image needs a Linux runner with Docker, and this runner is {os}; "
             "set `runtime: source` to run the registrar on the runner")
NO_ENGINE = ("no Docker engine on this runner ({why}), and the registrar runs in a container with "
             "runtime '{runtime}'{origin}; set `runtime: source` to run it on the runner without Docker (a "
             "manifest with an `image` still needs an engine to build it), or start a Docker engine")
NOT_UNIX = ("DOCKER_HOST={host} is not a unix socket that the registrar container can mount; "
            "set `runtime: source` to run the registrar on the runner")
CANNOT_PULL = "cannot pull FLOW_REGISTER_IMAGE={image}; unset it to use the released image"
UNRELEASED = "no image {image} (an unreleased version of the action?); building it from the action's Dockerfile"
BUILD_FAILED = "building the registrar image from {dockerfile} failed (exit {code}); its log is above"
SYNC_FAILED = "installing the registrar with uv from {lock} failed (exit {code}); its log is above"

# The registrar container gets the step's environment (the values, never on a command line): the
# inputs, GitHub's context, the Actions cache and OIDC variables, cloud credentials, proxies, CA bundles,
# and whatever the job sets, which the manifest may name (${NAME}). Not what describes the runner's own
# machine, which would break the container: its paths, shell, locale, Python, loader and Docker client.
HOST_ONLY = re.compile(r"PATH|HOME|HOSTNAME|PWD|OLDPWD|SHLVL|SHELL|USER|LOGNAME|MAIL|TERM|TMPDIR|TEMP|TMP|LANG"
                       r"|LANGUAGE|LC_\w+|_|VIRTUAL_ENV|DOCKER_(HOST|CONFIG|CERT_PATH|TLS_VERIFY|CONTEXT)"
                       r"|(PYTHON|LD_|DYLD_|XDG_|UV_|PIP_|CONDA|BASH_|DBUS_|SSH_)\w*")
NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")
DOCKER_CONFIG_MOUNT = "/run/flow-register/docker-config"


class Stop(Exception):
    """The registrar cannot start: one error, said once."""


def version() -> str:
    text = (ACTION / "pyproject.toml").read_text(encoding="utf-8")
    try:
        import tomllib
    except ImportError:  # Python 3.10 (ubuntu-22.04's python3): the one line that matters, by hand
        return re.search(r'^version\s*=\s*"([^"]+)"', text, re.M).group(1)
    return tomllib.loads(text)["project"]["version"]


def runtime_of(environ: Mapping[str, str]) -> tuple[str, str]:
    """The runtime, and where it was set: the `runtime` input over FLOW_REGISTER_RUNTIME over the default."""
    for value, origin in ((environ.get("INPUT_RUNTIME", ""), "input 'runtime'"),
                          (environ.get("FLOW_REGISTER_RUNTIME", ""), "FLOW_REGISTER_RUNTIME")):
        if value.strip():
            if value.strip() not in RUNTIMES:
                raise Stop(BAD_RUNTIME.format(origin=origin, choices=one_of(RUNTIMES), value=value))
            return value.strip(), origin
    return "image", ""


def docker_socket(environ: Mapping[str, str], runtime: str, origin: str) -> str:
    """The runner's Docker engine socket, which the container mounts; Stop when there is no engine."""
    host = environ.get("DOCKER_HOST", "")
    if host and not host.startswith("unix://"):
        raise Stop(NOT_UNIX.format(host=host))
    path = host[len("unix://"):] if host else DEFAULT_SOCKET
    why = ""
    if not shutil.which("docker"):
        why = "no `docker` command"
    else:
        try:
            with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as engine:
                engine.settimeout(10)
                engine.connect(path)
        except OSError as error:
            why = f"nothing answers at {host or path}: {error.strerror or error}"
    if why:
        raise Stop(NO_ENGINE.format(why=why, runtime=runtime, origin=f" ({origin})" if origin else " (the default)"))
    return path


def docker_run(image: str, environ: Mapping[str, str], engine: str) -> list[str]:
    """`docker run` of the registrar, seeing the runner as a step does: the same paths (the workspace,
    the temp folder where cloud credentials land, the output, summary and event files, files that
    passed variables name), the step's variables, the host's network and Docker engine."""
    workspace = environ["GITHUB_WORKSPACE"]
    argv = ["docker", "run", "--rm", "--network", "host", "--user", f"{os.getuid()}:{os.getgid()}",
            "--group-add", str(os.stat(engine).st_gid), "--volume", f"{engine}:/var/run/docker.sock",
            "--env", "DOCKER_HOST=unix:///var/run/docker.sock", "--env", "HOME=/tmp", "--workdir", workspace]
    mounted: list[str] = []

    def mount(path: str, read_only: bool = False) -> None:
        if path and os.path.exists(path) and not any(Path(path).is_relative_to(m) for m in mounted):
            argv.extend(["--volume", f"{path}:{path}{':ro' if read_only else ''}"])
            mounted.append(path)

    for path in (workspace, environ.get("RUNNER_TEMP", "")):
        mount(path)
    for variable in ("GITHUB_OUTPUT", "GITHUB_STEP_SUMMARY", "GITHUB_EVENT_PATH"):
        if environ.get(variable):
            mount(os.path.dirname(environ[variable]))
    passed = sorted(name for name in environ if NAME.fullmatch(name) and not HOST_ONLY.fullmatch(name))
    for name in passed:  # a credentials file or CA bundle elsewhere on the runner, read-only
        value = environ[name]
        if os.path.isabs(value) and (os.path.isfile(value) or name == "SSL_CERT_DIR"):
            mount(value, read_only=True)
    config = environ.get("DOCKER_CONFIG") or os.path.join(environ.get("HOME", "/root"), ".docker")
    if os.path.isfile(os.path.join(config, "config.json")):  # a `docker login` before this step
        argv += ["--volume", f"{config}:{DOCKER_CONFIG_MOUNT}:ro",
                 "--env", f"FLOW_REGISTER_DOCKER_CONFIG_RO={DOCKER_CONFIG_MOUNT}"]
    for name in passed:
        argv += ["--env", name]  # the value comes from this process's environment, never the command line
    return [*argv, image]


def _docker(*args: str, env: Mapping[str, str] | None = None, quiet: bool = False) -> int:
    out = subprocess.DEVNULL if quiet else None
    return subprocess.run(["docker", *args], env=env, stdout=out, stderr=out).returncode


def registrar_image(runtime: str, environ: Mapping[str, str]) -> str:
    """The image to run: released (pulled when missing) or built from the action's Dockerfile."""
    current = version()
    if runtime == "image":
        image = environ.get("FLOW_REGISTER_IMAGE") or RELEASED_IMAGE.format(version=current)
        if _docker("image", "inspect", image, quiet=True) == 0 or _docker("pull", "--quiet", image) == 0:
            return image
        if environ.get("FLOW_REGISTER_IMAGE"):
            raise Stop(CANNOT_PULL.format(image=image))
        print(github.notice(UNRELEASED.format(image=image), title="flow-register"), flush=True)
    image = BUILT_IMAGE.format(version=current)
    # FLOW_REGISTER_BUILD_ARGS, e.g. "--build-arg BASE=mirror.example/python:3.11-slim", for runners
    # that cannot pull the public base images.
    build_args = shlex.split(environ.get("FLOW_REGISTER_BUILD_ARGS", ""))
    env = dict(environ)
    env.setdefault("DOCKER_BUILDKIT", "1" if _docker("buildx", "version", quiet=True) == 0 else "0")
    code = _docker("build", *build_args, "--tag", image, str(ACTION), env=env)
    if code:
        raise Stop(BUILD_FAILED.format(dockerfile=ACTION / "Dockerfile", code=code))
    return image


def source_python(environ: Mapping[str, str]) -> str:
    """The registrar installed on the runner as the image has it (registrar/uv.lock: Prefect's client,
    no server): one venv per lock file, kept in the tool cache, so a second run on the runner starts at
    once. entrypoint.py runs from the action's folder, so its `register` is this very commit's."""
    temp = environ.get("RUNNER_TEMP") or "/tmp"
    bin_dir = "Scripts" if os.name == "nt" else "bin"
    uv = shutil.which("uv")
    if uv is None:
        tools = Path(temp) / "flow-register-uv"
        subprocess.run([sys.executable, "-m", "venv", str(tools)], check=True)
        subprocess.run([str(tools / bin_dir / "python"), "-m", "pip", "install", "--quiet",
                        "--disable-pip-version-check", "uv"], check=True)
        uv = str(tools / bin_dir / "uv")
    lock = ACTION / "registrar" / "uv.lock"
    venv = Path(environ.get("RUNNER_TOOL_CACHE") or temp) / "flow-register" / \
        hashlib.sha256(lock.read_bytes()).hexdigest()[:16]
    code = subprocess.run([uv, "sync", "--project", str(lock.parent), "--frozen", "--quiet"],
                          env={**environ, "UV_PROJECT_ENVIRONMENT": str(venv)}).returncode
    if code:
        raise Stop(SYNC_FAILED.format(lock=lock, code=code))
    return str(venv / bin_dir / "python")


def prepare(environ: Mapping[str, str]) -> list[str]:
    """The command that runs the registrar."""
    runtime, origin = runtime_of(environ)
    if runtime != "source" and environ.get("RUNNER_OS", "Linux") != "Linux":
        raise Stop(NOT_LINUX.format(os=environ["RUNNER_OS"]))
    engine = docker_socket(environ, runtime, origin) if runtime != "source" else ""
    with github.group(f"flow-register {version()}: runtime {runtime}", stream=sys.stdout):
        if runtime == "source":
            python = source_python(environ)
            print(f"using {Path(python).parents[1]}", flush=True)
            return [python, str(ACTION / "entrypoint.py")]
        image = registrar_image(runtime, environ)
        print(f"using {image}", flush=True)
        return docker_run(image, environ, engine)


def main(environ: Mapping[str, str] | None = None) -> int:
    environ = dict(os.environ if environ is None else environ)
    github.use(GitHub.from_environ(environ))
    github.guard_output()  # every line printed is text, but the commands written through register.report.github
    mask_secrets(environ, sys.stdout)  # before anything else prints
    try:
        argv = prepare(environ)
    except Stop as stop:
        print(github.error(str(stop), title="flow-register: runtime"), flush=True)
        github.add_summary(f"### flow-register: runtime\n\n{github.code(stop)}\n\nNothing was registered.\n")
        return 1
    sys.stdout.flush()
    sys.stderr.flush()
    os.chdir(environ.get("GITHUB_WORKSPACE") or os.getcwd())
    if os.name == "nt":  # no exec there: run it and pass its exit code on
        return subprocess.run(argv, env=environ).returncode
    os.execvpe(argv[0], argv, environ)


if __name__ == "__main__":
    sys.exit(main())
