"""Smoke runs: after applying, run named deployments once and wait for each to end.

    environments:
      test:
        smoke: [daily-sales]                                   # or, with parameters and a timeout:
        # smoke: [{deployment: daily-sales, parameters: {region: eu}, timeout: 300}]

or `--smoke daily-sales` (the action's `smoke` input), which replaces the manifest's list. Each run
starts through the server (`POST /deployments/{id}/create_flow_run`, with an idempotency key, so a
retried request never starts a second run); the deploy then waits for every run's final state, up to
its timeout (default `TIMEOUT`). A run that ends other than Completed, or does not end in time, fails
the deploy with its own exit code (Exit.SMOKE_FAILED): the deployments are registered, but do not run.
"""

from __future__ import annotations

import re
import time
import uuid
from dataclasses import dataclass, field
from urllib.parse import urlsplit, urlunsplit

from register.problems import Invalid, Problem, one_of

TIMEOUT = 600.0  # seconds a smoke run may take, from its start to its final state
POLL = 2.0  # seconds between looks at the runs' states
FINAL = ("COMPLETED", "FAILED", "CRASHED", "CANCELLED")
SMOKE_TAG = "flow-register:smoke"
NOT_PICKED_UP = ("SCHEDULED", "PENDING")


@dataclass
class Smoke:
    """One smoke run wanted: a deployment (manifest name), its parameters, how long to wait."""

    deployment: str
    parameters: dict = field(default_factory=dict)
    timeout: float = TIMEOUT


@dataclass
class SmokeRun:
    """One smoke run as it went."""

    deployment: str  # the registered name
    flow: str
    flow_run_id: str | None = None
    flow_run_name: str | None = None
    state: str | None = None  # the state's type: COMPLETED, FAILED, ...; None: not started
    state_name: str | None = None  # as Prefect names it, e.g. "Completed", "Failed"
    message: str | None = None  # the state's message, or why the run did not end
    url: str | None = None  # the run in the Prefect UI
    seconds: float = 0.0

    @property
    def ok(self) -> bool:
        return self.state == "COMPLETED"

    def as_dict(self) -> dict:
        return {"deployment": self.deployment, "flow": self.flow, "flow_run_id": self.flow_run_id,
                "flow_run_name": self.flow_run_name, "state": self.state, "state_name": self.state_name,
                "message": self.message, "url": self.url, "ok": self.ok, "seconds": round(self.seconds, 1)}


def wanted(manifest, environment: str, names: list[str] | None, known: list[str], *, label: str = "--smoke",
           timeout: float | None = None) -> list[Smoke]:
    """The smoke runs asked for: `names` (the flag or input) when given, else the environment's `smoke` list.
    Every name must be a deployment of `environment` (`known`: their manifest names); else Invalid."""
    written = ((manifest.data.get("environments") or {}).get(environment) or {}).get("smoke") or []
    from_manifest = []
    problems = []
    for index, entry in enumerate(written):
        spec = {"deployment": entry} if isinstance(entry, str) else dict(entry)
        smoke = Smoke(spec["deployment"], dict(spec.get("parameters") or {}),
                      float(spec.get("timeout") or timeout or TIMEOUT))
        from_manifest.append(smoke)
        if names is None and smoke.deployment not in known:
            path = ("environments", environment, "smoke", index) + (() if isinstance(entry, str) else ("deployment",))
            problems.append(manifest.source.problem(path, _unknown(smoke.deployment, environment, known), "smoke"))
    if names is None:
        if problems:
            raise Invalid(problems)
        return from_manifest
    by_name = {s.deployment: s for s in from_manifest}
    chosen = []
    for name in dict.fromkeys(names):
        if name not in known:
            problems.append(Problem(label, 0, 0, _unknown(name, environment, known), "smoke"))
            continue
        chosen.append(by_name.get(name) or Smoke(name, {}, float(timeout or TIMEOUT)))
    if problems:
        raise Invalid(problems)
    return chosen


def _unknown(name: str, environment: str, known: list[str]) -> str:
    return f"no deployment '{name}' to smoke-run in environment '{environment}'; " \
           f"the deployments there are {one_of(known) if known else 'none'}"


def ui_url(api_url: str, environ=None) -> str:
    """The Prefect UI's address for an API URL: PREFECT_UI_URL when set; Prefect Cloud's app for
    api.prefect.cloud's workspaces; else a self-hosted server's address without its `/api`."""
    given = (environ or {}).get("PREFECT_UI_URL")
    if given:
        return given.rstrip("/")
    parts = urlsplit(api_url)
    cloud = re.fullmatch(r"/api/accounts/([^/]+)/workspaces/([^/]+)/?", parts.path)
    if parts.hostname and parts.hostname.startswith("api.") and cloud:
        host = "app." + parts.netloc.rpartition("@")[2][len("api."):]
        return f"{parts.scheme}://{host}/account/{cloud[1]}/workspace/{cloud[2]}"
    path = re.sub(r"/api/?$", "", parts.path)
    return urlunsplit((parts.scheme, parts.netloc.rpartition("@")[2], path, "", "")).rstrip("/")


def run(server, runs: list[tuple[Smoke, str, str, str]], *, ui: str, say, sleep=time.sleep,
        clock=time.monotonic) -> list[SmokeRun]:
    """Start each (smoke, deployment id, registered name, flow) and wait until every run has ended or timed
    out. `say`: a line for the log as each starts and ends. Server failures raise ServerError."""
    started = clock()
    out: list[tuple[SmokeRun, float]] = []
    for smoke, deployment_id, name, flow in runs:
        body = {"parameters": smoke.parameters, "idempotency_key": f"flow-register-smoke-{uuid.uuid4()}",
                "tags": [SMOKE_TAG]}
        made = server.request("POST", f"/deployments/{deployment_id}/create_flow_run", json=body,
                              doing=f"start a smoke run of deployment '{name}'")
        made["id"] = str(uuid.UUID(str(made.get("id"))))  # it goes into a link and a path: an id, nothing else
        result = SmokeRun(name, flow, flow_run_id=str(made["id"]), flow_run_name=made.get("name"),
                          url=f"{ui}/runs/flow-run/{made['id']}")
        _state(result, made.get("state"))
        say(f"smoke run of {name}: {result.flow_run_name} started, waiting up to {smoke.timeout:g} s ({result.url})")
        out.append((result, started + smoke.timeout))
    waiting = [pair for pair in out]
    while waiting:
        now = clock()
        for result, deadline in list(waiting):
            found = server.request("GET", f"/flow_runs/{result.flow_run_id}",
                                   doing=f"read the smoke run of deployment '{result.deployment}'")
            _state(result, found.get("state"))
            result.seconds = clock() - started
            if result.state in FINAL:
                waiting.remove((result, deadline))
                say(f"smoke run of {result.deployment}: {result.state_name or result.state} after "
                    f"{result.seconds:.0f} s ({result.url})")
            elif now >= deadline:
                waiting.remove((result, deadline))
                what = result.state_name or result.state or "not started"
                hint = "; no worker picked it up: is a worker polling the pool?" if result.state in NOT_PICKED_UP \
                    else "; it goes on running"
                result.message = f"still {what} after {result.seconds:.0f} s{hint}"
                say(f"smoke run of {result.deployment}: {result.message} ({result.url})")
        if waiting:
            sleep(POLL)
    return [result for result, _ in out]


def _state(result: SmokeRun, state: dict | None) -> None:
    if not state:
        return
    result.state = str(state.get("type") or "") or None
    result.state_name = state.get("name")
    message = state.get("message")
    result.message = str(message)[:500] if message else None
