"""deploy through a proxy that fails requests the way networks and servers do, against a real Prefect server.

What a user must be able to rely on: a run that meets transient faults still finishes in one run with the
server holding exactly the plan (no deployment or trigger doubled, none missing); a server that stays down
is the server's failure (exit 4), never the manifest's; a run killed half way converges when run again;
two runs of one project and environment take turns (the deploy lease), each planning what the other left.
"""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import time

import pytest

from support.proxy import KINDS, Proxy, Rule
from support.registration import CLI, Api, Project, client_env

pytestmark = pytest.mark.integration

OWNER = "managed-by:flow-register"
# Short enough that a fault costs seconds, long enough that a 20% fault rate never exhausts a request, and
# that a loaded machine's SQLite server (a read waits for eight writes) still answers in time.
FAST = {"PREFECT_API_REQUEST_TIMEOUT": "5", "FLOW_REGISTER_RETRY_SECONDS": "90"}


@pytest.fixture
def project(project) -> Project:
    """The base project, with four deployments more, each with a trigger: more writes for faults to meet."""
    manifest = project.manifest
    manifest["deployments"] += [
        {"name": f"more-{i}", "entrypoint": "flows/etl.py:extract",
         "triggers": [{"type": "event", "expect": [f"more.{i}"]}]} for i in range(4)]
    project.write(manifest)
    return project


def faulty(project: Project, **kwargs) -> Proxy:
    return Proxy(project.api_url, retry_after=1, hold_seconds=8, **kwargs)


def holds_the_plan(api: Api, project: Project) -> None:
    """The server has each manifest deployment once, each trigger once, and a new run changes nothing."""
    found = api.deployments(OWNER, f"project:{project.name}", "environment:dev")
    wanted = {d["name"]: len(d.get("triggers") or []) for d in project.manifest["deployments"]}
    assert {name.removesuffix(f"-{project.name}") for name in found} == set(wanted)
    for name, deployment in found.items():
        automations = api.automations_of(deployment["id"])
        assert len(automations) == wanted[name.removesuffix(f"-{project.name}")], (name, automations)
    again = project.deploy()
    assert again.code == 0, again
    assert {d["action"] for d in again.json["deployments"]} == {"unchanged"}, again
    assert again.json["requests"]["writes"] == 0, again


def deploy_through(project: Project, proxy: Proxy, *args: str):
    return project.deploy(*args, api_url=proxy.api_url, **FAST)


# One fault at a time, where it hurts most: the first bulk read, a deployment write, and the one write
# that is not an upsert (a trigger's automation). "lost", "reset-after" and "timeout-after" reach the
# server and then fail: the write happened, the client does not know.
CASES = [(kind, "POST", r"/deployments/filter$") for kind in ("500", "503", "429", "reset", "timeout")] + \
        [(kind, "POST", r"/deployments/$") for kind in ("502", "reset", "lost", "timeout-after")] + \
        [(kind, "POST", r"/automations/$") for kind in ("lost", "reset-after", "timeout-after", "503")] + \
        [(kind, "DELETE", r"/automations/") for kind in ("lost", "timeout", "late")] + \
        [("late", "POST", r"/deployments/$")]


@pytest.mark.parametrize("kind, method, path", CASES, ids=[f"{m} {p.strip('/$')} {k}" for k, m, p in CASES])
def test_a_fault_on_a_read_or_a_write_still_ends_in_one_run_with_the_plan(project, api, kind, method, path):
    if method == "DELETE":  # triggers are replaced only on an update: make one
        assert project.deploy().code == 0
        project.manifest["deployments"][0]["triggers"][0]["expect"] = ["data.changed"]
        project.write()
    with faulty(project, rules=[Rule(kind, method, path)]) as proxy:
        result = deploy_through(project, proxy)
        assert proxy.injected == {kind: 1}, proxy.summary()  # the fault was met
        # "late": the request the run gave up on reaches the server after the run ended
        deadline = time.monotonic() + 30
        while not proxy.landed("late") and time.monotonic() < deadline:
            time.sleep(0.2)
        assert proxy.landed("late"), proxy.timeline()
    assert result.code == 0, result
    holds_the_plan(api, project)


@pytest.mark.parametrize("seed", [1, 2, 3])
def test_one_run_converges_with_a_fifth_of_requests_failing(project, api, seed):
    with faulty(project, fault_rate=0.2, seed=seed, faults=KINDS) as proxy:
        result = deploy_through(project, proxy)
        assert sum(proxy.injected.values()) > 0, proxy.summary()
    assert result.code == 0, f"{result}\n{proxy.summary()}"
    holds_the_plan(api, project)


def test_a_server_that_stays_down_is_the_servers_failure_and_writes_nothing(project, api):
    with faulty(project, rules=[Rule("503", times=None)]) as proxy:
        result = project.deploy(api_url=proxy.api_url, FLOW_REGISTER_RETRY_SECONDS="10")
    assert result.code == 4, result
    assert "the Prefect server failed: " in result.err and "answered 503" in result.err, result.err
    assert "nothing was written, run again" in result.err, result.err
    assert "error: " not in result.err.replace("flow-register: error: ", ""), result.err  # no manifest error
    assert api.deployments(f"project:{project.name}") == {}


def test_an_address_nothing_answers_at_fails_after_first_contact_not_the_whole_retry_time(project, api):
    """A wrong URL or a server not started is told after 10 s of refused connections, not after 120 s."""
    from devtools.local_server import free_port

    url = f"http://127.0.0.1:{free_port()}/api"
    result = project.deploy(api_url=url)
    assert result.code == 4, result
    assert f"cannot reach the Prefect server at {url} while taking the deploy lease" in result.err, result.err
    assert "; check that the server is running and that PREFECT_API_URL is its address" in result.err, result.err
    assert int(re.search(r"Connection refused \(\d+ attempts in (\d+)s\)", result.err)[1]) <= 10, result.err


def test_a_server_gone_longer_than_first_contact_mid_run_is_waited_for(project, api):
    """Once the server has answered, refused connections are a restart: retried for the whole retry time."""
    proxy = Proxy(project.api_url, rules=[Rule("hold", "POST", r"/deployments/$")]).start()
    run = _start(project, proxy.api_url)
    _held(proxy)
    proxy.stop()  # the held request is cut, and every connection refused
    time.sleep(15)
    proxy.start()  # on the same port
    try:
        out, err = run.communicate(timeout=300)
    finally:
        proxy.stop()
    assert run.returncode == 0, err
    assert {d["action"] for d in json.loads(out)["deployments"]} == {"create"}, out
    holds_the_plan(api, project)


def test_a_server_that_fails_half_way_exits_4_and_a_new_run_converges(project, api):
    rule = Rule("500", "POST", r"/deployments/$", body=r'"name": ?"more-2-', times=None)
    with faulty(project, rules=[rule]) as proxy:
        failed = project.deploy(api_url=proxy.api_url, FLOW_REGISTER_RETRY_SECONDS="10")
    assert failed.code == 4, failed
    assert "the Prefect server failed: registering deployment 'more-2-" in failed.err, failed.err
    assert "Applied before the failure: created 'extract-" in failed.err, failed.err
    again = project.deploy()
    assert again.code == 0, again
    assert {d["name"].removesuffix(f"-{project.name}"): d["action"] for d in again.json["deployments"]}[
        "more-2"] == "create"
    holds_the_plan(api, project)


def _start(project: Project, api_url: str, *args: str) -> subprocess.Popen:
    env = client_env(api_url, project.home, PREFECT_API_REQUEST_TIMEOUT="300")  # it may be held a while
    return subprocess.Popen([CLI, "deploy", "-e", "dev", "--output", "json", *args], cwd=project.root, env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def _held(proxy: Proxy, timeout: float = 120) -> None:
    """Wait until a run's request is held by the proxy (the run holds its lease, mid-apply)."""
    deadline = time.monotonic() + timeout
    while not proxy.injected["hold"]:
        assert time.monotonic() < deadline, f"nothing held within {timeout}s: {proxy.summary()}"
        time.sleep(0.05)


def _until_waiting(run: subprocess.Popen) -> list[str]:
    """The run's stderr lines up to the one that says it waits for the lease."""
    lines = []
    while not lines or "Waiting for another deploy of project" not in lines[-1]:
        line = run.stderr.readline()
        assert line, f"it ended without waiting: {''.join(lines)}"
        lines.append(line)
    return lines


def test_a_run_killed_half_way_converges_when_run_again(project, api):
    with Proxy(project.api_url, rules=[Rule("hold", "POST", r"/deployments/$")]) as proxy:
        first = _start(project, proxy.api_url)
        _held(proxy)
        os.kill(first.pid, signal.SIGKILL)
        first.communicate()
    # (the held request dies with the proxy: it never reaches the server)
    # its lease is left behind: the next run waits until the server lets it expire
    again = project.deploy("--lock-wait", "300")
    assert again.code == 0, again
    assert "Waiting for another deploy of project" in again.err, again.err
    holds_the_plan(api, project)


def _at_once(project: Project, second_args: tuple[str, ...] = (), before_second=lambda: None):
    """A deploy, paused at its first write while it holds the lease; a second deploy started meanwhile,
    seen waiting; then both let go. Their (exit code, JSON report, stderr)."""
    with Proxy(project.api_url, rules=[Rule("hold", "POST", r"/deployments/$")]) as proxy:
        first = _start(project, proxy.api_url)
        _held(proxy)
        before_second()
        second = _start(project, project.api_url, *second_args)
        _until_waiting(second)
        proxy.open_gate()
        ends = [(run, *run.communicate(timeout=300)) for run in (first, second)]
    for run, out, err in ends:
        assert run.returncode == 0, err
    return [json.loads(out) for _, out, _ in ends]


def test_two_deploys_at_once_take_turns_and_the_second_plans_what_the_first_left(project, api):
    _, second = _at_once(project)
    # planned after the first had finished: nothing left to do
    assert {d["action"] for d in second["deployments"]} == {"unchanged"}, second
    holds_the_plan(api, project)


def test_a_prune_racing_an_addition_applies_them_one_after_the_other(project, api):
    assert project.deploy().code == 0
    addition = [*project.manifest["deployments"], {"name": "added", "entrypoint": "flows/etl.py:extract"}]
    pruned = project.manifest["deployments"][:-1]  # more-3 removed
    project.write({**project.manifest, "deployments": addition})
    _, pruning = _at_once(project, ("--prune",),
                          before_second=lambda: project.write({**project.manifest, "deployments": pruned}))
    # the prune planned after the addition was written: it saw `added` and deleted it with more-3,
    # and the server holds what the last run's manifest says
    deleted = {d["name"].removesuffix(f"-{project.name}") for d in pruning["deployments"] if d["action"] == "delete"}
    assert deleted == {"added", "more-3"}, pruning
    holds_the_plan(api, project)


def test_a_write_the_server_refuses_half_way_is_never_reported_as_done(project, api):
    """The server refuses (422) a trigger after its deployment was written: the run says what was applied and
    fails (exit 3); the next run finishes the job."""
    with faulty(project, rules=[Rule("422", "POST", r"/automations/$", times=None)]) as proxy:
        result = deploy_through(project, proxy)
        assert proxy.injected["422"] >= 1, proxy.summary()
    assert result.code == 3, result
    assert "answered 422" in result.err, result.err
    applied = [d for d in result.json["deployments"] if d["action"] in ("create", "update")]
    assert applied, result.out
    again = project.deploy()
    assert again.code == 0, again
    holds_the_plan(api, project)
