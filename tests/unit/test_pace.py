"""The request window (register/server/pace.py): what a run's requests do when the server says it is busy."""

import threading
import time

from register.server.pace import START, Window


def test_a_busy_round_narrows_the_window_once_and_successes_widen_it_again():
    window = Window(ceiling=8)
    assert window.limit == START and window.narrowest is None
    for _ in range(6):  # slow start: one more per success
        with window.slot() as slot:
            slot.fine = True
    assert window.limit == 8
    held = [window.slot() for _ in range(8)]
    slots = [h.__enter__() for h in held]
    for h, slot in zip(held, slots):  # every request of the round answered busy
        slot.busy = True
        h.__exit__(None, None, None)
    assert window.limit == 8 * 0.7 and window.narrowest == 8 * 0.7  # narrowed once, not eight times
    with window.slot() as slot:
        slot.busy = True
    assert window.limit == 1.0  # a new round narrows again, never below one
    time.sleep(0.3)
    with window.slot() as slot:
        slot.fine = True
    assert 1.4 < window.limit < 3  # widened with time, not back to the ceiling at once


def test_no_more_requests_are_in_flight_than_the_window_allows():
    window = Window(ceiling=8)
    with window.slot() as slot:
        slot.busy = True  # one in flight, busy: narrowed to one
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
    assert most <= 2  # one at first; the window widens by 2 a second, so at most one more by the end
