"""The request window (register/server/pace.py): what a run's requests do when the server says it is busy.
A clock the test moves stands in for time, so nothing here depends on how fast the machine is."""

import threading
import time

import pytest

from register.server.pace import START, Window, places


class Clock:
    def __init__(self):
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


def answer(window: Window, *, busy: bool = False) -> None:
    with window.slot() as slot:
        slot.busy, slot.fine = busy, not busy


def test_a_busy_round_narrows_the_window_once_and_time_widens_it_again():
    clock = Clock()
    window = Window(ceiling=8, clock=clock)
    assert window.limit == START and window.narrowest is None
    for _ in range(6):  # slow start: one more per success
        answer(window)
    assert window.limit == 8
    held = [window.slot() for _ in range(8)]
    slots = [h.__enter__() for h in held]
    for h, slot in zip(held, slots):  # every request of the round answered busy
        slot.busy = True
        h.__exit__(None, None, None)
    assert window.limit == pytest.approx(8 * 0.7) and window.narrowest == pytest.approx(8 * 0.7)  # once, not 8 times
    answer(window, busy=True)
    assert window.limit == 1.0  # a new round narrows again, never below one
    clock.now += 0.3
    answer(window)
    assert window.limit == pytest.approx(1.6)  # 2 a second since it narrowed, not back to the ceiling at once


def test_no_more_requests_are_in_flight_than_the_window_allows():
    window = Window(ceiling=8, clock=Clock())
    answer(window, busy=True)  # one in flight, busy: narrowed to one
    assert window.limit == 1.0
    in_flight, most, lock = 0, 0, threading.Lock()

    def request():
        nonlocal in_flight, most
        with window.slot() as slot:
            with lock:
                in_flight += 1
                most = max(most, in_flight)
            time.sleep(0.02)
            with lock:
                in_flight -= 1
            slot.fine = True

    threads = [threading.Thread(target=request) for _ in range(6)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert most == 1


def test_a_write_answered_busy_narrows_its_kind_and_all_writes():
    """A deployment upsert answered 503 narrows the deployments' window and the window of all writes, so
    flows, which SQLite never refuses, are also held back while it is busy; a flow's success widens only
    its own window and that of all writes."""
    clock = Clock()
    deployments, flows, writes = (Window(ceiling=8, clock=clock) for _ in range(3))
    with places([deployments, writes]) as slot:
        slot.busy = True
    assert deployments.limit == writes.limit == 1.0 and flows.limit == START
    with places([flows, writes]) as slot:
        slot.fine = True
    assert deployments.limit == 1.0 and flows.limit == START + 1


def test_a_gap_keeps_the_next_request_back_however_wide_the_window():
    """A write to a server that takes one at a time keeps the next one back for the server's time for it,
    even with room in the window."""
    window = Window(ceiling=8)
    began = time.monotonic()
    with window.slot(gap=0.05) as slot:
        slot.fine = True
    with window.slot() as slot:
        slot.fine = True
        assert time.monotonic() - began >= 0.05
    assert window.limit == START + 2  # two successes in slow start: the window widened all the same
