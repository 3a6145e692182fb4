"""Helpers for the registration tests: a flows repository of the test's own, the CLI run as a user runs
it (a subprocess), the Prefect API read back directly, and a fake OCI registry that already has every
tag (so the image stage finds the image and neither Docker nor a push is needed)."""

from __future__ import annotations

import contextlib
import hashlib
import http.server
import json
import os
import subprocess
import sys
import threading
import time
import uuid
from dataclasses import dataclass
from functools import cache
from pathlib import Path

import httpx
import yaml

CLI = str(Path(sys.executable).with_name("flow-register"))

ETL = '''"""ETL flows for the registration tests."""

from prefect import flow


@flow
def extract(region: str = "eu", days: int = 1) -> int:
    """Extract some days of one region."""
    return days


@flow(name="weekly-report")
def report(recipients: list[str], charts: bool = True) -> int:
    """Send the weekly report."""
    return len(recipients)
'''

# The same flow as etl.py's `extract` (same name and signature), at another entrypoint.
ETL_V2 = '''"""The extract flow, moved."""

from prefect import flow


@flow(name="extract")
def extract_v2(region: str = "eu", days: int = 1) -> int:
    """Extract some days of one region."""
    return days
'''


def unique(prefix: str) -> str:
    return f"{prefix}-{uuid.uuid4().hex[:8]}"


@dataclass
class Result:
    code: int
    out: str
    err: str

    @property
    def json(self) -> dict:
        return json.loads(self.out)

    def __str__(self) -> str:
        return f"exit {self.code}\n--- stdout\n{self.out}\n--- stderr\n{self.err}"


def client_env(api_url: str | None, home: Path, **extra: str) -> dict[str, str]:
    """The environment of a user's shell: no Prefect settings but the server's URL; a Prefect home of
    its own, so no profile of this machine's leaks in."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("PREFECT_", "GITHUB_"))}
    env.update({"PREFECT_HOME": str(home), "DO_NOT_TRACK": "1"})
    if api_url:
        env["PREFECT_API_URL"] = api_url
    env.update(extra)
    return env


class Project:
    """A flows repository in a temporary folder, with its manifest written from a dict."""

    def __init__(self, root: Path, api_url: str | None, name: str):
        self.root = root
        self.api_url = api_url
        self.name = name
        (root / "flows").mkdir(parents=True, exist_ok=True)
        (root / "flows" / "etl.py").write_text(ETL)
        (root / "flows" / "etl_v2.py").write_text(ETL_V2)
        (root / "Dockerfile").write_text("FROM prefecthq/prefect:3-python3.11\nCOPY flows/ flows/\n")
        # The image is the code: editing the manifest must not make a new one.
        (root / ".dockerignore").write_text("flows.yaml\n.prefect-home\n")
        self.home = root / ".prefect-home"
        self.manifest: dict = {}

    def write(self, manifest: dict | None = None) -> None:
        if manifest is not None:
            self.manifest = manifest
        (self.root / "flows.yaml").write_text(yaml.safe_dump(self.manifest, sort_keys=False))

    def cli(self, *args: str, env: dict | None = None, api_url: str | None = "default", timeout: float = 120,
            **extra: str) -> Result:
        url = self.api_url if api_url == "default" else api_url
        process = subprocess.run([CLI, *args], cwd=self.root, capture_output=True, text=True, timeout=timeout,
                                 env=env or client_env(url, self.home, **extra))
        return Result(process.returncode, process.stdout, process.stderr)

    def deploy(self, *args: str, **kwargs) -> Result:
        return self.cli("deploy", "-e", "dev", "--output", "json", *args, **kwargs)

    def plan(self, *args: str, **kwargs) -> Result:
        return self.cli("plan", "-e", "dev", "--output", "json", *args, **kwargs)


def base_manifest(project: str, pool: str, *, image: str | None = None, pool_type: str | None = "docker") -> dict:
    manifest: dict = {"version": 1, "project": project}
    if image:
        manifest["image"] = {"repository": image, "dockerfile": "Dockerfile", "workdir": "/opt/prefect/etl"}
    # Tests share one server and the same flows: the project in every name keeps them apart.
    manifest["defaults"] = {"work_pool": {"name": pool, "type": pool_type} if pool_type else pool,
                            "name_template": "{name}-{project}"}
    manifest["environments"] = {"dev": {}}
    manifest["deployments"] = [
        {"name": "extract", "entrypoint": "flows/etl.py:extract", "parameters": {"region": "eu"},
         "schedules": [{"cron": "0 6 * * *", "timezone": "Europe/Berlin"}],
         "triggers": [{"type": "event", "expect": ["data.arrived"], "parameters": {"region": "us"}}],
         "concurrency_limit": 1, "tags": ["etl"], "resources": {"memory": "512Mi"}},
        {"name": "weekly", "entrypoint": "flows/etl.py:report", "parameters": {"recipients": ["a@example.com"]}},
    ]
    return manifest


class Patient(httpx.HTTPTransport):
    """Sends a request again while the server answers busy (503, 429): the SQLite server's own services
    write beside the tests, and a test arranging state must not fail on a lock a user would retry."""

    def handle_request(self, request: httpx.Request) -> httpx.Response:
        for attempt in range(12):
            response = super().handle_request(request)
            if response.status_code not in (429, 503):
                break
            response.read()
            response.close()
            time.sleep(min(0.1 * 2 ** attempt, 2.0))
        return response


class Api:
    """The Prefect API, read and arranged directly (not through flow-register)."""

    def __init__(self, api_url: str):
        self.url = api_url
        self.http = httpx.Client(base_url=api_url, timeout=30, transport=Patient())

    def post(self, path: str, body: dict | None = None):
        response = self.http.post(path, json=body or {})
        response.raise_for_status()
        return response.json() if response.content else None

    def release(self) -> tuple[int, ...]:
        """The server's Prefect release, as (3, 8, 8)."""
        response = self.http.get("/admin/version")
        response.raise_for_status()
        return tuple(int(part) for part in response.json().split(".")[:3])

    def deployments(self, *tags: str) -> dict[str, dict]:
        found = self.post("/deployments/filter", {"deployments": {"tags": {"all_": list(tags)}}})
        return {d["name"]: d for d in found}

    def deployment(self, deployment_id: str) -> dict | None:
        response = self.http.get(f"/deployments/{deployment_id}")
        return response.json() if response.status_code == 200 else None

    def automations_of(self, deployment_id: str) -> list[dict]:
        return [a for a in self.post("/automations/filter", {})
                if any(x.get("deployment_id") == deployment_id for x in a["actions"])]

    def create_pool(self, name: str, kind: str, template: dict | None = None) -> dict:
        return self.post("/work_pools/", {"name": name, "type": kind,
                                          "base_job_template": template or worker_templates()[kind]})


@cache
def worker_templates() -> dict[str, dict]:
    """Each worker type's default base job template, as the pinned Prefect bundles it: the same pools
    whichever server release the tests run against (an old server bundles older templates: 3.4's
    kubernetes template has no cpu or memory variables)."""
    from importlib.util import find_spec

    prefect = Path(find_spec("prefect").submodule_search_locations[0])
    bundled = prefect / "server/api/collections_data/views/aggregate-worker-metadata.json"
    meta = json.loads(bundled.read_text())
    return {kind: worker["default_base_job_configuration"] for workers in meta.values()
            for kind, worker in workers.items()}


@contextlib.contextmanager
def _serve(handler: type[http.server.BaseHTTPRequestHandler]):
    """An HTTP server on a free loopback port, in a thread; yields `127.0.0.1:PORT`."""
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        yield f"127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()


@contextlib.contextmanager
def fake_registry():
    """An OCI registry on loopback that has every tag: HEAD .../manifests/TAG answers a digest made from
    TAG. Yields its host:port; `requests` lists what was asked."""
    requests: list[str] = []

    class Handler(http.server.BaseHTTPRequestHandler):
        def do_HEAD(self):
            requests.append(f"HEAD {self.path}")
            tag = self.path.rsplit("/", 1)[-1]
            self.send_response(200)
            self.send_header("Docker-Content-Digest", "sha256:" + hashlib.sha256(tag.encode()).hexdigest())
            self.send_header("Content-Type", "application/vnd.oci.image.manifest.v1+json")
            self.end_headers()

        def log_message(self, *args):
            pass

    with _serve(Handler) as address:
        yield address, requests
