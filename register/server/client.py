"""The Prefect server, as a deploy sees it: a few bulk reads, then only the writes that change something.

It speaks Prefect's REST API with httpx (no Prefect import: a run that writes nothing should not pay
for it), the way Prefect's own client does: the API key as a Bearer token, an auth string as Basic,
the X-PREFECT-API-VERSION header, a CSRF token when the server asks for one. It talks to the URL it was
given and never falls back to a throwaway ephemeral server.

Every request is retried with backoff on 429 (after its Retry-After), 5xx, dropped connections and
timeouts, within a deadline; a request that still fails raises a ServerError marked `transient` (the
server failed, not the manifest). Writes are safe to repeat (upserts, deletes that accept 404, flows by
name); the one write that is not, creating an automation, looks for what an unanswered attempt may
have left before it tries again. Every error names the request and the server's reason, and never
contains a secret.
"""

from __future__ import annotations

import base64
import contextlib
import math
import random
import threading
import time
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from urllib.parse import quote, unquote, urlsplit, urlunsplit

import httpx

from register import http
from register.problems import Invalid, Problem
from register.server import budget, cloud
from register.server.pace import Window, places
from register.server.profile import active_profile

PAGE = 200  # the server's largest page (PREFECT_API_DEFAULT_LIMIT)
API_VERSION = "0.8.4"  # the X-PREFECT-API-VERSION that Prefect 3's client sends (client/constants.py)
RETRY_STATUSES = {408, 429, 500, 502, 503, 504}
BUSY_STATUSES = {429, 503}  # the server asks for fewer requests at once (register/server/pace.py)
READS_START = 4  # reads in flight at first: a deploy's four first reads go out together
SERVED_MARGIN = 1.3  # a write's server time varies: the gap after it is this much longer
WRITES_START = 4  # writes of all kinds in flight at first (a SQLite server may stall with five or more)
LEASE_SECONDS = 60  # the shortest lease the server grants; renewed while the deploy runs
OLDEST_SERVER = "3.4.10"  # the first Prefect release whose concurrency leases hold (3.4.9 loses them)
# The largest answer read (a page of 200 deployments with their schemas is a few MiB); more is refused.
ANSWER_CAP = 32 * http.MiB
MAX_ITEMS = 100 * PAGE * 5  # a listing longer than this (100,000 objects) is refused, not paged for ever


class ServerError(Exception):
    """A request failed. `status` is the HTTP status, or None when the server could not be reached;
    `transient` when the server kept failing (5xx, 429, timeouts) until the retries ran out."""

    def __init__(self, message: str, status: int | None = None, *, transient: bool = False, rule: str | None = None):
        super().__init__(message)
        self.status = status
        self.transient = transient
        self.rule = rule  # a failure of its own kind, named in the report as [rule]

    @property
    def unreachable(self) -> bool:
        return self.status is None


def _secret_forms(secret: str, *, basic: bool = False) -> set[str]:
    """A secret in every form a server may echo it: as given, URL-encoded and -decoded, each line of a
    multi-line one, and (for user:password) base64 as a Basic header carries it."""
    forms = {secret, unquote(secret), quote(secret, safe="")}
    forms |= {line.strip() for line in secret.splitlines()}
    if basic:
        forms |= {base64.b64encode(f.encode()).decode() for f in (secret, unquote(secret))}
    return {f for f in forms if len(f) >= 4}


@contextlib.contextmanager
def _hidden(secrets: list[str]):
    """A ServerError raised inside has every form of `secrets` replaced by ***."""
    try:
        yield
    except ServerError as error:
        text = str(error)
        forms = sorted({f for s in secrets for f in _secret_forms(s) | {s.encode("unicode_escape").decode()}},
                       key=len, reverse=True)
        for form in forms:
            text = text.replace(form, "***")
        raise ServerError(text, error.status, transient=error.transient) from None


@dataclass(frozen=True)
class Connection:
    url: str
    api_key: str | None = field(default=None, repr=False)
    auth_string: str | None = field(default=None, repr=False)
    timeout: float = 30.0  # seconds for one request (PREFECT_API_REQUEST_TIMEOUT)
    retry_seconds: float = 120.0  # how long one request is retried before the server is declared failed
    # ... and how long while nothing has answered yet: a refused connection, an unknown host or a dropped
    # packet at first contact is a wrong URL or a server not started far more often than a restart.
    first_contact_seconds: float = 10.0
    # requests a minute (register/server/budget.py): None, the default for the URL (Prefect Cloud's: 150;
    # a self-hosted server: none); 0, none
    requests_per_minute: float | None = None

    @property
    def budget(self) -> float | None:
        """The requests a minute this run keeps to (None: no budget until a 429)."""
        if self.requests_per_minute is None:
            return float(budget.DEFAULT_CLOUD) if cloud.scope(self.url) else None
        return self.requests_per_minute or None

    @property
    def display_url(self) -> str:
        """The URL without any user:password part."""
        try:
            parts = urlsplit(self.url)
        except ValueError:
            return "PREFECT_API_URL"
        host = parts.netloc.rpartition("@")[2]
        return urlunsplit((parts.scheme, host, parts.path, parts.query, parts.fragment)).rstrip("/")

    def secrets(self) -> list[str]:
        """Every form of every secret, longest first (so the longest match is removed whole)."""
        found: set[str] = set()
        if self.api_key:
            found |= _secret_forms(self.api_key)
        if self.auth_string:
            found |= _secret_forms(self.auth_string, basic=True)
            found |= _secret_forms(self.auth_string.partition(":")[2])
        try:
            userinfo = urlsplit(self.url).netloc.rpartition("@")[0]
        except ValueError:
            userinfo = ""
        if userinfo:
            found |= _secret_forms(userinfo, basic=True) | _secret_forms(userinfo.partition(":")[2])
        return sorted(found, key=len, reverse=True)

    def redact(self, text: str) -> str:
        """`text` without any secret, whole or cut short by the server (a prefix of 6 characters or more)."""
        for secret in self.secrets():
            if len(secret) < 6:
                text = text.replace(secret, "***")
                continue
            start = text.find(secret[:6])
            while start >= 0:
                end = start + 6
                while end < len(text) and end - start < len(secret) and text[end] == secret[end - start]:
                    end += 1
                text = text[:start] + "***" + text[end:]
                start = text.find(secret[:6], start + 3)
        return text


def _url_problem(message: str) -> Invalid:
    return Invalid([Problem("PREFECT_API_URL", 0, 0, message, "server-url")])


def connection_from_environment(environ: Mapping[str, str]) -> Connection:
    """The server of PREFECT_API_URL (and its key or auth string); an error naming PREFECT_API_URL without it.

    Settings come from `environ` first, then from the active Prefect profile (PREFECT_PROFILE, or the
    `active` one in PREFECT_HOME's profiles.toml), so a user who ran `prefect cloud login` is served.
    """
    profile = active_profile(environ)

    def setting(name: str) -> str | None:
        value = environ.get(name)
        if value is None:
            value = profile.get(name)
        return str(value).strip() or None if value is not None else None

    url = setting("PREFECT_API_URL")
    account, workspace = setting("PREFECT_ACCOUNT_ID"), setting("PREFECT_WORKSPACE_ID")
    if account or workspace:  # a Prefect Cloud workspace by its ids, instead of its URL
        url = _workspace_url(environ.get("PREFECT_API_URL"), account, workspace, setting("PREFECT_CLOUD_API_URL") or cloud.CLOUD_API)
    if not url:
        raise _url_problem(
            "PREFECT_API_URL is not set: set it to the API of the Prefect server to register into, e.g. "
            "http://127.0.0.1:4200/api or https://api.prefect.cloud/api/accounts/<id>/workspaces/<id> "
            "(or, for Prefect Cloud, PREFECT_ACCOUNT_ID and PREFECT_WORKSPACE_ID; flow-register never starts a "
            "temporary server)")
    # The URL is not printed when it cannot be read: it may carry a password.
    try:
        parts = urlsplit(url)
        parsed = httpx.URL(url)
        parts.port  # noqa: B018 - raises on a port that is not a number
    except (ValueError, httpx.InvalidURL):
        raise _url_problem("PREFECT_API_URL is not a valid URL (not shown here: it may contain a password); "
                           "write it as http(s)://HOST[:PORT]/PATH") from None
    if parts.scheme not in ("http", "https") or not parsed.host:
        raise _url_problem(f"PREFECT_API_URL '{Connection(url).display_url}' is not an http:// or https:// URL "
                           "with a host")
    if mistake := cloud.url_mistake(url):
        raise _url_problem(mistake)

    def seconds(name: str, default: float) -> float:
        value = setting(name)
        try:
            return float(value) if value else default
        except ValueError:
            raise Invalid([Problem(name, 0, 0, f"{name} must be a number of seconds, not '{value}'",
                                   "server-timeout")]) from None

    return Connection(url.rstrip("/"), setting("PREFECT_API_KEY"), setting("PREFECT_API_AUTH_STRING"),
                      timeout=seconds("PREFECT_API_REQUEST_TIMEOUT", 30.0),
                      retry_seconds=seconds("FLOW_REGISTER_RETRY_SECONDS", 120.0),
                      requests_per_minute=_requests_per_minute(setting("FLOW_REGISTER_REQUESTS_PER_MINUTE")))


def _requests_per_minute(value: str | None) -> float | None:
    """--requests-per-minute (FLOW_REGISTER_REQUESTS_PER_MINUTE): a whole number, 0 for none; None: the default."""
    if value is None:
        return None
    if not value.isdigit():
        raise Invalid([Problem("--requests-per-minute", 0, 0,
                               f"--requests-per-minute must be a whole number of requests a minute (0: no budget), not "
                               f"'{value[:40]}'; Prefect Cloud's limits per account are Hobby 625, Starter 1250, Team "
                               f"2500, Pro 5000, shared with production's flow runs", "request-budget")])
    return float(value)


def _workspace_url(url: str | None, account: str | None, workspace: str | None, cloud_api: str) -> str:
    """The API URL of the Prefect Cloud workspace of PREFECT_ACCOUNT_ID and PREFECT_WORKSPACE_ID."""
    problems = [f"{name} must be the id Prefect Cloud shows (8-4-4-4-12 hexadecimal digits), not '{value[:60]}'"
                for name, value in (("PREFECT_ACCOUNT_ID", account), ("PREFECT_WORKSPACE_ID", workspace))
                if value and not cloud.is_id(value)]
    if not (account and workspace):
        missing = "PREFECT_WORKSPACE_ID" if account else "PREFECT_ACCOUNT_ID"
        problems.append(f"{missing} is not set: a Prefect Cloud workspace is named by both PREFECT_ACCOUNT_ID and "
                        "PREFECT_WORKSPACE_ID (inputs prefect-account-id and prefect-workspace-id)")
    if problems:
        raise Invalid([Problem(name, 0, 0, message, "server-url") for message in problems
                       for name in [message.split(" ", 1)[0]]])
    built = cloud.workspace_url(account.lower(), workspace.lower(), cloud_api)
    if url and url.rstrip("/").lower() != built.lower():
        raise _url_problem(f"PREFECT_API_URL '{Connection(url).display_url}' is not the workspace of "
                           f"PREFECT_ACCOUNT_ID and PREFECT_WORKSPACE_ID ({built}): give one or the other")
    return built


def _may_have_arrived(error: Exception | None, status: int | None) -> bool:
    """Whether a failed attempt may have reached the server (and so a write may have happened). A 429 or
    503 says the server did not take the request (Prefect answers 503 for a locked database, after its
    transaction was rolled back); a gateway's 502 or 504 may come after the server acted."""
    if status is not None:
        return status not in BUSY_STATUSES
    return not isinstance(error, (httpx.ConnectError, httpx.ConnectTimeout, httpx.PoolTimeout))


def _retry_after(response: httpx.Response | None) -> float | None:
    """The answer's Retry-After in seconds (HTTP allows a date too: then None, and the backoff applies)."""
    if response is None or not response.headers.get("Retry-After"):
        return None
    try:
        seconds = float(response.headers["Retry-After"])
    except ValueError:
        return None
    return min(max(0.0, seconds), 600.0) if math.isfinite(seconds) else None


def _maintenance(response: httpx.Response) -> bool:
    """Prefect Cloud's answer while it is under maintenance (Prefect's client waits these out)."""
    return response.headers.get("Prefect-Maintenance", "").lower() == "true"


class Server:
    """One connection to the Prefect API, safe to share between threads. Counts its requests (reads
    and writes, retries apart) for the report; `unsure_writes` counts writes whose first answer was
    lost, so the caller knows to check what the server holds."""

    def __init__(self, connection: Connection, *, sleep: Callable[[float], None] = time.sleep):
        self.connection = connection
        self.reads = 0
        self.writes = 0
        self.retries = 0
        self.unsure_writes = 0
        self._sleep = sleep
        self._lock = threading.Lock()
        self._windows: dict[str, Window] = {}
        self._client: httpx.Client | None = None
        self._csrf: dict[str, str] | None = None
        self._version: str | None = None
        self._answered = False  # the server has answered a request (any status) in this run
        self._fastest = float("inf")  # the fastest answer: the network's share of a round trip
        self._served: dict[str, float] = {}  # each kind of write: the server's time for it (smoothed)
        self.drops_automation_tags = False  # an automation written came back without its tags
        where = cloud.scope(connection.url)
        self.budget = budget.shared(where[1] if where else connection.url, connection.budget)
        # Asked before every write is sent (the deploy lease's: raises when it may have lapsed)
        self.before_write: Callable[[], None] | None = None

    @property
    def url(self) -> str:
        return self.connection.display_url

    def __enter__(self) -> Server:
        headers = {"X-PREFECT-API-VERSION": API_VERSION, "User-Agent": "flow-register"}
        if self.connection.auth_string:  # as Prefect's client: the auth string wins over a key
            token = base64.b64encode(self.connection.auth_string.encode()).decode()
            headers["Authorization"] = f"Basic {token}"
        elif self.connection.api_key:
            headers["Authorization"] = f"Bearer {self.connection.api_key}"
        timeout = httpx.Timeout(self.connection.timeout, connect=min(10.0, self.connection.timeout))
        limits = httpx.Limits(max_connections=32, max_keepalive_connections=32, keepalive_expiry=25)
        # One attempt ends within the request timeout, trickled or not (register/http.py).
        self._client = http.client(seconds=self.connection.timeout, cap=ANSWER_CAP,
                                   base_url=self.connection.url + "/", headers=headers, timeout=timeout,
                                   limits=limits, follow_redirects=True)
        return self

    def __exit__(self, *exc_info) -> None:
        if self._client is not None:
            self._client.close()

    # -- requests ------------------------------------------------------------------------------

    def request(self, method: str, path: str, *, json=None, doing: str,
                recover: Callable[[], object] | None = None, counted: bool = True, priority: bool = False,
                attempted: Callable[[float], None] | None = None):
        """Send one request, retried until it succeeds or the deadline passes; the parsed JSON answer.

        `recover`, for a write that is not safe to repeat: called before a retry when an attempt may have
        reached the server; what it returns (not None) is taken as the answer instead of writing again.
        `counted`: whether the report counts it and it waits its turn in the window (the deploy lease's
        requests are not the deploy's, and a renewal must not queue behind a narrowed window).
        `priority`: sent ahead of the requests budget's queue (the lease's renewal and release).
        `attempted`: told when each attempt is sent (monotonic seconds).
        """
        write = not (method == "GET" or path.endswith("/filter"))
        if counted:
            with self._lock:
                if write:
                    self.writes += 1
                else:
                    self.reads += 1
        started = time.monotonic()
        deadline = started + self.connection.retry_seconds
        attempt = 0
        unsure = False
        asked_csrf = False
        while True:
            attempt += 1
            error: Exception | None = None
            response = None
            windows = self._windows_of(method, path, write) if counted else []
            # The run's own pacing (the budget's tokens) is not the server failing: not counted in its deadline.
            sent, paced = self.budget.take(priority=priority)
            deadline += paced
            with places(windows, self._gap(method, path) if write else 0.0) as slot:
                if write and counted and self.before_write is not None:
                    self.before_write()
                began = time.monotonic()
                if attempted is not None:
                    attempted(began)
                try:
                    response = self._client.request(method, path.lstrip("/"), json=json,
                                                    headers=self._csrf_headers(method))
                except http.AnswerTooLarge as caught:  # the same request gets the same answer: not retried
                    raise ServerError(self.connection.redact(f"{doing}: {caught}"), None, transient=True) from None
                except httpx.HTTPError as caught:
                    error = caught
                    slot.busy = isinstance(caught, httpx.TimeoutException)
                else:
                    slot.busy = response.status_code in BUSY_STATUSES
                    slot.fine = response.status_code < 400
                    self._timed(method, path, time.monotonic() - began, slot.fine)
            if response is not None:
                self._answered = True
                if response.status_code == 403 and "CSRF" in response.text and not asked_csrf:
                    asked_csrf = True  # once: a second refusal is the server's answer
                    self._fetch_csrf_token(doing)
                    continue
                if response.status_code not in RETRY_STATUSES:
                    if response.status_code >= 400:
                        raise self._status_error(response, doing)
                    if response.status_code == 204 or not response.content:
                        return None
                    return response.json()
            status = response.status_code if response is not None else None
            if write and _may_have_arrived(error, status) and not unsure:
                unsure = True
                with self._lock:
                    self.unsure_writes += 1
            # A busy answer (a locked SQLite database: the other write ends within milliseconds) is tried
            # again once at the window's pace, which has already narrowed; then, and after any other
            # failure, attempts back off from 0.1 s to 10 s apart.
            busy = counted and status in BUSY_STATUSES
            wait = 0.0 if busy and attempt == 1 else \
                min(1.0 if priority else 10.0, 0.1 * 2 ** (attempt - 1 - busy)) * random.uniform(0.5, 1.0)
            retry_after = _retry_after(response)
            if retry_after is not None:
                # the lease's renewal asks again as soon as the server says, not after a growing backoff
                wait = retry_after if priority and status == 429 else max(wait, retry_after)
            if status == 429:  # the account's limit: the whole run waits, and sends less (budget.py)
                self.budget.refused_after(sent, retry_after)
            if response is not None and _maintenance(response):
                # Prefect Cloud's maintenance: asked again every few seconds until the deadline, whatever
                # Retry-After says, so a window shorter than it announced is not waited out in full.
                wait = min(wait, 5.0, max(0.0, deadline - time.monotonic()))
                if wait <= 0 and time.monotonic() < deadline:
                    wait = 0.5
            if response is None and not self._answered:
                deadline = min(deadline, started + self.connection.first_contact_seconds)
            if time.monotonic() + wait > deadline:
                raise self._gave_up(error, response, doing, attempt, time.monotonic() - started)
            with self._lock:
                self.retries += 1
            self._sleep(wait)
            if recover is not None and unsure:
                found = recover()
                if found is not None:
                    return found

    def _windows_of(self, method: str, path: str, write: bool) -> list[Window]:
        """Writes of one kind of object share a window, reads another: on SQLite two deployment upserts
        collide where flows and reads never do, so flows created at once must not open the window that
        deployment writes then go through together. Every write also goes through the window of all
        writes, which a busy answer to any of them narrows."""
        kind = self._kind(method, path) if write else "reads"
        with self._lock:
            if kind not in self._windows:
                self._windows[kind] = Window(start=2 if write else READS_START)
            if write and "writes" not in self._windows:
                self._windows["writes"] = Window(start=WRITES_START)
            return [self._windows[kind], self._windows["writes"]] if write else [self._windows[kind]]

    def _timed(self, method: str, path: str, took: float, fine: bool) -> None:
        """Learn the network's share of a round trip (the fastest answer) and each kind of write's share
        of the server's time (its answers' time beyond that)."""
        with self._lock:
            self._fastest = min(self._fastest, took)
            if fine:
                kind = self._kind(method, path)
                served = max(0.0, took - self._fastest)
                before = self._served.get(kind)
                self._served[kind] = served if before is None else 0.8 * before + 0.2 * served

    def _gap(self, method: str, path: str) -> float:
        """Once the server has answered busy (SQLite: one write at a time), a write lets the next one start
        only after the server's time for it: arriving one after another, they do not collide."""
        writes = self._windows.get("writes")
        if writes is None or writes.narrowest is None:
            return 0.0
        return SERVED_MARGIN * self._served.get(self._kind(method, path), 0.0)

    @staticmethod
    def _kind(method: str, path: str) -> str:
        return f"{method} {path.strip('/').split('/')[0]}"

    @property
    def narrowest_window(self) -> int | None:
        """When the server answered busy: the fewest requests of one kind that were then let in flight."""
        narrowed = [w.narrowest for w in self._windows.values() if w.narrowest is not None]
        return int(min(narrowed)) if narrowed else None

    def _csrf_headers(self, method: str) -> dict[str, str] | None:
        return self._csrf if method != "GET" else None

    def _fetch_csrf_token(self, doing: str) -> None:
        """A CSRF token for this client (a server started with CSRF protection asks for one on writes)."""
        client = self._csrf["Prefect-Csrf-Client"] if self._csrf else str(__import__("uuid").uuid4())
        token = self.request("GET", f"/csrf-token?client={client}", doing=f"{doing} (asking for a CSRF token)")
        self._csrf = {"Prefect-Csrf-Token": token["token"], "Prefect-Csrf-Client": client}

    def _gave_up(self, error, response, doing: str, attempts: int, seconds: float) -> ServerError:
        tried = f" ({attempts} attempts in {seconds:.0f}s)" if attempts > 1 else ""
        if response is None:
            reason = str(error) or type(error).__name__
            if isinstance(error, httpx.TimeoutException):
                reason = f"no answer within {self.connection.timeout:.0f}s"
            hint = "" if self._answered else "; check that the server is running and that PREFECT_API_URL is its address"
            message = f"cannot reach the Prefect server at {self.url} while {doing}: {reason}{tried}{hint}"
            return ServerError(self.connection.redact(message), None, transient=True)
        if _maintenance(response):
            return ServerError(f"{doing}: Prefect Cloud was under maintenance (Prefect-Maintenance) for all of the "
                               f"{seconds:.0f}s this run waits (FLOW_REGISTER_RETRY_SECONDS); run again when it has "
                               "ended", response.status_code, transient=True)
        if response.status_code == 429:
            budget_now = self.budget.per_minute
            kept = f"; this run kept to {budget_now:.0f} requests a minute" if budget_now else ""
            return ServerError(
                f"{doing}: the Prefect server refused it for its rate limit (429 Too Many Requests) for all of the "
                f"{seconds:.0f}s this run retries a request (FLOW_REGISTER_RETRY_SECONDS){tried}{kept}. On Prefect "
                "Cloud the limit is the account's, spent by every client of it (production's flow runs too): run "
                "again when they are quieter, or with a lower --requests-per-minute (input requests-per-minute)",
                429, transient=True, rule="rate-limit")
        failed = self._status_error(response, doing)
        return ServerError(f"{failed}{tried}", failed.status, transient=True)

    def _status_error(self, response: httpx.Response, doing: str) -> ServerError:
        try:
            body = response.json()
            detail = body.get("detail", body) if isinstance(body, dict) else body
        except ValueError:
            detail = response.text
        if isinstance(detail, list):  # FastAPI's validation errors
            detail = "; ".join(f"{'.'.join(str(p) for p in d.get('loc', []))}: {d.get('msg')}"
                               if isinstance(d, dict) else str(d) for d in detail)
        status = response.status_code
        hint = ""
        if status in (401, 403):
            hint = cloud.refusal_hint(status, str(detail), self.connection.url, has_key=bool(self.connection.api_key),
                                      workspaces=self._cloud_workspaces) or ""
        if status in (401, 403) and not hint:
            if self.connection.auth_string:
                hint = "; check PREFECT_API_AUTH_STRING"
            elif self.connection.api_key:
                hint = "; check PREFECT_API_KEY"
            else:
                hint = ("; the server wants credentials: set PREFECT_API_KEY (Prefect Cloud) or "
                        "PREFECT_API_AUTH_STRING (a server with basic auth)")
        # A server's detail can be megabytes: cut short before it reaches a log or a summary.
        detail = f": {http.shorten(detail)}" if detail not in (None, "", {}, []) else ""
        message = f"{doing}: the server answered {status} {response.reason_phrase}{detail}{hint}"
        return ServerError(self.connection.redact(message), status)

    def _cloud_workspaces(self) -> list | None:
        """The workspaces Prefect Cloud lets this key reach (one try, no retries), or None when not known."""
        where = cloud.scope(self.connection.url)
        if where is None or self._client is None:
            return None
        try:
            response = self._client.get(f"{where[0]}/me/workspaces", timeout=min(10.0, self.connection.timeout))
            listed = response.json() if response.status_code == 200 else None
        except (httpx.HTTPError, ValueError):
            return None
        return listed if isinstance(listed, list) else None

    def _paged(self, path: str, body: dict, doing: str) -> list[dict]:
        out: list[dict] = []
        while True:
            page = self.request("POST", path, json={**body, "limit": PAGE, "offset": len(out)}, doing=doing)
            if not isinstance(page, list) or len(page) > PAGE:
                raise ServerError(f"{doing}: the server at {self.url} answered "
                                  f"{'more than a page' if isinstance(page, list) else 'something else'} instead of "
                                  f"a page of at most {PAGE}", None, transient=True)
            out += page
            if len(page) < PAGE:
                return out
            if len(out) >= MAX_ITEMS:
                raise ServerError(f"{doing}: the server at {self.url} listed more than {MAX_ITEMS} and kept going; "
                                  "stopped there", None, transient=True)

    def version(self) -> str:
        """The Prefect release the server runs (GET /admin/version), asked once."""
        if self._version is None:
            self._version = str(self.request("GET", "/admin/version", doing="reading the server's version"))
        return self._version

    def release(self) -> str | None:
        """The server's Prefect release, None when it does not say (Prefect Cloud answers no version)."""
        try:
            return self.version()
        except ServerError:
            return None

    def too_old(self) -> bool:
        """Whether the server says it runs a Prefect release older than OLDEST_SERVER (Prefect Cloud, or a
        server that does not say, is taken as new enough)."""
        def release(text: str) -> tuple[int, ...]:
            return tuple(int(part) for part in text.split(".")[:3])

        try:
            return release(self.version()) < release(OLDEST_SERVER)
        except (ServerError, ValueError):
            return False

    def unsupported(self, what: str) -> ServerError:
        """The error for a server too old for `what`, naming its release."""
        try:
            release = f"Prefect {self.version()}"
        except ServerError:
            release = "a Prefect release that does not say its version"
        return ServerError(f"the server at {self.url} runs {release}, which has no {what}; flow-register needs "
                           f"a Prefect server {OLDEST_SERVER} or newer", 404)

    # -- reads (bulk: one request per kind, whatever the number of deployments) -----------------

    def work_pools(self, names: list[str]) -> dict[str, dict]:
        pools = self._paged("/work_pools/filter", {"work_pools": {"name": {"any_": sorted(set(names))}}},
                            "reading work pools")
        return {pool["name"]: pool for pool in pools}

    def work_pool_names(self) -> list[str]:
        return sorted(p["name"] for p in self._paged("/work_pools/filter", {}, "listing work pools"))

    def deployments(self, names: list[str], owner_tags: list[str]) -> list[dict]:
        """Deployments named like a desired one, or carrying all of `owner_tags` (whatever their name)."""
        criteria = {"operator": "or_", "tags": {"all_": owner_tags}}
        if names:
            criteria["name"] = {"any_": sorted(set(names))}
        return self._paged("/deployments/filter", {"deployments": criteria}, "reading deployments")

    def flows(self, names: list[str], ids: list[str]) -> list[dict]:
        if not names and not ids:
            return []
        criteria: dict = {"operator": "or_"}
        if names:
            criteria["name"] = {"any_": sorted(set(names))}
        if ids:
            criteria["id"] = {"any_": sorted(set(ids))}
        return self._paged("/flows/filter", {"flows": criteria}, "reading flows")

    def automations(self, owner_tags: list[str], names: list[str] = ()) -> list[dict]:
        """Automations carrying all of `owner_tags`, or named one of `names`, in one read. The names find
        what a server that does not keep automation tags holds (Prefect Cloud's keeping them is not
        documented), and what `prefect deploy` made for a deployment being taken over; the caller keeps
        only those that run its deployments."""
        criteria: dict = {"operator": "or_", "tags": {"all_": owner_tags}}
        if names:
            criteria["name"] = {"any_": sorted(set(names))}
        return self._paged("/automations/filter", {"automations": criteria}, "reading automations")

    def existing_blocks(self, wanted: set[tuple[str, str]]) -> set[tuple[str, str]]:
        """Of `wanted` (block type slug, name), those the server has, and others of the same types."""
        found = self._paged("/block_documents/filter", {
            "block_types": {"slug": {"any_": sorted({kind for kind, _ in wanted})}},
            "block_documents": {"is_anonymous": {"eq_": False}}}, "reading blocks")
        return {((b.get("block_type") or {}).get("slug"), b["name"]) for b in found}

    def existing_variables(self, names: set[str]) -> set[str]:
        found = self._paged("/variables/filter", {"variables": {"name": {"any_": sorted(names)}}},
                            "reading variables")
        return {v["name"] for v in found}

    def variables(self, names: list[str], owner_tags: list[str]) -> list[dict]:
        """Variables named like a desired one, or carrying all of `owner_tags` (whatever their name)."""
        criteria = {"operator": "or_", "tags": {"all_": owner_tags}}
        if names:
            criteria["name"] = {"any_": sorted(set(names))}
        return self._paged("/variables/filter", {"variables": criteria}, "reading variables")

    def worker_metadata(self) -> dict:
        """Every known worker type's default base job template (bundled with the server, works offline)."""
        return self.request("GET", "/collections/views/aggregate-worker-metadata", doing="reading worker types")

    def owned_automations(self, deployment_id: str, names: list[str]) -> list[dict]:
        """The automations named `names` that the deployment owns."""
        found = self._paged("/automations/filter", {"automations": {"name": {"any_": sorted(set(names))}}},
                            "reading the triggers of a deployment")
        # The server does not return owner_resource when read: an automation of the deployment's is one
        # whose "run a deployment" action runs this one.
        return [a for a in found if any(str(action.get("deployment_id")) == deployment_id
                                        for action in a.get("actions") or [] if action.get("type") == "run-deployment")]

    # -- writes --------------------------------------------------------------------------------

    def create_flow(self, name: str) -> str:
        """The flow's id; POST /flows/ returns the existing flow when the name is taken."""
        return self.request("POST", "/flows/", json={"name": name}, doing=f"creating flow '{name}'")["id"]

    def upsert_deployment(self, payload: dict) -> str:
        """Create the deployment, or replace the one with the same flow and name (same id)."""
        return self.request("POST", "/deployments/", json=payload,
                            doing=f"registering deployment '{payload['name']}'")["id"]

    def _delete(self, path: str, doing: str) -> None:
        """DELETE `path`; a 404 means already gone (perhaps by an attempt whose answer was lost)."""
        try:
            self.request("DELETE", path, doing=doing)
        except ServerError as error:
            if error.status != 404:
                raise

    def delete_deployment(self, deployment_id: str, name: str) -> None:
        self._delete(f"/deployments/{deployment_id}", f"deleting deployment '{name}'")

    def delete_owned_automations(self, deployment_id: str, name: str) -> None:
        self.request("DELETE", f"/automations/owned-by/prefect.deployment.{deployment_id}",
                     doing=f"deleting the triggers of '{name}'")

    def delete_automation(self, automation_id: str, name: str) -> None:
        self._delete(f"/automations/{automation_id}", f"deleting a trigger of '{name}'")

    def create_automation(self, automation: dict, name: str) -> str:
        """Create the automation; if an attempt's answer was lost, the one it made (found by its name and
        owner) instead of a second."""
        owner = automation["owner_resource"].removeprefix("prefect.deployment.")

        def made_already():
            found = self.owned_automations(owner, [automation["name"]])
            return found[0] if found else None

        made = self.request("POST", "/automations/", json=automation, recover=made_already,
                            doing=f"creating trigger '{automation['name']}' of '{name}'")
        if automation.get("tags") and not set(automation["tags"]) <= set(made.get("tags") or []):
            self.drops_automation_tags = True  # written, read back without them: found by name (automations())
        return made["id"]

    def apply_slas(self, deployment_id: str, slas: list[dict], name: str) -> None:
        """Make the deployment's SLAs exactly `slas` (Prefect Cloud matches them by name: creates, updates
        and deletes), as Prefect's client `apply_slas_for_deployment` does. Safe to repeat."""
        owner = f"prefect.deployment.{deployment_id}"
        try:
            self.request("POST", f"/slas/apply-resource-slas/{owner}",
                         json=[{**sla, "owner_resource": owner} for sla in slas], doing=f"setting the SLAs of '{name}'")
        except ServerError as error:
            if error.status in (404, 405):
                raise ServerError(f"{error}; the server at {self.url} has no SLA endpoints: SLAs are a Prefect "
                                  "Cloud feature", error.status) from None
            raise

    def create_variable(self, payload: dict) -> str:
        """Create a variable; if an attempt's answer was lost, the one it made (found by name) instead of a
        conflict with itself."""
        name = payload["name"]

        def made_already():
            found = self._paged("/variables/filter", {"variables": {"name": {"any_": [name]}}}, "reading a variable")
            return found[0] if found and found[0].get("tags") == payload["tags"] else None

        return self.request("POST", "/variables/", json=payload, recover=made_already,
                            doing=f"creating variable '{name}'")["id"]

    def update_variable(self, payload: dict) -> None:
        self.request("PATCH", f"/variables/name/{quote(payload['name'], safe='')}", json=payload,
                     doing=f"updating variable '{payload['name']}'")

    def delete_variable(self, name: str) -> None:
        self._delete(f"/variables/name/{quote(name, safe='')}", f"deleting variable '{name}'")

    # -- Prefect Cloud webhooks (Cloud's API: POST /webhooks/, POST /webhooks/filter, PUT and DELETE
    #    /webhooks/{id}; an open-source server has none and answers 404) -------------------------------

    def webhooks(self) -> list[dict]:
        """Every webhook of the workspace: their ownership is in their descriptions, which no filter selects."""
        return self._paged("/webhooks/filter", {}, "reading webhooks")

    def webhook_url(self, slug: str) -> str:
        """The URL other systems call: Cloud's API host, /hooks/, the slug Cloud gave the webhook."""
        parts = urlsplit(self.connection.url)
        return f"{parts.scheme}://{parts.netloc.rpartition('@')[2]}/hooks/{quote(str(slug), safe='')}"

    def create_webhook(self, payload: dict) -> dict:
        """Create a webhook; if an attempt's answer was lost, the one it made (same name and description,
        whose ownership line holds the fingerprint of this write) instead of a second one."""
        name = payload["name"]

        def made_already():
            return next((w for w in self.webhooks() if w.get("name") == name
                         and w.get("description") == payload["description"]), None)

        return self.request("POST", "/webhooks/", json=payload, recover=made_already,
                            doing=f"creating webhook '{name}'")

    def update_webhook(self, webhook_id: str, payload: dict) -> None:
        self.request("PUT", f"/webhooks/{quote(webhook_id, safe='')}", json=payload,
                     doing=f"updating webhook '{payload['name']}'")

    def delete_webhook(self, webhook_id: str, name: str) -> None:
        self._delete(f"/webhooks/{quote(webhook_id, safe='')}", f"deleting webhook '{name}'")

    # -- blocks (register/kinds/block.py) ------------------------------------------------------------
    # A block document's data may hold secrets: every write's error is stripped of them (`hiding`), since a
    # server's refusal may echo the request (Prefect's 422 carries the request body).

    def block_documents(self, slugs: list[str], names: list[str], ids: list[str]) -> list[dict]:
        """Named block documents of these types, and those of these ids, with their secrets (held in memory
        only, to compare them with the manifest's)."""
        found: dict[str, dict] = {}
        if slugs and names:
            for raw in self._paged("/block_documents/filter", {
                    "include_secrets": True, "block_types": {"slug": {"any_": sorted(set(slugs))}},
                    "block_documents": {"name": {"any_": sorted(set(names))}, "is_anonymous": {"eq_": False}}},
                    "reading blocks"):
                found[str(raw["id"])] = raw
        missing = sorted(set(ids) - set(found))
        if missing:
            for raw in self._paged("/block_documents/filter", {
                    "include_secrets": True, "block_documents": {"id": {"any_": missing}}}, "reading blocks"):
                found[str(raw["id"])] = raw
        return list(found.values())

    def block_document(self, slug: str, name: str) -> dict | None:
        """One block document by type and name (without its secrets), or None."""
        try:
            return self.request("GET", f"/block_types/slug/{quote(slug, safe='')}/block_documents/name/"
                                       f"{quote(name, safe='')}", doing=f"reading block '{slug}/{name}'")
        except ServerError as error:
            if error.status == 404:
                return None
            raise

    def block_type_id(self, slug: str) -> str | None:
        try:
            return str(self.request("GET", f"/block_types/slug/{quote(slug, safe='')}",
                                    doing=f"reading block type '{slug}'")["id"])
        except ServerError as error:
            if error.status == 404:
                return None
            raise

    def create_block_type(self, block_type: dict) -> str:
        """Register a block type (409: registered meanwhile, by an attempt whose answer was lost or by
        another run: that one)."""
        slug = block_type["slug"]
        try:
            return str(self.request("POST", "/block_types/", json=block_type,
                                    doing=f"registering block type '{slug}'")["id"])
        except ServerError as error:
            if error.status == 409 and (found := self.block_type_id(slug)):
                return found
            raise

    def block_schema_id(self, checksum: str, version: str) -> str | None:
        try:
            return str(self.request("GET", f"/block_schemas/checksum/{quote(checksum, safe='')}?version="
                                           f"{quote(version, safe='')}", doing="reading a block schema")["id"])
        except ServerError as error:
            if error.status == 404:
                return None
            raise

    def create_block_schema(self, schema: dict, slug: str) -> str:
        """Register a block schema; the server answers an existing one of the same checksum with it."""
        return str(self.request("POST", "/block_schemas/", json=schema,
                                doing=f"registering the schema of block type '{slug}'")["id"])

    def create_block_document(self, payload: dict, slug: str, hiding: list[str]) -> dict:
        """Create a block document; if an attempt's answer was lost, the one it made (found by name)."""
        name = payload["name"]
        with _hidden(hiding):
            return self.request("POST", "/block_documents/", json=payload, recover=lambda: self.block_document(
                slug, name), doing=f"creating block '{slug}/{name}'")

    def update_block_document(self, block_id: str, payload: dict, key: str, hiding: list[str]) -> None:
        with _hidden(hiding):
            self.request("PATCH", f"/block_documents/{quote(block_id, safe='')}", json=payload,
                         doing=f"updating block '{key}'")

    def delete_block_document(self, block_id: str, key: str) -> None:
        self._delete(f"/block_documents/{quote(block_id, safe='')}", f"deleting block '{key}'")

    def variable(self, name: str) -> dict | None:
        try:
            return self.request("GET", f"/variables/name/{quote(name, safe='')}", doing=f"reading variable '{name}'")
        except ServerError as error:
            if error.status == 404:
                return None
            raise

    def tagged_variables(self, tag: str) -> list[dict]:
        return self._paged("/variables/filter", {"variables": {"tags": {"all_": [tag]}}}, "reading variables")

    def create_work_pool(self, name: str, pool_type: str, base_job_template: dict) -> dict:
        return self.request("POST", "/work_pools/",
                            json={"name": name, "type": pool_type, "base_job_template": base_job_template},
                            doing=f"creating work pool '{name}'")

    # -- the deploy lease ----------------------------------------------------------------------

    @contextlib.contextmanager
    def lease(self, project: str, environment: str, *, wait: float = 600,
              say: Callable[[str], None] = print) -> Iterator[Lease]:
        """Hold the one deploy lease of `project` in `environment` (a global concurrency limit of one slot,
        leased for LEASE_SECONDS and renewed until the block ends, so a killed run's lease expires).
        Waits up to `wait` seconds for another run to finish, telling `say` why; then a ServerError."""
        lease = Lease(self, f"flow-register:{project}:{environment}", project, environment)
        lease.acquire(wait, say)
        try:
            yield lease
        finally:
            lease.release()


class Lease:
    """A held deploy lease; `lost` is set when the server no longer knows it (renewal refused).

    Renewed every LEASE_SECONDS / 4, ahead of every other request (the requests budget's priority), and
    again as soon as a Retry-After allows when the server refuses. `held_until` is when the lease lapses at
    the earliest: LEASE_SECONDS after the last renewal the server took was sent. Every write asks `check`
    first: once the lease may lapse before the write is answered (the server has refused its renewals for
    a while, e.g. an account over its rate limit), the run stops before that write, so nothing is ever
    written by a run whose lease another run may hold."""

    def __init__(self, server: Server, name: str, project: str, environment: str):
        self.server = server
        self.name = name
        self.what = f"project '{project}' in environment '{environment}'"
        self.id: str | None = None
        self.lost: str | None = None
        self.held_until = 0.0
        self.renewed = 0  # renewals the server took, for the tests and the report
        # a write is sent only while the lease holds for this much longer (the renewals have had three chances to
        # get through by then: a SQLite server busy with the deploy's own writes can hold one for 30 s)
        self.margin = min(server.connection.timeout, LEASE_SECONDS / 6)
        self._attempt = 0.0
        self._stop = threading.Event()
        self._renewer: threading.Thread | None = None

    def _attempted(self, when: float) -> None:
        self._attempt = when

    def check(self) -> None:
        """Raise, before a write is sent, when the lease is lost or may lapse before the write is answered."""
        if self.lost:
            raise ServerError(self.lost, transient=True, rule="deploy-lease")
        left = self.held_until - time.monotonic()
        if left >= self.margin:
            return
        refused = self.server.budget.refused
        why = f" ({refused} answers 429 Too Many Requests in this run: the rate limit)" if refused else ""
        ago = LEASE_SECONDS - left
        raise ServerError(
            f"stopped before the next write: the server has not taken a renewal of the deploy lease '{self.name}' "
            f"for {ago:.0f}s{why}, and it lapses {LEASE_SECONDS}s after the last one; a write now could land after "
            "another run took it. Nothing more was written; run again (it converges). On Prefect Cloud the rate "
            "limit is the account's: production's flow runs spend it too", transient=True, rule="deploy-lease")

    def _increment(self) -> dict | None:
        """The lease, or None when the slot is taken (423)."""
        try:
            return self.server.request(
                "POST", "/v2/concurrency_limits/increment-with-lease",
                json={"names": [self.name], "slots": 1, "mode": "concurrency", "lease_duration": LEASE_SECONDS},
                doing=f"taking the deploy lease of {self.what}", counted=False, attempted=self._attempted)
        except ServerError as error:
            if error.status == 423:
                return None
            if error.status == 404:
                raise self.server.unsupported("concurrency leases (POST /v2/concurrency_limits/increment-with-lease)")
            raise

    def _create_limit(self) -> None:
        try:
            self.server.request("POST", "/v2/concurrency_limits/", json={"name": self.name, "limit": 1},
                                doing=f"creating the deploy lock of {self.what}", counted=False)
        except ServerError as error:
            if error.status != 409:  # made meanwhile by another run, or by an attempt whose answer was lost
                raise

    def acquire(self, wait: float, say: Callable[[str], None]) -> None:
        deadline = time.monotonic() + wait
        told = False
        while True:
            answer = self._increment()
            if answer is not None and not answer.get("limits"):
                # No such limit yet: the server grants a lease on nothing. Make the limit, then ask again.
                self._release_id(answer["lease_id"])
                self._create_limit()
                continue
            if answer is not None:
                self.id = answer["lease_id"]
                self.held_until = self._attempt + LEASE_SECONDS
                self._check_limit()
                break
            left = deadline - time.monotonic()
            if left <= 0:
                raise ServerError(
                    f"another deploy of {self.what} still holds the deploy lease '{self.name}' after {wait:.0f}s; "
                    "nothing was written: run again when it has finished. A run that was killed frees it about "
                    f"{LEASE_SECONDS + 15}s after it stopped; a lease lost by a restarted server is freed with "
                    f"`prefect gcl update {self.name} --active-slots 0`", 423, transient=True)
            if not told:
                if self.server.too_old():  # 3.4.9 loses leases: this one would never be freed
                    raise self.server.unsupported("concurrency leases that hold")
                say(f"Waiting for another deploy of {self.what} to finish (the deploy lease '{self.name}' on "
                    f"{self.server.url}), up to {wait:.0f}s")
                told = True
            self.server._sleep(min(left, 2.0))
        self._renewer = threading.Thread(target=self._renew, name="deploy-lease", daemon=True)
        self._renewer.start()
        self.server.before_write = self.check

    def _check_limit(self) -> None:
        """The limit is what makes the lease exclusive; a server user can change it. The server grants a
        lease on an inactive limit without counting it, lets a limit above one be held by as many runs, and
        frees a decaying one by itself: with any of them two deploys would run at once. Checked after the
        lease is granted, so one switched off while another run holds it is found too. Refused, not
        repaired: whoever changed it may have meant to, and a deploy should not undo it unasked."""
        limit = self.server.request("GET", f"/v2/concurrency_limits/{quote(self.name, safe=':')}",
                                    doing=f"reading the deploy lock of {self.what}", counted=False) or {}
        wrong = []
        if not limit.get("active", True):
            wrong.append("it is inactive (every run would get the lease)")
        if limit.get("limit") != 1:
            wrong.append(f"its limit is {http.shorten(limit.get('limit'), 40)}, not 1")
        if limit.get("slot_decay_per_second"):
            wrong.append("its slots decay (a rate limit frees the lease by itself)")
        if not wrong:
            return
        self._release_id(self.id)
        self.id = None
        raise ServerError(
            f"the deploy lock '{self.name}' on {self.server.url} no longer keeps deploys of {self.what} one at a time: "
            f"{'; '.join(wrong)}. Nothing was written. Someone changed it on the server; put it back with "
            f"`prefect gcl update {self.name} --enable --limit 1 --slot-decay-per-second 0`, or delete it "
            f"(`prefect gcl delete {self.name}`) and flow-register makes it again", 423)

    def _renew(self) -> None:
        every = LEASE_SECONDS / 4
        while not self._stop.wait(max(0.0, self.held_until - LEASE_SECONDS + every - time.monotonic())):
            try:
                self.server.request("POST", f"/v2/concurrency_limits/leases/{self.id}/renew",
                                    json={"lease_duration": LEASE_SECONDS}, doing="renewing the deploy lease",
                                    counted=False, priority=True, attempted=self._attempted)
            except ServerError as error:
                if error.status in (404, 410):
                    self.lost = (f"the deploy lease '{self.name}' expired before this run ended (the server did "
                                 "not hear from it in time); stopped before the next write: run again")
                    return
                self._stop.wait(1.0)  # refused for all of the retry time: asked again while the run lasts
            else:
                self.held_until = self._attempt + LEASE_SECONDS
                self.renewed += 1

    def _release_id(self, lease_id: str) -> None:
        try:
            self.server.request("POST", "/v2/concurrency_limits/decrement-with-lease", json={"lease_id": lease_id},
                                doing="releasing the deploy lease", counted=False, priority=True)
        except ServerError as error:
            if error.status not in (404, 410):
                raise

    def release(self) -> None:
        self._stop.set()
        if self.server.before_write == self.check:
            self.server.before_write = None
        if self._renewer is not None:
            # a renewal still retrying (the server refusing) is not waited for: the lease is released or lapses
            self._renewer.join(timeout=2.0)
        if self.id is not None and self.lost is None:
            with contextlib.suppress(ServerError):  # it expires by itself
                self._release_id(self.id)
