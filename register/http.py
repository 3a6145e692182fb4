"""Every HTTP request flow-register makes (the Prefect server, OCI registries and their token endpoints,
GitHub's API) goes through a client made here: a whole-request deadline and a cap on the answer's size.

An answer is data from someone else's machine. httpx's timeouts are per read, so a server that sends a
byte every few seconds holds a request for ever; its answers are read whole, so an endless body fills
memory, and a small gzip body can inflate to gigabytes. Here:

- the deadline covers the whole exchange (connecting, sending, the headers, the body): every socket
  read and write is given at most the time that is left, so trickled headers or a trickled body end
  in a timeout (`httpx.ReadTimeout`, which callers already retry or report) when the deadline passes;
- the answer is read as a stream and stopped at the cap, counted after decompression (gzip and deflate
  are inflated here, a bounded piece at a time; other encodings are refused), with `AnswerTooLarge`,
  whose message names the host and the cap;
- `shorten` cuts server text (an error's detail, a name) before it reaches a log or a summary.
"""

from __future__ import annotations

import contextvars
import time
import zlib
from collections.abc import Iterator

import httpx

MiB = 1024 * 1024
SHORT = 500  # characters of server text kept in a message

_deadline: contextvars.ContextVar[float | None] = contextvars.ContextVar("flow_register_http_deadline", default=None)


class AnswerTooLarge(httpx.HTTPError):
    """An answer longer than the cap: not retried (the same request gets the same answer)."""

    def __init__(self, host: str, cap: int):
        super().__init__(f"the answer of {host} is larger than flow-register reads ({_size(cap)}); "
                         "stopped reading it there")
        self.host = host
        self.cap = cap


def _size(count: int) -> str:
    return f"{count // MiB} MiB" if count >= MiB and count % MiB == 0 else f"{count} bytes"


def shorten(text: object, limit: int = SHORT) -> str:
    """`text` cut to `limit` characters, saying how many more there were."""
    text = str(text)
    if len(text) <= limit:
        return text
    return f"{text[:limit]}… ({len(text) - limit} more)"


def _left(timeout: float | None) -> float | None:
    """The time a socket operation may take: its own timeout, at most what is left of the request's."""
    deadline = _deadline.get()
    if deadline is None:
        return timeout
    left = deadline - time.monotonic()
    if left <= 0:
        raise _Expired()
    return left if timeout is None else min(timeout, left)


class _Expired(Exception):
    pass


def _expired_read() -> Exception:
    import httpcore

    return httpcore.ReadTimeout("the whole request took longer than its deadline")


class _Stream:
    """A network stream whose every read and write ends by the request's deadline."""

    def __init__(self, stream):
        self._stream = stream

    def read(self, max_bytes: int, timeout: float | None = None) -> bytes:
        try:
            return self._stream.read(max_bytes, _left(timeout))
        except _Expired:
            raise _expired_read() from None

    def write(self, buffer: bytes, timeout: float | None = None) -> None:
        import httpcore

        try:
            return self._stream.write(buffer, _left(timeout))
        except _Expired:
            raise httpcore.WriteTimeout("the whole request took longer than its deadline") from None

    def start_tls(self, ssl_context, server_hostname=None, timeout: float | None = None):
        try:
            return _Stream(self._stream.start_tls(ssl_context, server_hostname, _left(timeout)))
        except _Expired:
            import httpcore

            raise httpcore.ConnectTimeout("the whole request took longer than its deadline") from None

    def close(self) -> None:
        self._stream.close()

    def get_extra_info(self, info: str):
        return self._stream.get_extra_info(info)


class _Backend:
    """httpcore's network backend, its streams bounded by the request's deadline."""

    def __init__(self, backend):
        self._backend = backend

    def connect_tcp(self, host, port, timeout=None, local_address=None, socket_options=None):
        try:
            return _Stream(self._backend.connect_tcp(host, port, _left(timeout), local_address, socket_options))
        except _Expired:
            import httpcore

            raise httpcore.ConnectTimeout("the whole request took longer than its deadline") from None

    def connect_unix_socket(self, path, timeout=None, socket_options=None):
        return _Stream(self._backend.connect_unix_socket(path, timeout, socket_options))

    def sleep(self, seconds: float) -> None:
        self._backend.sleep(seconds)


class _Body(httpx.SyncByteStream):
    """The answer's body, inflated here a bounded piece at a time, read until the cap or the deadline."""

    def __init__(self, stream: httpx.SyncByteStream, encoding: str, deadline: float, cap: int, host: str):
        self._stream = stream
        self._deadline = deadline
        self._cap = cap
        self._host = host
        self._inflate = None
        if encoding in ("gzip", "x-gzip"):
            self._inflate = zlib.decompressobj(zlib.MAX_WBITS | 16)
        elif encoding == "deflate":
            self._inflate = zlib.decompressobj()

    def __iter__(self) -> Iterator[bytes]:
        read = 0
        chunks = iter(self._stream)
        while True:
            token = _deadline.set(self._deadline)
            try:
                if time.monotonic() > self._deadline:
                    raise httpx.ReadTimeout("the whole request took longer than its deadline")
                chunk = next(chunks, None)
            finally:
                _deadline.reset(token)
            if chunk is None:
                break
            for piece in self._pieces(chunk):
                read += len(piece)
                if read > self._cap:
                    raise AnswerTooLarge(self._host, self._cap)
                yield piece
        if self._inflate is not None:
            tail = self._inflate.flush()
            if read + len(tail) > self._cap:
                raise AnswerTooLarge(self._host, self._cap)
            if tail:
                yield tail

    def _pieces(self, chunk: bytes) -> Iterator[bytes]:
        if self._inflate is None:
            yield chunk
            return
        # At most 64 KiB out per call: a small compressed chunk cannot inflate past the cap in one step.
        data = chunk
        while data:
            try:
                out = self._inflate.decompress(data, 64 * 1024)
            except zlib.error as error:
                raise httpx.DecodingError(f"the answer of {self._host} is not valid compressed data: {error}") \
                    from None
            data = self._inflate.unconsumed_tail
            if out:
                yield out
            elif not data:
                break

    def close(self) -> None:
        self._stream.close()


class _Bounded(httpx.BaseTransport):
    """A transport whose requests end by a deadline and whose answers stop at a cap."""

    def __init__(self, transport: httpx.BaseTransport, seconds: float, cap: int):
        self._transport = transport
        self._seconds = seconds
        self._cap = cap
        pool = getattr(transport, "_pool", None)
        if pool is not None and hasattr(pool, "_network_backend"):  # every socket read and write, bounded
            pool._network_backend = _Backend(pool._network_backend)

    def handle_request(self, request: httpx.Request) -> httpx.Response:
        deadline = time.monotonic() + self._seconds
        request.headers["Accept-Encoding"] = "gzip, deflate"
        token = _deadline.set(deadline)
        try:
            response = self._transport.handle_request(request)
        finally:
            _deadline.reset(token)
        host = request.url.host + (f":{request.url.port}" if request.url.port else "")
        encoding = response.headers.get("Content-Encoding", "identity").strip().lower()
        if encoding not in ("identity", "", "gzip", "x-gzip", "deflate"):
            response.close()
            raise httpx.DecodingError(f"the answer of {host} is encoded as '{shorten(encoding, 40)}', which "
                                      "flow-register does not read (gzip, deflate or none)")
        headers = [(k, v) for k, v in response.headers.multi_items()
                   if k.lower() not in ("content-encoding", "content-length")]
        return httpx.Response(response.status_code, headers=headers, extensions=response.extensions,
                              stream=_Body(response.stream, encoding, deadline, self._cap, host),
                              request=request)

    def close(self) -> None:
        self._transport.close()


def client(*, seconds: float, cap: int, transport: httpx.BaseTransport | None = None, **options) -> httpx.Client:
    """An httpx.Client whose every request (through a proxy too) ends within `seconds` and reads at most
    `cap` bytes of answer. `options` are httpx.Client's."""
    made = httpx.Client(transport=transport, **options)
    made._transport = _Bounded(made._transport, seconds, cap)
    made._mounts = {pattern: _Bounded(mounted, seconds, cap) if mounted is not None else None
                    for pattern, mounted in made._mounts.items()}
    return made
