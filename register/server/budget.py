"""How many requests a minute a run sends to the Prefect server: one budget, shared by all its threads.

Prefect Cloud limits requests per account, not per client (Prefect's docs, "Rate limits": Hobby 625 a
minute, Starter 1,250, Team 2,500, Pro 5,000; over them, 429 with Retry-After), and production's flow runs
spend the same limit. A deploy that sends as fast as the server answers takes the limit from them: each
429 a flow run meets is a state change or a heartbeat delayed. So a run keeps to a budget:

- a token bucket of `per_minute` tokens a minute, holding at most BURST_SECONDS of them (the first reads
  go out together); every attempt takes one (reads, writes, retries, the lease's requests), whichever
  thread sends it, and every manifest of a run draws on the same account's bucket (`shared`);
- the default, DEFAULT_CLOUD, on a Prefect Cloud workspace: 150 a minute, under a quarter of Hobby's
  limit, so production keeps 475 of its 625 (76%), and 6% of Team's; at two requests per changed
  deployment that is still 75 deployments a minute. A server without `/accounts/<id>/workspaces/<id>`
  in its URL (self-hosted) has no account limit: no budget, unless asked (0 = none);
- a 429 says the account is over its limit, whoever spent it: every request of the run waits out its
  Retry-After (not only the refused one: the others would each meet a 429 of their own), and the budget
  halves, once per round (the refusals of requests already sent when it halved are the same signal), to
  no less than FLOOR; halves what the run sent in the last seconds, when that was less (a budget the run
  never reached, held back by the server's pace, would take rounds of 429s to come down). It grows back,
  each minute, by a tenth of the pace that met the 429 (twice what it came down to), up to the budget
  given (TCP's additive increase, multiplicative decrease). A run without a budget takes half of what it was sending then;
- priority: the deploy lease's renewals and its release never wait for a token or a Retry-After of
  another request. They take their token on credit (the bucket goes into debt, the others wait longer):
  a write held back costs seconds, a lapsed lease stops the run.
"""

from __future__ import annotations

import math
import threading
import time
from collections import deque

DEFAULT_CLOUD = 150  # requests a minute on a Prefect Cloud workspace (see above)
FLOOR = 12.0  # the lowest a run learns to send (a minute): 500 deployments then take about 90 minutes
NARROW = 0.5
RECOVER = 0.1  # of the budget given, regained per minute after a 429
BURST_SECONDS = 4.0  # the bucket holds this many seconds of the budget
DEBT = 4.0  # the most tokens priority requests may take on credit
SENDING_SECONDS = 10.0  # what the run sent over this long is its rate when a 429 comes


class Budget:
    """`per_minute`: the budget given (None or 0: none, until a 429 sets one)."""

    def __init__(self, per_minute: float | None, *, clock=time.monotonic):
        self.given = float(per_minute) if per_minute else None
        self.refused = 0  # 429s seen, for the report
        self.lowest: float | None = None  # the lowest budget learnt, for the report
        self.waited = 0.0  # seconds requests waited for their turn, summed over threads
        self._clock = clock
        self._top = self.given  # what the budget grows back to
        self._lowered_to: float | None = None
        self._lowered_at = -math.inf
        self._hold_until = 0.0
        self._tokens = self._capacity(self.given)
        self._stamp = self._began = clock()
        self._sent: deque[float] = deque()  # the last minute's attempts, to learn a budget when none was given
        self._changed = threading.Condition()

    # -- what a request does ---------------------------------------------------------------------

    def take(self, *, priority: bool = False) -> tuple[float, float]:
        """Wait for one request's turn. Returns (when it was let go, seconds waited for a token: the run's own
        pacing, which the caller does not count against the server's retry deadline)."""
        with self._changed:
            began = now = self._clock()
            paced = 0.0
            while not priority:
                self._refill(now)
                rate = self._rate(now)
                holding = now < self._hold_until  # the server's Retry-After
                if holding:
                    wait = self._hold_until - now
                elif rate is None or self._tokens >= 1:
                    break
                else:
                    wait = (1 - self._tokens) * 60 / rate
                self._changed.wait(wait)
                after = self._clock()
                if not holding:
                    paced += after - now
                now = after
            self._refill(now)
            if self._rate(now) is not None:
                self._tokens = max(-DEBT, self._tokens - 1)
            self._sent.append(now)
            while self._sent and self._sent[0] < now - SENDING_SECONDS:
                self._sent.popleft()
            self.waited += now - began
            return now, paced

    def refused_after(self, sent: float, retry_after: float | None) -> None:
        """A request let go at `sent` was answered 429, with `retry_after` seconds (or none)."""
        with self._changed:
            now = self._clock()
            self.refused += 1
            self._hold_until = max(self._hold_until, now + (retry_after if retry_after else 1.0))
            if sent > self._lowered_at:  # a new round: sent after the budget last halved
                self._refill(now)
                rate, sending = self._rate(now), self._sending(now)
                if rate is None:  # no budget yet: what the run was sending
                    rate = self._top = max(FLOOR, sending)
                # half of what was sent, when that was less than the budget (the server's pace, or the run's
                # start): halving a budget the run never reached would take rounds of 429s to tell anything
                self._lowered_to = max(FLOOR, min(rate, sending) * NARROW)
                self._lowered_at = now
                self.lowest = min(self.lowest or self._lowered_to, self._lowered_to)
                self._tokens = min(self._tokens, 1.0)
            self._changed.notify_all()

    # -- what it is now --------------------------------------------------------------------------

    @property
    def per_minute(self) -> float | None:
        with self._changed:
            return self._rate(self._clock())

    def _rate(self, now: float) -> float | None:
        if self._lowered_to is None:
            return self.given
        # a tenth a minute of the pace that met the 429, not of the budget given: a budget far above what the
        # account has left would otherwise be back over it within a minute, each time at production's cost
        regained = min(self._top, self._lowered_to / NARROW) * RECOVER * max(0.0, now - self._lowered_at) / 60
        return min(self._top, self._lowered_to + regained)

    def _sending(self, now: float) -> float:
        """Requests a minute the run sent in the last SENDING_SECONDS (a run that began less than
        SENDING_SECONDS / 2 ago: over that much, so the first burst does not count as a rate)."""
        recent = sum(1 for t in self._sent if t >= now - SENDING_SECONDS)
        span = min(SENDING_SECONDS, max(SENDING_SECONDS / 2, now - self._began))
        return recent * 60 / span

    @staticmethod
    def _capacity(rate: float | None) -> float:
        return max(2.0, rate / 60 * BURST_SECONDS) if rate else 0.0

    def _refill(self, now: float) -> None:
        rate = self._rate(now)
        if rate is not None:
            self._tokens = min(self._capacity(rate), self._tokens + (now - self._stamp) * rate / 60)
        self._stamp = now


_shared: dict[tuple[str, float | None], Budget] = {}
_shared_lock = threading.Lock()


def shared(account: str, per_minute: float | None) -> Budget:
    """The budget of `account` (a Cloud account's id, or a server's URL) in this process: several manifests
    of one run deploy one after another and draw on it together, and what one learnt the next keeps."""
    with _shared_lock:
        key = (account, float(per_minute) if per_minute else None)
        if key not in _shared:
            _shared[key] = Budget(per_minute)
        return _shared[key]
