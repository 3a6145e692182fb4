"""A throwaway PostgreSQL cluster for the benchmark's server (`bench/run.py --database postgres`).

A hosted Prefect server (Cloud, or one in a user's cloud) keeps its state in PostgreSQL, where upserts of
different deployments run side by side; the local SQLite server lets one write at a time. Measuring both
shows what concurrency buys against each. The cluster lives in a temporary folder and is removed on exit.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import subprocess
import tempfile
from collections.abc import Iterator
from pathlib import Path

from devtools.local_server import free_port

BIN = Path("/usr/lib/postgresql/15/bin")  # Debian's postgresql-15, as on these machines


def _as_postgres(argv: list[str]) -> list[str]:
    """PostgreSQL refuses to run as root: run its commands as the `postgres` user then."""
    return ["runuser", "-u", "postgres", "--", *argv] if os.geteuid() == 0 else argv


@contextlib.contextmanager
def cluster() -> Iterator[str]:
    """Start a cluster on a free loopback port; yield the Prefect server's connection URL."""
    if not (BIN / "initdb").exists():
        raise SystemExit(f"bench: --database postgres needs PostgreSQL 15 in {BIN} (apt-get install postgresql-15)")
    folder = Path(tempfile.mkdtemp(prefix="flow-register-bench-pg-"))
    data, port = folder / "data", free_port()
    if os.geteuid() == 0:
        shutil.chown(folder, "postgres")
    run = lambda *argv: subprocess.run(_as_postgres([str(a) for a in argv]), check=True,  # noqa: E731
                                       stdout=subprocess.DEVNULL, stderr=subprocess.STDOUT)
    try:
        run(BIN / "initdb", "-D", data, "-U", "postgres", "--auth=trust", "-E", "UTF8")
        run(BIN / "pg_ctl", "-D", data, "-l", folder / "server.log", "-w", "start", "-o",
            f"-p {port} -k {folder} -c listen_addresses=127.0.0.1 -c max_connections=200")
        try:
            run(BIN / "createdb", "-h", "127.0.0.1", "-p", port, "-U", "postgres", "prefect")
            yield f"postgresql+asyncpg://postgres@127.0.0.1:{port}/prefect"
        finally:
            run(BIN / "pg_ctl", "-D", data, "-m", "fast", "-w", "stop")
    finally:
        shutil.rmtree(folder, ignore_errors=True)
