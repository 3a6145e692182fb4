"""A loopback HTTP proxy in front of a real Prefect server: a round trip of its own, and faults on demand.

Tests and bench/ put it between flow-register and a local server to meet what users meet against a
hosted one: every request waits `delay_ms` (the round trip), and a request may fail the way networks and
servers fail. A fault is chosen by a scripted `Rule` (the nth `POST /automations/`, say) or, with
`fault_rate`, at random from `faults` with a seeded generator, so a run can be repeated.

Fault kinds:
  "500", "502", "503"  the status, without passing the request on (any other status too, e.g. "422")
  "429"                Too Many Requests with `Retry-After: retry_after`
  "reset"              the connection is reset (TCP RST) before the request reaches the server
  "timeout"            the request is held for `hold_seconds` (past the client's timeout), then dropped
  "lost"               the request reaches the server, the client sees 502 (a write it cannot know about)
  "reset-after", "timeout-after"   as "reset" and "timeout", after the server got the request
  "hold"               the request waits until the test calls open_gate(), then passes (a run paused
                       at a known point, for races)
  "late"               the request is held for `hold_seconds` (past the client's timeout), then reaches
                       the server anyway, after the client has given up on it (a slow network's late write)

In a test:    with Proxy(server.api_url, delay_ms=100) as proxy: ... proxy.api_url ... proxy.counts
From a shell: python -m tests.support.proxy --upstream http://127.0.0.1:4200/api --delay-ms 100
  (prints the proxy's API URL on its first line; GET /__proxy__/counts answers the counts as JSON,
  POST /__proxy__/reset clears them; --counts FILE writes them there on exit)
"""

from __future__ import annotations

import argparse
import asyncio
import json
import random
import re
import signal
import socket
import struct
import sys
import threading
from collections import Counter
from dataclasses import dataclass, field
from urllib.parse import urlsplit

import httpx

KINDS = ("500", "502", "503", "429", "reset", "timeout", "lost", "reset-after", "timeout-after")
SCRIPTED = ("hold", "late")  # for rules only: never drawn at random
HOP_BY_HOP = {"connection", "keep-alive", "transfer-encoding", "te", "trailer", "upgrade", "host",
              "content-length", "proxy-connection"}
CONTROL = "/__proxy__/"
_ID = re.compile(r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}")


def _check(fault: str) -> None:
    if fault not in KINDS + SCRIPTED and not (fault.isdigit() and len(fault) == 3):
        raise ValueError(f"unknown fault {fault!r}: a status such as '500', or one of {', '.join(KINDS)}")


def route(method: str, path: str) -> str:
    """'POST /api/deployments/{id}': a request's method and path, ids and query left out, for counting."""
    return f"{method} {_ID.sub('{id}', path.split('?', 1)[0])}"


@dataclass
class Rule:
    """Fail matching requests: from the `nth` match on, `times` of them (None: every one after).

    `method` is matched exactly, `path` and `body` as regular expressions searched in the path (query
    included) and the request's body."""

    fault: str
    method: str | None = None
    path: str | None = None
    body: str | None = None
    nth: int = 1
    times: int | None = 1
    seen: int = field(default=0, init=False)
    fired: int = field(default=0, init=False)

    def __post_init__(self):
        _check(self.fault)

    def take(self, method: str, path: str, body: bytes) -> bool:
        if self.method and self.method != method or self.path and not re.search(self.path, path):
            return False
        if self.body and not re.search(self.body, body.decode("utf-8", "replace")):
            return False
        self.seen += 1
        if self.seen < self.nth or self.times is not None and self.fired >= self.times:
            return False
        self.fired += 1
        return True


@dataclass
class Entry:
    method: str
    path: str
    fault: str | None
    status: int | None  # what the client got; None for a reset or a timeout
    arrived: float = 0.0  # when the proxy read it (loop time, seconds)
    upstream_seconds: float | None = None  # how long the server took to answer it, when it was passed on


class Served:
    """An HTTP server on loopback in a thread of its own, passing what it lets through to `origin` with one
    async client: the lifetime shared by the fault proxy and the Cloud stand-in. Use as a context manager, or
    start() and stop(); a subclass answers each connection (`_connection`) and may prepare its loop (`_prepare`)."""

    thread_name = "served"
    origin: str
    port: int = 0
    _loop: asyncio.AbstractEventLoop | None = None
    _thread: threading.Thread | None = None
    _stopping: asyncio.Event | None = None

    def start(self):
        ready = threading.Event()
        failure: list[BaseException] = []

        def run():
            try:
                asyncio.run(self._serve(ready))
            except BaseException as error:  # noqa: BLE001 - handed to the starting thread
                failure.append(error)
                ready.set()

        self._thread = threading.Thread(target=run, name=self.thread_name, daemon=True)
        self._thread.start()
        ready.wait()
        if failure:
            raise failure[0]
        return self

    def stop(self) -> None:
        if self._loop and self._stopping:
            self._loop.call_soon_threadsafe(self._stopping.set)
        if self._thread:
            self._thread.join(timeout=10)

    def __enter__(self):
        return self.start()

    def __exit__(self, *exc_info) -> None:
        self.stop()

    def _prepare(self) -> None:
        """Loop-bound state a subclass needs (events, locks), made on the server's loop."""

    async def _connection(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        raise NotImplementedError

    async def _serve(self, ready: threading.Event | None = None) -> None:
        self._loop = asyncio.get_running_loop()
        self._stopping = asyncio.Event()
        self._prepare()
        # uvicorn closes a connection idle for 5 s, httpx's default expiry is also 5 s: a request sent on
        # one at that instant reads nothing back (httpx.ReadError). Expire idle connections well before.
        limits = httpx.Limits(max_connections=None, max_keepalive_connections=64, keepalive_expiry=2)
        async with httpx.AsyncClient(base_url=self.origin, timeout=300, limits=limits) as client:
            self._client = client
            server = await asyncio.start_server(self._connection, "127.0.0.1", self.port)
            self.port = server.sockets[0].getsockname()[1]
            if ready:
                ready.set()
            async with server:
                await self._stopping.wait()
                server.close()
                # held requests end with the server
                for task in [t for t in asyncio.all_tasks() if t is not asyncio.current_task()]:
                    task.cancel()


class Proxy(Served):
    """The proxy, served from a thread of its own. Use as a context manager, or start() and stop()."""

    def __init__(self, upstream: str, *, delay_ms: float = 0, fault_rate: float = 0.0,
                 faults: tuple[str, ...] | list[str] = KINDS, seed: int = 0, rules: list[Rule] | None = None,
                 methods: tuple[str, ...] | None = None, retry_after: float = 1, hold_seconds: float = 60,
                 port: int = 0):
        parts = urlsplit(upstream)
        if parts.scheme not in ("http", "https") or not parts.netloc:
            raise ValueError(f"upstream must be an http(s) URL, not {upstream!r}")
        for kind in faults:
            _check(kind)
        self.origin = f"{parts.scheme}://{parts.netloc}"
        self.api_path = parts.path.rstrip("/")
        self.delay = delay_ms / 1000
        self.fault_rate = fault_rate
        self.faults = tuple(faults)
        self.random = random.Random(seed)
        self.rules: list[Rule] = list(rules or [])
        self.methods = methods  # random faults only for these methods (None: all)
        self.retry_after = retry_after
        self.hold_seconds = hold_seconds
        self.port = port
        self.log: list[Entry] = []
        self._lock = threading.Lock()
        self._gate: asyncio.Event | None = None

    # -- what tests read and change -----------------------------------------------------------

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def api_url(self) -> str:
        """The upstream's API URL, through the proxy."""
        return self.url + self.api_path

    @property
    def counts(self) -> Counter:
        """Requests by route ('POST /api/deployments/'), faulted ones included."""
        with self._lock:
            return Counter(route(e.method, e.path) for e in self.log)

    @property
    def injected(self) -> Counter:
        """Faults injected, by kind."""
        with self._lock:
            return Counter(e.fault for e in self.log if e.fault)

    def add_rule(self, rule: Rule) -> Rule:
        with self._lock:
            self.rules.append(rule)
        return rule

    def open_gate(self) -> None:
        """Let every request held by a "hold" rule (and any later one) pass."""
        self._loop.call_soon_threadsafe(self._gate.set)

    def reset(self) -> None:
        """Forget the requests seen and the rules."""
        with self._lock:
            self.log.clear()
            self.rules.clear()

    def summary(self) -> dict:
        return {"requests": len(self.log), "counts": dict(sorted(self.counts.items())),
                "faults": dict(sorted(self.injected.items()))}

    def landed(self, fault: str) -> bool:
        """Whether every request given `fault` has reached the server (a "late" one lands after the run)."""
        with self._lock:
            return all(e.upstream_seconds is not None for e in self.log if e.fault == fault)

    def timeline(self) -> list[tuple[float, str, int | None, float | None]]:
        """Each request: when it arrived (seconds after the first), its route, its status, the server's time."""
        with self._lock:
            first = self.log[0].arrived if self.log else 0.0
            return [(round(e.arrived - first, 4), route(e.method, e.path), e.status,
                     None if e.upstream_seconds is None else round(e.upstream_seconds, 4)) for e in self.log]

    # -- lifetime -----------------------------------------------------------------------------

    thread_name = "fault-proxy"

    def _prepare(self) -> None:
        self._gate = asyncio.Event()

    # -- one connection, many requests --------------------------------------------------------

    async def _connection(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            while True:
                request = await _read_request(reader)
                if request is None:
                    break
                if not await self._answer(request, writer):
                    break
        except (ConnectionError, asyncio.IncompleteReadError, asyncio.CancelledError):
            pass
        finally:
            if not writer.is_closing():
                writer.close()

    def _fault_for(self, method: str, path: str, body: bytes) -> str | None:
        with self._lock:
            for rule in self.rules:
                if rule.take(method, path, body):
                    return rule.fault
            if self.fault_rate and (self.methods is None or method in self.methods):
                if self.random.random() < self.fault_rate:
                    return self.random.choice(self.faults)
        return None

    async def _answer(self, request: tuple[str, str, list[tuple[str, str]], bytes],
                      writer: asyncio.StreamWriter) -> bool:
        """Answer one request; False when the connection must end."""
        method, path, headers, body = request
        if path.startswith(CONTROL):
            return await self._control(method, path, writer)
        fault = self._fault_for(method, path, body)
        entry = Entry(method, path, fault, None, asyncio.get_running_loop().time())
        with self._lock:
            self.log.append(entry)
        if self.delay:
            await asyncio.sleep(self.delay)
        if fault == "hold":
            await self._gate.wait()
            fault = None
        if fault in ("reset", "timeout"):
            return await self._drop(fault, writer)
        if fault and fault.isdigit():
            extra = [("Retry-After", f"{self.retry_after:g}")] if fault == "429" else []
            entry.status = int(fault)
            await _respond(writer, int(fault), [("Content-Type", "application/json"), *extra],
                           json.dumps({"detail": f"injected {fault}"}).encode())
            return True
        forwarded = [(k, v) for k, v in headers if k.lower() not in HOP_BY_HOP]
        if fault == "late":
            await asyncio.sleep(self.hold_seconds)
        began = asyncio.get_running_loop().time()
        try:
            upstream = await self._client.request(method, path, headers=forwarded, content=body)
            entry.upstream_seconds = asyncio.get_running_loop().time() - began
        except httpx.HTTPError as error:
            entry.status = 502
            await _respond(writer, 502, [("Content-Type", "text/plain")], f"proxy: {error!r}".encode())
            return True
        if fault == "late":  # the client gave up long ago
            writer.close()
            return False
        if fault == "lost":
            entry.status = 502
            await _respond(writer, 502, [("Content-Type", "application/json")],
                           json.dumps({"detail": "injected 502 after the server answered"}).encode())
            return True
        if fault in ("reset-after", "timeout-after"):
            return await self._drop(fault.removesuffix("-after"), writer)
        entry.status = upstream.status_code
        # httpx decoded the body: send it without a Content-Encoding of its own
        answer = [(k, v) for k, v in upstream.headers.multi_items()
                  if k.lower() not in HOP_BY_HOP and k.lower() != "content-encoding"]
        await _respond(writer, upstream.status_code, answer, upstream.content, upstream.reason_phrase)
        return True

    async def _drop(self, how: str, writer: asyncio.StreamWriter) -> bool:
        if how == "timeout":
            await asyncio.sleep(self.hold_seconds)
            writer.close()
            return False
        sock = writer.get_extra_info("socket")
        if sock is not None:  # linger 0: close() sends RST, as a dropped connection does
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        writer.transport.abort()
        return False

    async def _control(self, method: str, path: str, writer: asyncio.StreamWriter) -> bool:
        if path.startswith(CONTROL + "reset") and method == "POST":
            self.reset()
        await _respond(writer, 200, [("Content-Type", "application/json")], json.dumps(self.summary()).encode())
        return True


async def _read_request(reader: asyncio.StreamReader):
    line = await reader.readline()
    if not line.strip():
        return None
    method, target, _version = line.decode("latin-1").split(" ", 2)
    headers: list[tuple[str, str]] = []
    while (line := await reader.readline()) not in (b"\r\n", b"\n", b""):
        name, _, value = line.decode("latin-1").partition(":")
        headers.append((name.strip(), value.strip()))
    lower = {k.lower(): v for k, v in headers}
    if lower.get("transfer-encoding", "").lower() == "chunked":
        body = b""
        while size := int((await reader.readline()).split(b";")[0], 16):
            body += await reader.readexactly(size)
            await reader.readline()
        while (await reader.readline()) not in (b"\r\n", b"\n", b""):
            pass  # trailers
    else:
        body = await reader.readexactly(int(lower.get("content-length") or 0))
    if urlsplit(target).scheme:  # absolute form: keep the path
        parts = urlsplit(target)
        target = parts.path + (f"?{parts.query}" if parts.query else "")
    return method, target, headers, body


async def _respond(writer: asyncio.StreamWriter, status: int, headers: list[tuple[str, str]], body: bytes,
                   reason: str = "") -> None:
    from http import HTTPStatus

    reason = reason or (HTTPStatus(status).phrase if status in HTTPStatus._value2member_map_ else "")
    head = [f"HTTP/1.1 {status} {reason}", *(f"{k}: {v}" for k, v in headers),
            f"Content-Length: {len(body)}", "Connection: keep-alive", "", ""]
    writer.write("\r\n".join(head).encode("latin-1") + body)
    await writer.drain()


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m tests.support.proxy", description=__doc__.split("\n\n")[0])
    parser.add_argument("--upstream", required=True, help="the Prefect API URL, e.g. http://127.0.0.1:4200/api")
    parser.add_argument("--delay-ms", type=float, default=0, help="added to every request (the round trip)")
    parser.add_argument("--port", type=int, default=0, help="default: a free port")
    parser.add_argument("--fault-rate", type=float, default=0.0, help="share of requests that fail, 0 to 1")
    parser.add_argument("--faults", default=",".join(KINDS), help=f"kinds to draw from: {','.join(KINDS)}")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--retry-after", type=float, default=1, help="seconds, with an injected 429")
    parser.add_argument("--hold-seconds", type=float, default=60, help="how long a 'timeout' holds a request")
    parser.add_argument("--counts", help="write the request counts (JSON) to this file on exit")
    args = parser.parse_args(argv)
    proxy = Proxy(args.upstream, delay_ms=args.delay_ms, fault_rate=args.fault_rate,
                  faults=[f for f in args.faults.split(",") if f], seed=args.seed,
                  retry_after=args.retry_after, hold_seconds=args.hold_seconds, port=args.port)
    stop = threading.Event()
    for signum in (signal.SIGTERM, signal.SIGINT):
        signal.signal(signum, lambda *_: stop.set())
    with proxy:
        print(proxy.api_url, flush=True)
        stop.wait()
    if args.counts:
        with open(args.counts, "w") as out:
            json.dump(proxy.summary(), out, indent=2)
    print(json.dumps(proxy.summary()), file=sys.stderr)


if __name__ == "__main__":
    main()
