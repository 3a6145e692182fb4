"""A Docker work pool and a real Prefect Docker worker, for the end-to-end runs to Completed."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import httpx

from support.registration import Patient

BIN = Path(sys.executable).parent
ENDED = ("COMPLETED", "FAILED", "CRASHED", "CANCELLED")


_HTTP = httpx.Client(timeout=30, transport=Patient())


def api(server, method: str, path: str, **kwargs):
    response = _HTTP.request(method, f"{server.api_url}{path}", **kwargs)
    response.raise_for_status()
    return response.json() if response.content else None


def create_docker_pool(server, name: str) -> None:
    """What a platform engineer provisions: a Docker pool from the server's default template, its
    containers on the host's network (the test's Prefect server listens on loopback)."""
    if httpx.get(f"{server.api_url}/work_pools/{name}", timeout=30).status_code == 200:
        return
    metadata = api(server, "GET", "/collections/views/aggregate-worker-metadata")
    template = next(worker["default_base_job_configuration"] for workers in metadata.values()
                    for kind, worker in workers.items() if kind == "docker")
    template["variables"]["properties"]["network_mode"]["default"] = "host"
    api(server, "POST", "/work_pools/", json={"name": name, "type": "docker", "base_job_template": template})


def run_to_end(server, deployment_id: str, pool: str, env: dict, log: Path, timeout: float = 300,
               kind: str = "docker") -> tuple:
    """Start a worker of type `kind` on `pool`, run the deployment once; its final state and what to show when
    it failed (the run's logs and the worker's)."""
    with log.open("w") as out:
        worker = subprocess.Popen(
            [str(BIN / "prefect"), "worker", "start", "--pool", pool, "--type", kind, "--limit", "1"],
            env={**env, "PREFECT_WORKER_QUERY_SECONDS": "1"}, stdout=out, stderr=subprocess.STDOUT,
            start_new_session=True)
        try:
            run = api(server, "POST", f"/deployments/{deployment_id}/create_flow_run", json={})
            deadline = time.monotonic() + timeout
            state = None
            while time.monotonic() < deadline:
                state = api(server, "GET", f"/flow_runs/{run['id']}")["state"]
                if state and state["type"] in ENDED:
                    break
                assert worker.poll() is None, "the worker exited:\n" + log.read_text()[-4000:]
                time.sleep(1)
            logs = api(server, "POST", "/logs/filter", json={"logs": {"flow_run_id": {"any_": [run["id"]]}},
                                                             "limit": 200})
            shown = "\n".join(entry["message"] for entry in logs) + "\nworker:\n" + log.read_text()[-4000:]
            return state, shown
        finally:
            os.killpg(worker.pid, signal.SIGTERM)
            try:
                worker.wait(timeout=30)
            except subprocess.TimeoutExpired:
                os.killpg(worker.pid, signal.SIGKILL)
                worker.wait()
