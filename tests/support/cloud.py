"""A STAND-IN for Prefect Cloud: a loopback reverse proxy in front of a real open-source Prefect server that
answers the way Prefect Cloud documents it answers. Cloud cannot be reached from these machines; what it
does here was read from Prefect's documentation ("Rate limits and data retention", "Connect to Cloud"),
Prefect's client (prefect/client/base.py, prefect/client/cloud.py) and the Terraform provider whose
acceptance tests run against Cloud (PrefectHQ/terraform-provider-prefect). Where Cloud's exact wording or
algorithm is not published (the rate limiter's shape, the text of a 403), the stand-in says so below.

What it plays:
- the workspace-scoped API, `/api/accounts/<account>/workspaces/<workspace>/...`, passed on to the server's
  `/api/...`; any other path is 404, another workspace of the account is 403 (the key has no access);
  `GET /api/me/workspaces` lists the key's workspaces (what `prefect cloud login` reads);
- a Bearer API key on every request: none or another is 401;
- one account-wide rate limit for every request of every client (Hobby 625 requests a minute, Starter
  1,250, Team 2,500, Pro 5,000): over it, 429 with `Retry-After` in whole seconds. Cloud's algorithm is
  not documented; here it is a token bucket refilled at the plan's rate, holding `burst_seconds` of it;
- an account kept over its limit by its other clients for a while (`over_limit(seconds)`: every request 429);
- production traffic beside the deploy (`production(share)`): a thread that sends the calls a flow run
  makes (read its run, set its state, read task runs) at a share of the limit and counts its own 429s;
- a lapsed lease's renewal answered 404 (the open-source server says 410);
- object limits: with `max_deployments`, creating one more deployment is 403 with a plan-limit message
  (the text is the stand-in's; Cloud's own wording was not found); `read_only` plays a service account
  whose role may only read: every write is 403;
- a body above 5 MiB is 413; a POST, PUT or PATCH without `Content-Length` is 411;
- maintenance on demand (`maintenance(seconds)`): every request is 503 with `Prefect-Maintenance: true`
  and `Retry-After`, as Prefect's client expects (it waits such answers out without counting them);
- Cloud's webhooks API, which the open-source server does not have, answered by the stand-in itself from
  memory, one store per workspace (`Webhooks` below). Its request and response shapes are those Prefect's
  CLI (prefect/cli/cloud/webhook.py) and the Terraform provider (internal/api/webhooks.go,
  internal/client/webhooks.go) send and read, and Prefect's docs ("Webhooks") describe: POST /webhooks/
  (201, the webhook), POST /webhooks/filter (200, a list; `{"webhooks": {"name": {"any_": [...]}}}`,
  `limit`, `offset`), GET /webhooks/{id} (200), PUT /webhooks/{id} (204, every field), PATCH
  /webhooks/{id} (204, the fields given), DELETE /webhooks/{id} (204), POST /webhooks/{id}/rotate (200, a
  new slug); a webhook has `id`, `created`, `updated`, `name`, `description`, `enabled`, `template` (text),
  `service_account_id`, `account`, `workspace` and `slug` (random, URL-safe, as in
  `https://api.prefect.cloud/hooks/AERylZ_uewzpDx-8fcweHQ`); an unknown id is 404, a body of the wrong
  shape 422 (FastAPI's `detail` list). Not published, so not played: whether Cloud refuses two webhooks
  of one name (the stand-in takes both), how it checks a template's Jinja when it is saved (the stand-in
  takes any text), and the /hooks/ endpoint itself (no events are made).
- Cloud's own objects (section "Cloud's own objects" below): deployment SLAs, metric triggers, and, with
  `keeps_automation_tags=False`, a Cloud that does not keep automation tags.

In a test:  with CloudStandIn(prefect_server.api_url, plan="hobby") as cloud: ... cloud.api_url, cloud.api_key
"""

from __future__ import annotations

import asyncio
import contextlib
import datetime
import json
import math
import re
import secrets
import threading
import time
import uuid
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass, field
from urllib.parse import urlsplit

import httpx

from support.proxy import HOP_BY_HOP, Served, _read_request, _respond, route

PLANS = {"hobby": 625, "starter": 1250, "team": 2500, "pro": 5000}  # requests a minute, per account
MAX_BODY = 5 * 1024 * 1024
_SCOPED = re.compile(r"^/api/accounts/([^/]+)/workspaces/([^/?]+)(/[^?]*)?(\?.*)?$")
_RENEW = re.compile(r"/v2/concurrency_limits/leases/[^/]+/renew$")
PRODUCTION_AGENT = "production-flow-runs"


class Bucket:
    """The account's budget: `per_minute` requests a minute, at most `burst` at once."""

    def __init__(self, per_minute: int, burst: float):
        self.rate = per_minute / 60.0
        self.capacity = max(1.0, burst)
        self.tokens = self.capacity
        self.stamp = time.monotonic()
        self.lock = threading.Lock()

    def take(self) -> float:
        """0 when the request may pass (it spends a token), else the seconds until one is there."""
        with self.lock:
            now = time.monotonic()
            self.tokens = min(self.capacity, self.tokens + (now - self.stamp) * self.rate)
            self.stamp = now
            if self.tokens >= 1:
                self.tokens -= 1
                return 0.0
            return (1 - self.tokens) / self.rate

    def drain(self) -> None:
        """Spend the whole budget at once (another client of the account just used it)."""
        with self.lock:
            self.tokens = 0.0
            self.stamp = time.monotonic()


@dataclass
class Seen:
    method: str
    path: str  # the server's path (/api/...)
    status: int
    client: str  # "production" or "deploy"
    at: float = 0.0  # when it arrived (time.monotonic())


@dataclass
class Production:
    """What the production traffic sent and how it was answered."""

    sent: int = 0
    refused: int = 0  # 429s
    failed: int = 0  # other errors
    statuses: Counter = field(default_factory=Counter)


_WEBHOOK_FIELDS = {"name": str, "description": str, "enabled": bool, "template": str, "service_account_id": str}


class Webhooks:
    """One workspace's webhooks, as Cloud's webhooks API keeps and answers them (see the module's docstring).
    Used from the stand-in's event loop only."""

    def __init__(self, account: str, workspace: str):
        self.account = account
        self.workspace = workspace
        self.by_id: dict[str, dict] = {}

    def answer(self, method: str, rest: str, body: bytes) -> tuple[int, object]:
        """(status, JSON answer or None) for a request to /webhooks`rest`."""
        try:
            given = json.loads(body) if body else {}
        except ValueError:
            return 422, {"detail": [{"loc": ["body"], "msg": "Invalid JSON", "type": "json_invalid"}]}
        parts = [p for p in rest.split("/") if p]
        if method == "POST" and not parts:
            return self._create(given)
        if method == "POST" and parts == ["filter"]:
            return self._filter(given)
        if not parts or parts[0] not in self.by_id:
            return 404, {"detail": "Webhook not found."}
        hook = self.by_id[parts[0]]
        if method == "POST" and parts[1:] == ["rotate"]:
            hook["slug"] = secrets.token_urlsafe(16)
            return 200, hook
        if len(parts) != 1:
            return 404, {"detail": "Not Found"}
        if method == "GET":
            return 200, hook
        if method == "DELETE":
            del self.by_id[parts[0]]
            return 204, None
        if method in ("PUT", "PATCH"):
            wrong = self._wrong(given, required=("name", "template") if method == "PUT" else ())
            if wrong:
                return 422, {"detail": wrong}
            if method == "PUT":  # every field: one left out takes its default
                given = {"description": "", "enabled": True, "service_account_id": None, **given}
            hook.update({k: v for k, v in given.items() if k in _WEBHOOK_FIELDS}, updated=_now())
            return 204, None
        return 405, {"detail": "Method Not Allowed"}

    @staticmethod
    def _wrong(given, required: tuple) -> list[dict]:
        if not isinstance(given, dict):
            return [{"loc": ["body"], "msg": "Input should be a valid dictionary", "type": "dict_type"}]
        wrong = [{"loc": ["body", k], "msg": "Field required", "type": "missing"} for k in required if k not in given]
        for key, kind in _WEBHOOK_FIELDS.items():
            value = given.get(key)
            if key in given and not isinstance(value, kind) and not (key == "service_account_id" and value is None):
                wrong.append({"loc": ["body", key], "msg": f"Input should be a valid {kind.__name__}",
                              "type": f"{kind.__name__}_type"})
        if isinstance(given.get("service_account_id"), str):
            try:
                uuid.UUID(given["service_account_id"])
            except ValueError:
                wrong.append({"loc": ["body", "service_account_id"], "msg": "Input should be a valid UUID",
                              "type": "uuid_parsing"})
        return wrong

    def _create(self, given) -> tuple[int, object]:
        if wrong := self._wrong(given, required=("name", "template")):
            return 422, {"detail": wrong}
        now = _now()
        hook = {"id": str(uuid.uuid4()), "created": now, "updated": now, "name": given["name"],
                "description": given.get("description", ""), "enabled": given.get("enabled", True),
                "template": given["template"], "service_account_id": given.get("service_account_id"),
                "account": self.account, "workspace": self.workspace, "slug": secrets.token_urlsafe(16)}
        self.by_id[hook["id"]] = hook
        return 201, hook

    def _filter(self, given) -> tuple[int, object]:
        if not isinstance(given, dict):
            return 422, {"detail": self._wrong(given, ())}
        names = ((given.get("webhooks") or {}).get("name") or {}).get("any_")
        found = [h for h in self.by_id.values() if names is None or h["name"] in names]  # in creation order
        offset, limit = int(given.get("offset") or 0), given.get("limit")
        return 200, found[offset:None if limit is None else offset + int(limit)]


def _now() -> str:
    return datetime.datetime.now(datetime.timezone.utc).isoformat().replace("+00:00", "Z")


class CloudStandIn(Served):
    def __init__(self, upstream: str, *, plan: str = "hobby", per_minute: int | None = None,
                 burst_seconds: float = 10.0, api_key: str | None = None, max_deployments: int | None = None,
                 read_only: bool = False, delay_ms: float = 0, keeps_automation_tags: bool = True):
        parts = urlsplit(upstream)
        self.origin = f"{parts.scheme}://{parts.netloc}"
        self.account = str(uuid.uuid4())
        self.workspace = str(uuid.uuid4())
        self.other_workspace = str(uuid.uuid4())  # the account has a second one the key can see
        self.api_key = api_key or f"pnu_{uuid.uuid4().hex}"
        self.plan = plan
        self.per_minute = per_minute or PLANS[plan]
        self.bucket = Bucket(self.per_minute, self.per_minute / 60.0 * burst_seconds)
        self.max_deployments = max_deployments
        self.read_only = read_only
        self.delay = delay_ms / 1000
        self.port = 0
        self.log: list[Seen] = []
        self.production_stats = Production()
        self._maintenance_until = 0.0
        self._over_until = 0.0
        self.webhooks: dict[str, Webhooks] = {}  # by workspace id
        self._lock = threading.Lock()
        self.keeps_automation_tags = keeps_automation_tags
        self.sla_store: dict[str, dict[str, dict]] = {}  # owner resource -> name -> SLA
        self.metric_automations: dict[str, dict] = {}  # id -> automation (the open-source server refuses them)

    # -- what tests read and change -----------------------------------------------------------

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def api_url(self) -> str:
        """The workspace's API URL, as Cloud's settings page shows it."""
        return f"{self.url}/api/accounts/{self.account}/workspaces/{self.workspace}"

    def statuses(self, client: str = "deploy") -> Counter:
        with self._lock:
            return Counter(s.status for s in self.log if s.client == client)

    def counts(self, client: str = "deploy") -> Counter:
        with self._lock:
            return Counter(route(s.method, s.path) for s in self.log if s.client == client)

    def over_limit(self, seconds: float) -> None:
        """For `seconds`, the account's other clients spend its whole budget: every request is 429."""
        self._over_until = time.monotonic() + seconds

    def maintenance(self, seconds: float) -> None:
        """From now, `seconds` of maintenance: every request is 503 with Prefect-Maintenance."""
        self._maintenance_until = time.monotonic() + seconds

    @contextlib.contextmanager
    def production(self, share: float) -> Iterator[Production]:
        """Flow runs of the account's production, using `share` of the rate limit, while the block runs."""
        stop = threading.Event()
        thread = threading.Thread(target=self._produce, args=(share, stop), name="production", daemon=True)
        thread.start()
        try:
            yield self.production_stats
        finally:
            stop.set()
            thread.join(timeout=30)

    # -- lifetime -----------------------------------------------------------------------------

    thread_name = "cloud-stand-in"

    def _prepare(self) -> None:
        self._creating = asyncio.Lock()

    async def _connection(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            while (request := await _read_request(reader)) is not None:
                await self._answer(*request, writer)
        except (ConnectionError, asyncio.IncompleteReadError, asyncio.CancelledError, ValueError):
            pass
        finally:
            if not writer.is_closing():
                writer.close()

    # -- Cloud's answers ----------------------------------------------------------------------

    async def _answer(self, method: str, target: str, headers: list[tuple[str, str]], body: bytes,
                      writer: asyncio.StreamWriter) -> None:
        lower = {k.lower(): v for k, v in headers}
        client = "production" if lower.get("user-agent") == PRODUCTION_AGENT else "deploy"
        # Cloud counts and creates as one: two creations at once must not both pass a limit of one more
        counting = self.max_deployments is not None and method == "POST" and target.endswith("/deployments/")
        async with self._creating if counting else contextlib.nullcontext():
            await self._pass(method, target, headers, lower, body, client, writer)

    async def _pass(self, method, target, headers, lower, body, client, writer) -> None:
        arrived = time.monotonic()
        status, extra, answer, path = await self._decide(method, target, lower, body)
        if status is None:  # passed on to the server
            body = self._upstream_body(method, path, body)
            try:
                upstream = await self._client.request(method, path, content=body,
                                                      headers=[(k, v) for k, v in headers
                                                               if k.lower() not in HOP_BY_HOP
                                                               and k.lower() != "authorization"])
            except httpx.HTTPError as error:  # Cloud's edge answers 502 when the API behind it fails
                with self._lock:
                    self.log.append(Seen(method, path, 502, client, arrived))
                return await _respond(writer, 502, [("Content-Type", "text/plain")], f"upstream: {error!r}".encode())
            status = upstream.status_code
            answer = upstream.content
            extra = [(k, v) for k, v in upstream.headers.multi_items()
                     if k.lower() not in HOP_BY_HOP and k.lower() != "content-encoding"]
            if status == 410 and _RENEW.search(path):  # Cloud: a lease it no longer has is not found
                status, answer = 404, json.dumps({"detail": "Lease not found."}).encode()
                extra = [("Content-Type", "application/json")]
            answer = self._with_cloud_objects(method, path, status, body, answer)
            if answer is not upstream.content:
                extra = [(k, v) for k, v in extra if k.lower() != "content-length"]
        with self._lock:
            self.log.append(Seen(method, path, status, client, arrived))
        await _respond(writer, status, extra, answer)

    async def _decide(self, method: str, target: str, headers: dict[str, str], body: bytes):
        """(status, headers, body, upstream path): a status when the stand-in answers itself, else None."""

        def refuse(status: int, detail: str, extra=()):
            return status, [("Content-Type", "application/json"), *extra], json.dumps({"detail": detail}).encode(), \
                target.split("?", 1)[0]

        if self.delay:
            await asyncio.sleep(self.delay)
        if time.monotonic() < self._maintenance_until:
            left = math.ceil(self._maintenance_until - time.monotonic())
            return refuse(503, "Prefect Cloud is undergoing maintenance.",
                          [("Prefect-Maintenance", "true"), ("Retry-After", str(left))])
        if method in ("POST", "PUT", "PATCH") and "content-length" not in headers:
            return refuse(411, "Length Required")
        if len(body) > MAX_BODY:
            return refuse(413, "Request Entity Too Large")
        if headers.get("authorization") != f"Bearer {self.api_key}":
            return refuse(401, "Unauthorized")
        if target.split("?", 1)[0] == "/api/me/workspaces" and method == "GET":
            return 200, [("Content-Type", "application/json")], json.dumps(self._workspaces()).encode(), "/api/me/workspaces"
        match = _SCOPED.match(target)
        if not match:
            return refuse(404, "Not Found")
        account, workspace, rest, query = match.groups()
        if account != self.account or workspace not in (self.workspace, self.other_workspace):
            return refuse(403, "Forbidden")
        wait = self.bucket.take() if time.monotonic() >= self._over_until else \
            min(10.0, self._over_until - time.monotonic())
        if wait:
            return refuse(429, "Rate limit exceeded. Try again later.", [("Retry-After", str(max(1, math.ceil(wait))))])
        path = f"/api{rest or '/'}"
        write = not (method == "GET" or path.endswith(("/filter", "/count")))
        if self.read_only and write:
            return refuse(403, "Forbidden: the actor does not have the permission to perform this action.")
        if path.split("/")[2:3] == ["webhooks"]:
            store = self.webhooks.setdefault(workspace, Webhooks(self.account, workspace))
            status, answer = store.answer(method, path.removeprefix("/api/webhooks"), body)
            payload = b"" if answer is None else json.dumps(answer).encode()
            return status, [("Content-Type", "application/json")] if payload else [], payload, path
        if self.max_deployments is not None and method == "POST" and path == "/api/deployments/":
            if await self._would_add_deployment(body) and await self._deployments() >= self.max_deployments:
                return refuse(403, f"You have reached the maximum number of deployments ({self.max_deployments}) "
                                   f"allowed by your {self.plan.title()} plan. Upgrade your plan to create more.")
        if (own := await self._cloud_objects(method, path, body)) is not None:
            return own
        return None, [], b"", path + (query or "")

    def _workspaces(self) -> list[dict]:
        return [{"account_id": self.account, "account_handle": "acme", "workspace_id": ws,
                 "workspace_handle": handle, "workspace_name": handle}
                for ws, handle in ((self.workspace, "data"), (self.other_workspace, "sandbox"))]

    async def _would_add_deployment(self, body: bytes) -> bool:
        try:
            wanted = json.loads(body)
            criteria = {"flows": {"id": {"any_": [wanted["flow_id"]]}},
                        "deployments": {"name": {"any_": [wanted["name"]]}}}
        except (ValueError, KeyError, TypeError):
            return False
        found = await self._client.post("/api/deployments/filter", json=criteria)
        return found.status_code == 200 and not found.json()

    async def _deployments(self) -> int:
        counted = await self._client.post("/api/deployments/count", json={})
        return int(counted.json()) if counted.status_code == 200 else 0

    # -- Cloud's own objects ------------------------------------------------------------------
    # Built from Cloud's documented shapes: SLAs as Prefect's client (`apply_slas_for_deployment`,
    # prefect/_experimental/sla) and the Terraform provider (prefect_resource_sla) send them, answered
    # {created, updated, deleted}; an SLA is owned by its deployment (`prefect.deployment.<id>`), so Cloud's
    # `DELETE /automations/owned-by/<that>` is played as taking its SLAs too (the risk issue 21 names).
    # Metric triggers, which the open-source server refuses, are kept here, checked with Prefect's own
    # automation model. How Cloud lists SLAs is not documented: they are not in /automations/filter here.

    def slas(self, deployment_id: str) -> dict[str, dict]:
        """The SLAs the deployment has, by name."""
        with self._lock:
            return dict(self.sla_store.get(f"prefect.deployment.{deployment_id}", {}))

    async def _cloud_objects(self, method: str, path: str, body: bytes):
        """(status, headers, body, path) for what the stand-in holds itself, else None (passed on)."""
        def answer(status: int, value):
            return status, [("Content-Type", "application/json")], json.dumps(value).encode(), path

        if method == "POST" and (found := re.fullmatch(r"/api/slas/apply-resource-slas/([^/]+)", path)):
            return answer(*await self._apply_slas(found[1], body))
        if method == "POST" and path == "/api/automations/":
            try:
                wanted = json.loads(body)
            except ValueError:
                return None
            if not _has_metric(wanted.get("trigger") if isinstance(wanted, dict) else None):
                return None
            from prefect.events.schemas.automations import AutomationCore
            from pydantic import ValidationError

            try:
                AutomationCore.model_validate(wanted)
            except ValidationError as error:
                return answer(422, {"detail": json.loads(error.json())})
            now = time.strftime("%Y-%m-%dT%H:%M:%S.000000Z", time.gmtime())
            kept = {**wanted, "id": str(uuid.uuid4()), "created": now, "updated": now}
            if not self.keeps_automation_tags:
                kept["tags"] = []
            with self._lock:
                self.metric_automations[kept["id"]] = kept
            return answer(201, kept)
        if (found := re.fullmatch(r"/api/automations/([0-9a-f-]{36})", path)) and found[1] in self.metric_automations:
            if method == "DELETE":
                with self._lock:
                    self.metric_automations.pop(found[1], None)
                return 204, [], b"", path
            if method == "GET":
                return answer(200, self.metric_automations[found[1]])
        if method == "DELETE" and (found := re.fullmatch(r"/api/automations/owned-by/([^/]+)", path)):
            with self._lock:
                self.sla_store.pop(found[1], None)
                for key in [k for k, a in self.metric_automations.items() if a.get("owner_resource") == found[1]]:
                    del self.metric_automations[key]
        return None

    async def _apply_slas(self, resource: str, body: bytes) -> tuple[int, object]:
        try:
            wanted = json.loads(body)
        except ValueError:
            return 422, {"detail": "the body is not JSON"}
        problems = [] if isinstance(wanted, list) else ["the body must be a list of SLAs"]
        for i, sla in enumerate(wanted if isinstance(wanted, list) else []):
            problems += [f"[{i}]: {p}" for p in _sla_problems(sla)]
        deployment = re.fullmatch(r"prefect\.deployment\.([0-9a-f-]{36})", resource)
        if deployment is None:
            problems.append(f"resource {resource!r} is not a deployment")
        if problems:
            return 422, {"detail": problems}
        found = await self._client.get(f"/api/deployments/{deployment[1]}")
        if found.status_code == 404:
            return 404, {"detail": "Deployment not found."}
        with self._lock:
            before = self.sla_store.get(resource, {})
            after: dict[str, dict] = {}
            created, updated = [], []
            for sla in wanted:
                old = before.get(sla["name"])
                kind = next(k for k, needs in SLA_KINDS if set(needs) <= {f for f in sla if sla[f] is not None})
                after[sla["name"]] = {"id": old["id"] if old else str(uuid.uuid4()), "severity": "high",
                                      "enabled": True, **sla, "type": kind, "owner_resource": resource}
                (updated if old else created).append(after[sla["name"]])
            deleted = [sla for name, sla in before.items() if name not in after]
            self.sla_store[resource] = after
        return 200, {"created": created, "updated": updated, "deleted": deleted}

    def _upstream_body(self, method: str, path: str, body: bytes) -> bytes:
        """A Cloud that does not keep automation tags: what reaches the server has none."""
        if self.keeps_automation_tags or method not in ("POST", "PUT") or \
                not re.fullmatch(r"/api/automations/([0-9a-f-]{36})?", path.split("?", 1)[0]):
            return body
        try:
            wanted = json.loads(body)
        except ValueError:
            return body
        if not isinstance(wanted, dict):
            return body
        wanted.pop("tags", None)
        return json.dumps(wanted).encode()

    def _with_cloud_objects(self, method: str, path: str, status: int, body: bytes, answer: bytes) -> bytes:
        """The last page of /automations/filter with the metric automations the filter matches."""
        if method != "POST" or path.split("?", 1)[0] != "/api/automations/filter" or status != 200 or \
                not self.metric_automations:
            return answer
        try:
            asked, page = json.loads(body or b"{}"), json.loads(answer)
        except ValueError:
            return answer
        if len(page) >= asked.get("limit", 200):
            return answer
        criteria = asked.get("automations") or {}
        with self._lock:
            page += [a for a in self.metric_automations.values() if _matches(a, criteria)]
        return json.dumps(page).encode()

    # -- production ---------------------------------------------------------------------------

    def _produce(self, share: float, stop: threading.Event) -> None:
        """A flow run's calls, over and over: read the run, move its state, read its task runs, poll."""
        every = 60.0 / (self.per_minute * share)
        headers = {"Authorization": f"Bearer {self.api_key}", "User-Agent": PRODUCTION_AGENT}
        stats = self.production_stats
        with httpx.Client(base_url=self.api_url + "/", headers=headers, timeout=30) as http:
            run_id = None
            step = 0
            next_at = time.monotonic()
            while not stop.is_set():
                if run_id is None:
                    flow = self._send(http, stats, "POST", "flows/", {"name": "production-etl"})
                    run = flow and self._send(http, stats, "POST", "flow_runs/",
                                              {"flow_id": flow["id"], "state": {"type": "PENDING"}})
                    run_id = run and run["id"]
                else:
                    kind = step % 4
                    if kind == 0:
                        self._send(http, stats, "GET", f"flow_runs/{run_id}")
                    elif kind == 1:
                        self._send(http, stats, "POST", f"flow_runs/{run_id}/set_state",
                                   {"state": {"type": "RUNNING"}, "force": True})
                    elif kind == 2:
                        self._send(http, stats, "POST", "task_runs/filter",
                                   {"flow_runs": {"id": {"any_": [run_id]}}, "limit": 10})
                    else:
                        self._send(http, stats, "POST", "flow_runs/filter",
                                   {"flow_runs": {"state": {"type": {"any_": ["SCHEDULED"]}}}, "limit": 10})
                    step += 1
                next_at += every
                stop.wait(max(0.0, next_at - time.monotonic()))

    @staticmethod
    def _send(http: httpx.Client, stats: Production, method: str, path: str, body: dict | None = None):
        stats.sent += 1
        try:
            response = http.request(method, path, json=body)
        except httpx.HTTPError:
            stats.failed += 1
            return None
        stats.statuses[response.status_code] += 1
        if response.status_code == 429:
            stats.refused += 1
        elif response.status_code >= 400:
            stats.failed += 1
        return response.json() if response.status_code < 300 and response.content else None


# -- Cloud's own objects: shapes -------------------------------------------------------------------

SEVERITIES = ("minor", "low", "moderate", "high", "critical")
# (kind as Cloud's answer names it, the fields that make it): Prefect's client and the Terraform provider
SLA_KINDS = (("time_to_completion", ("duration",)), ("frequency", ("stale_after",)),
             ("freshness", ("within", "expected_event")), ("lateness", ("within",)))
SLA_FIELDS = {"name", "severity", "enabled", "owner_resource", "duration", "stale_after", "within", "expected_event",
              "resource_match"}


def _sla_problems(sla) -> list[str]:
    if not isinstance(sla, dict):
        return ["an SLA is an object"]
    problems = [f"unknown field {k!r}" for k in sla if k not in SLA_FIELDS]
    if not isinstance(sla.get("name"), str) or not sla.get("name"):
        problems.append("name is required")
    if "severity" in sla and sla["severity"] not in SEVERITIES:
        problems.append(f"severity must be one of {', '.join(SEVERITIES)}")
    for key in ("duration", "stale_after", "within"):
        if key in sla and (isinstance(sla[key], bool) or not isinstance(sla[key], (int, float)) or sla[key] <= 0):
            problems.append(f"{key} must be a positive number of seconds")
    given = {k for k in ("duration", "stale_after", "within", "expected_event") if sla.get(k) is not None}
    if not any(set(needs) <= given and not given - set(needs) for _, needs in SLA_KINDS):
        problems.append("exactly one kind: duration, stale_after, within, or within with expected_event")
    return problems


def _has_metric(trigger) -> bool:
    if not isinstance(trigger, dict):
        return False
    return trigger.get("type") == "metric" or any(_has_metric(t) for t in trigger.get("triggers") or [])


def _matches(automation: dict, criteria: dict) -> bool:
    """The open-source server's automation filter (name any_, tags all_, id any_), for the ones kept here."""
    tests = []
    if (names := (criteria.get("name") or {}).get("any_")) is not None:
        tests.append(automation.get("name") in names)
    if (tags := (criteria.get("tags") or {}).get("all_")) is not None:
        tests.append(set(tags) <= set(automation.get("tags") or []))
    if (ids := (criteria.get("id") or {}).get("any_")) is not None:
        tests.append(automation.get("id") in ids)
    if not tests:
        return True
    return any(tests) if criteria.get("operator") == "or_" else all(tests)
