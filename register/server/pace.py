"""How many requests may be in flight at once, and how far apart they start, learnt from the server.

A server that is busy says so: Prefect's answers 503 when its SQLite database is locked by another
write (two upserts that overlap there always collide, and a burst of them can stall it for the whole
request timeout), a hosted one 429 when a rate limit is reached. Sending as many requests again only
makes more of them fail, so the window behaves as TCP's congestion window:

- slow start: 2 requests at first, one more for each success, until the first busy answer;
- multiplicative decrease: a busy answer narrows the window to 0.7 of the requests in flight (CUBIC's
  factor, RFC 9438), once per round: the requests already in flight when it narrowed do not narrow it
  again;
- additive increase, in time rather than per answer (a fast server is not probed harder than a slow
  one): 2 requests a second after the last change;
- pacing: one request every round trip / window, so requests reach the server spread out, not in
  bursts; two writes a round trip apart both pass where the same two together collide. Once a server
  has answered busy, a write also keeps the next one back for the server's own time for its kind
  (`gap`, learnt by the client): far from the server, round trip / window is mostly the network's time,
  and writes sent that close together arrive together.

A server that is never busy (PostgreSQL behind it, no rate limit) sees the window open to the number
of threads within a few round trips. The client keeps a window per kind of write (deployment upserts,
flows, ...) and one for reads, as only some kinds collide; every write also takes a place in one window
of all writes, as too many writes at once, of any kinds, are what stalls a SQLite server: with five or
more in flight, one of them may wait out SQLite's 60 s lock timeout (server/client.py).
"""

from __future__ import annotations

import contextlib
import threading
import time
from collections.abc import Iterator

START = 2  # requests in flight before the server has answered any
NARROW = 0.7
WIDEN_PER_SECOND = 2.0


class Slot:
    """One request's place in the window; the request says how the server answered."""

    def __init__(self, round_: int, started: float = 0.0):
        self.round = round_
        self.started = started
        self.busy = False
        self.fine = False


@contextlib.contextmanager
def places(windows: list[Window], gap: float = 0.0) -> Iterator[Slot]:
    """A place in each of `windows`, taken in order and given back in reverse; how the server answered
    counts in each. `gap`: the least time before each window lets the next request start."""
    with contextlib.ExitStack() as stack:
        taken = [stack.enter_context(window.slot(gap)) for window in windows]
        answer = Slot(-1)
        try:
            yield answer
        finally:
            for slot in taken:
                slot.busy, slot.fine = answer.busy, answer.fine


class Window:
    def __init__(self, ceiling: int = 64, *, start: int = START, clock=time.monotonic):
        self.ceiling = float(ceiling)
        self.limit = float(start)  # fractional, as TCP's: int(limit) requests may be in flight
        self.narrowest: float | None = None  # for the report: how far the server made the run slow down
        self._clock = clock
        self._slow_start = True
        self._in_flight = 0
        self._round = 0
        self._round_trip = 0.0  # smoothed, of successful requests
        self._since = clock()  # when the window last changed
        self._next_start = 0.0
        self._changed = threading.Condition()

    @contextlib.contextmanager
    def slot(self, gap: float = 0.0) -> Iterator[Slot]:
        with self._changed:
            while True:
                now = self._clock()
                if self._in_flight < max(1, int(self.limit)) and now >= self._next_start:
                    break
                self._changed.wait(None if now >= self._next_start else self._next_start - now)
            self._in_flight += 1
            self._next_start = now + max(gap, self._round_trip / self.limit)
            slot = Slot(self._round, now)
        try:
            yield slot
        finally:
            self._release(slot)

    def _release(self, slot: Slot) -> None:
        with self._changed:
            now = self._clock()
            in_flight = self._in_flight
            self._in_flight -= 1
            if slot.busy and slot.round == self._round:
                self.limit = max(1.0, min(self.limit, in_flight) * NARROW)
                self.narrowest = min(self.narrowest or self.limit, self.limit)
                self._round += 1
                self._slow_start = False
                self._since = now
            elif slot.fine:
                took = now - slot.started
                self._round_trip = took if not self._round_trip else 0.8 * self._round_trip + 0.2 * took
                widen = 1.0 if self._slow_start else (now - self._since) * WIDEN_PER_SECOND
                self.limit = min(self.ceiling, self.limit + widen)
                self._since = now
            self._changed.notify_all()
