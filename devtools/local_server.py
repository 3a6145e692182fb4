"""A local Prefect server (SQLite, loopback) for the demo, the tests and the benchmark.

It lives in a folder of its own (never the user's ~/.prefect), and is a real `prefect server start`:
the installed Prefect's, or a given release's from a tool environment of its own (`uv tool run`, cached
by uv), so the tests can register into every Prefect server a user may have.
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from dataclasses import dataclass
from pathlib import Path

from register import files


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def healthy(api_url: str, timeout: float = 2.0) -> bool:
    try:
        with urllib.request.urlopen(f"{api_url}/health", timeout=timeout) as response:
            return response.status == 200
    except OSError:
        return False


def server_env(home: Path, database: str | None = None) -> dict[str, str]:
    """The environment of a server whose state stays under `home` (its SQLite database too, unless
    `database` names another, e.g. postgresql+asyncpg://...)."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("PREFECT_")}
    env.update({
        "PREFECT_HOME": str(home),
        "PREFECT_SERVER_ANALYTICS_ENABLED": "false",  # no internet for telemetry
        "PREFECT_API_DATABASE_CONNECTION_URL": database or f"sqlite+aiosqlite:///{home}/prefect.db",
        "PREFECT_SERVER_UI_ENABLED": "false",
        "PREFECT_LOGGING_SERVER_LEVEL": "WARNING",
    })
    return env


@dataclass
class LocalServer:
    home: Path
    port: int
    pid: int

    @property
    def api_url(self) -> str:
        return f"http://127.0.0.1:{self.port}/api"

    def stop(self) -> None:
        try:
            os.killpg(self.pid, signal.SIGTERM)
        except ProcessLookupError:
            return
        for _ in range(100):
            try:
                os.killpg(self.pid, 0)
            except ProcessLookupError:
                break
            time.sleep(0.1)
        else:
            os.killpg(self.pid, signal.SIGKILL)
        (self.home / "server.pid").unlink(missing_ok=True)


# An old release's server runs with the libraries of its day (today's fastapi breaks 3.4's router): uv
# resolves it as of a week after its release.
RELEASED = {"3.4.10": "2025-08-01"}
# A release without a date here gets today's libraries, less those known to break Prefect's server:
# fastapi 0.150+ (request bodies) and SQLAlchemy 2.1 (the scheduler).
SERVER_PINS = ("fastapi<0.150", "sqlalchemy[asyncio]>=2.0,<2.1")


def prefect_command(release: str | None) -> list[str]:
    """`prefect` of the installed Prefect, or of `release` ("3.4.10", or "latest": the newest that resolves)
    in a uv tool environment (cached by uv)."""
    if not release:
        return [str(Path(sys.executable).with_name("prefect"))]
    if release in RELEASED:
        resolve = ["--exclude-newer", RELEASED[release]]
    else:
        resolve = [arg for pin in SERVER_PINS for arg in ("--with", pin)]
    return ["uv", "tool", "run", "--python", f"{sys.version_info.major}.{sys.version_info.minor}", *resolve,
            "--from", "prefect" if release == "latest" else f"prefect=={release}", "prefect"]


def start(home: Path, port: int | None = None, *, timeout: float = 120.0, ui: bool = False,
          release: str | None = None, database: str | None = None, top: Path | None = None) -> LocalServer:
    """Start `prefect server start` (of `release`, default the installed one) in its own process group
    and wait until /api/health answers. `home` and the folders between `top` and it must be real folders."""
    home = files.real_folder(Path(home), top=top)  # a committed link must not move the server's files
    home = home.resolve()
    port = port or free_port()
    env = server_env(home, database)
    if ui:
        env["PREFECT_SERVER_UI_ENABLED"] = "true"
    log = os.fdopen(files.open_for_writing(home / "server.log", append=True), "ab")
    if release:
        timeout += 300  # the first start installs the release into uv's cache
    process = subprocess.Popen(
        [*prefect_command(release), "server", "start", "--host", "127.0.0.1", "--port", str(port)],
        env=env, stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, start_new_session=True,
    )
    server = LocalServer(home, port, process.pid)
    files.write_text(home / "server.pid", f"{process.pid} {port}\n")
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process.poll() is not None:
            tail = (home / "server.log").read_text(errors="replace")[-2000:]
            raise RuntimeError(f"prefect server exited with {process.returncode}:\n{tail}")
        if healthy(server.api_url):
            return server
        time.sleep(0.25)
    server.stop()
    raise RuntimeError(f"prefect server did not answer on {server.api_url} within {timeout:.0f}s "
                       f"(log: {home / 'server.log'})")


def running(home: Path) -> LocalServer | None:
    """The server started earlier under `home`, if it still answers."""
    pidfile = Path(home).resolve() / "server.pid"
    if not pidfile.exists():
        return None
    pid, port = (int(x) for x in pidfile.read_text().split())
    server = LocalServer(Path(home).resolve(), port, pid)
    return server if healthy(server.api_url) else None
