"""The request budget's bucket (register/server/budget.py), on its own: what a run's requests wait for."""

from __future__ import annotations

import threading
import time

import pytest

from register.problems import Invalid
from register.server.budget import FLOOR, Budget
from register.server.client import Connection, connection_from_environment

CLOUD = "https://api.prefect.cloud/api/accounts/0b3b2c1e-1111-4222-8333-444455556666/workspaces/" \
        "9a8b7c6d-1111-4222-8333-444455556666"


class Clock:
    def __init__(self):
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def test_a_burst_of_four_seconds_then_one_request_per_token_across_threads():
    budget = Budget(120)  # 2 a second, at most 8 at once
    began = time.monotonic()
    times: list[float] = []
    lock = threading.Lock()

    def send():
        for _ in range(3):
            budget.take()
            with lock:
                times.append(time.monotonic() - began)

    threads = [threading.Thread(target=send) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    times.sort()
    assert times[7] < 0.3, times  # the burst
    assert times[-1] >= (12 - 8) / 2 - 0.1, times  # the other four at 2 a second, whichever thread sent them


def test_a_429_halves_the_budget_once_per_round_down_to_the_floor_and_it_grows_back():
    clock = Clock()
    budget = Budget(120, clock=clock)
    for _ in range(20):  # 240 a minute (on credit: this clock does not move by itself)
        clock.now += 0.25
        first, _ = budget.take(priority=True)
    second, _ = budget.take(priority=True)
    budget.refused_after(first, 1.0)
    assert budget.per_minute == 60
    budget.refused_after(second, 1.0)  # sent before the budget halved: the same signal
    assert budget.per_minute == 60
    clock.now += 1.0
    for _ in range(6):
        sent, _ = budget.take(priority=True)
        clock.now += 0.01
        budget.refused_after(sent, 1.0)
    assert budget.per_minute == pytest.approx(FLOOR, abs=0.01) and budget.lowest == FLOOR and budget.refused == 8
    clock.now += 60  # a minute without a 429: a tenth of the pace that met the last one (2 x FLOOR) back
    assert budget.per_minute == pytest.approx(FLOOR + 2 * FLOOR / 10, abs=0.01)
    clock.now += 3600
    assert budget.per_minute == 120  # never above the budget given


def test_a_429_halves_what_the_run_sent_when_that_was_below_its_budget():
    clock = Clock()
    budget = Budget(600, clock=clock)  # the run sent 2 a second (the server's pace), not 10
    for _ in range(20):
        clock.now += 0.5
        sent, _ = budget.take()
    budget.refused_after(sent, 1.0)
    assert budget.per_minute == pytest.approx(60)


def test_retry_after_holds_every_request_but_the_lease_s():
    budget = Budget(6000)
    sent, _ = budget.take()
    budget.refused_after(sent, 0.5)
    began = time.monotonic()
    budget.take(priority=True)
    assert time.monotonic() - began < 0.1
    budget.take()
    assert time.monotonic() - began >= 0.45


def test_without_a_budget_the_first_429_sets_one_at_half_what_the_run_was_sending():
    clock = Clock()
    budget = Budget(None, clock=clock)
    for _ in range(100):  # 100 requests in 10 s: 600 a minute
        sent, waited = budget.take()
        assert waited == 0
        clock.now += 0.1
    budget.refused_after(sent, 1.0)
    assert budget.per_minute == pytest.approx(300, rel=0.02)


@pytest.mark.parametrize("environ, expected", [
    ({"PREFECT_API_URL": CLOUD}, 150.0),
    ({"PREFECT_API_URL": "http://127.0.0.1:4200/api"}, None),
    ({"PREFECT_API_URL": CLOUD, "FLOW_REGISTER_REQUESTS_PER_MINUTE": "0"}, None),
    ({"PREFECT_API_URL": "http://127.0.0.1:4200/api", "FLOW_REGISTER_REQUESTS_PER_MINUTE": "600"}, 600.0),
])
def test_the_default_is_150_on_prefect_cloud_and_none_on_a_server_of_one_s_own(environ, expected):
    assert connection_from_environment(environ).budget == expected


def test_a_budget_that_is_not_a_whole_number_is_refused_with_cloud_s_limits():
    with pytest.raises(Invalid) as raised:
        connection_from_environment({"PREFECT_API_URL": CLOUD, "FLOW_REGISTER_REQUESTS_PER_MINUTE": "fast"})
    assert str(raised.value) == (
        "--requests-per-minute: error: --requests-per-minute must be a whole number of requests a minute (0: no "
        "budget), not 'fast'; Prefect Cloud's limits per account are Hobby 625, Starter 1250, Team 2500, Pro 5000, "
        "shared with production's flow runs [request-budget]")
    assert Connection(CLOUD).budget == 150.0
