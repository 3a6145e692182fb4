"""What an older Prefect server would drop is named before any write, with the release that keeps it."""

from __future__ import annotations

from types import SimpleNamespace

from register.server.releases import unkept


def deployment(**fields):
    return SimpleNamespace(**{"concurrency_options": None, "triggers": [], **fields})


def test_a_grace_period_is_refused_on_a_server_before_3_6_6_only():
    grace = deployment(concurrency_options={"collision_strategy": "ENQUEUE", "grace_period_seconds": 600})
    (path, message), = unkept(grace, lambda: "3.4.10")
    assert path == ("concurrency_options", "grace_period_seconds")
    assert "Prefect 3.4.10" in message and "Prefect 3.6.6 or newer" in message
    assert unkept(grace, lambda: "3.6.6") == unkept(grace, lambda: "3.9.1") == []


def test_a_schedule_after_is_found_in_the_trigger_that_sets_it():
    triggers = deployment(triggers=[{"expect": ["a"]}, {"expect": ["b"], "schedule_after": 60}])
    assert [path for path, _ in unkept(triggers, lambda: "3.4.14")] == [("triggers", 1, "schedule_after")]
    assert unkept(triggers, lambda: "3.4.15") == []


def test_the_server_is_asked_only_when_such_a_field_is_set_and_an_unknown_release_keeps_everything():
    asked = []
    plain = deployment(concurrency_options={"collision_strategy": "ENQUEUE"},
                       triggers=[{"expect": ["a"], "schedule_after": 0}])
    assert unkept(plain, lambda: asked.append(1)) == [] and asked == []
    grace = deployment(concurrency_options={"grace_period_seconds": 30})
    assert unkept(grace, lambda: None) == unkept(grace, lambda: "3.9.0.dev4+cloud") == []
