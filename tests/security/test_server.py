"""A hostile Prefect server, registry or GitHub API on loopback: whatever it answers, and however slowly,
a run ends by its deadline, reads no more than its cap, and prints a bounded line about it.

The hostile servers are small raw-socket servers of the test's own (real TCP on 127.0.0.1): each answers
every request the way one attack does. Nothing here needs the real Prefect server except the tests of
the deploy itself, marked `integration`.
"""

from __future__ import annotations

import gzip
import subprocess
import json
import socket
import threading
import time
from collections.abc import Callable

import pytest

from support.registration import Project, base_manifest, unique

FAST = {"PREFECT_API_REQUEST_TIMEOUT": "2", "FLOW_REGISTER_RETRY_SECONDS": "4"}


class Hostile:
    """A loopback HTTP server whose every request is answered by `answer(connection, method, path)`."""

    def __init__(self, answer: Callable[[socket.socket, str, str], None]):
        self.answer = answer
        self.listener = socket.create_server(("127.0.0.1", 0))
        self.port = self.listener.getsockname()[1]
        self.requests: list[str] = []
        self.sent = 0  # bytes the hostile answers put on the wire
        self._stop = threading.Event()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def __enter__(self) -> Hostile:
        threading.Thread(target=self._serve, daemon=True).start()
        return self

    def __exit__(self, *exc) -> None:
        self._stop.set()
        self.listener.close()

    def _serve(self) -> None:
        while not self._stop.is_set():
            try:
                connection, _ = self.listener.accept()
            except OSError:
                return
            threading.Thread(target=self._one, args=(connection,), daemon=True).start()

    def _one(self, connection: socket.socket) -> None:
        with connection:
            try:
                data = b""
                while b"\r\n\r\n" not in data:
                    data += connection.recv(65536) or b"x" * 0 or self._closed()
                head, _, rest = data.partition(b"\r\n\r\n")
                method, path, _ = head.split(b"\r\n")[0].decode().split(" ", 2)
                length = next((int(line.split(b":")[1]) for line in head.split(b"\r\n")
                               if line.lower().startswith(b"content-length:")), 0)
                while len(rest) < length:
                    rest += connection.recv(65536) or self._closed()
                self.requests.append(f"{method} {path}")
                self.answer(connection, method, path)
            except (OSError, _Closed):
                pass

    @staticmethod
    def _closed():
        raise _Closed()

    def send(self, connection: socket.socket, data: bytes) -> None:
        if self._stop.is_set():
            raise _Closed()
        connection.sendall(data)
        self.sent += len(data)


class _Closed(Exception):
    pass


def head(status: str = "200 OK", *extra: str, length: int | None = None) -> bytes:
    lines = [f"HTTP/1.1 {status}", "Content-Type: application/json", *extra]
    lines.append(f"Content-Length: {length}" if length is not None else "Transfer-Encoding: chunked")
    return ("\r\n".join(lines) + "\r\n\r\n").encode()


def trickle_body(server: Hostile):
    def answer(connection, method, path):
        server.send(connection, head())
        while True:  # one byte of a chunked body at a time, each well inside the per-read timeout
            server.send(connection, b"1\r\n \r\n")
            time.sleep(0.3)
    return answer


def trickle_headers(server: Hostile):
    def answer(connection, method, path):
        server.send(connection, b"HTTP/1.1 200 OK\r\n")
        while True:  # slowloris: a header line that never ends, a byte at a time
            server.send(connection, b"X")
            time.sleep(0.3)
    return answer


def endless_body(server: Hostile):
    def answer(connection, method, path):
        server.send(connection, head())
        chunk = b"[" + b"0," * 32767
        frame = f"{len(chunk):x}\r\n".encode() + chunk + b"\r\n"
        while True:
            server.send(connection, frame)
    return answer


BOMB = gzip.compress(b" " * (512 * 1024 * 1024), compresslevel=9)  # 0.5 MiB that inflates to 512 MiB


def gzip_bomb(server: Hostile):
    def answer(connection, method, path):
        server.send(connection, head("200 OK", "Content-Encoding: gzip", length=len(BOMB)) + BOMB)
    return answer


def huge_detail(server: Hostile):
    def answer(connection, method, path):
        body = json.dumps({"detail": "refused " + "D" * (5 * 1024 * 1024)}).encode()
        server.send(connection, head("422 Unprocessable Entity", length=len(body)) + body)
    return answer


def huge_list(server: Hostile):
    body = json.dumps([{"name": "x" * 100, "id": str(i)} for i in range(400_000)]).encode()  # ~50 MB

    def answer(connection, method, path):
        server.send(connection, head(length=len(body)) + body)
    return answer


def endless_pages(server: Hostile):
    def answer(connection, method, path):
        if "filter" not in path:
            body = b'"3.8.8"'
        else:  # always a full page: "there may be more"
            body = json.dumps([{"id": f"00000000-0000-0000-0000-{i:012d}", "name": f"p{i}", "type": "docker"}
                               for i in range(200)]).encode()
        server.send(connection, head(length=len(body)) + body)
    return answer


def project_at(tmp_path, url: str) -> Project:
    project = Project(tmp_path / "repo", url + "/api", unique("etl"))
    project.write(base_manifest(project.name, "dev-pool"))
    return project


def timed_plan(project: Project, **env: str):
    started = time.monotonic()
    result = project.plan(timeout=60, **{**FAST, **env})
    return result, time.monotonic() - started


@pytest.mark.parametrize("attack", [trickle_body, trickle_headers], ids=["trickled body", "trickled headers"])
def test_a_server_that_trickles_bytes_cannot_hold_a_plan_past_its_deadline(tmp_path, attack):
    with Hostile(lambda *a: None) as server:
        server.answer = attack(server)
        result, seconds = timed_plan(project_at(tmp_path, server.url))
    assert result.code == 4, result
    # 2 s a request, retried for 4 s: the run ends in seconds, not when the server stops trickling
    assert seconds < 20, (seconds, result)
    assert "no answer within 2s" in result.err, result


def test_an_endless_body_is_read_up_to_the_cap_and_named(tmp_path):
    with Hostile(lambda *a: None) as server:
        server.answer = endless_body(server)
        result, seconds = timed_plan(project_at(tmp_path, server.url))
        sent = server.sent
    assert result.code == 4, result
    assert f"the answer of 127.0.0.1:{server.port} is larger than flow-register reads (32 MiB)" in result.err, result
    assert seconds < 30 and sent < 200 * 1024 * 1024, (seconds, sent)


def test_a_gzip_bomb_is_inflated_only_up_to_the_cap(tmp_path):
    import resource

    with Hostile(lambda *a: None) as server:
        server.answer = gzip_bomb(server)
        project = project_at(tmp_path, server.url)
        # the registrar's own peak memory, measured in a process of its own
        script = ("import resource, subprocess, sys; p = subprocess.run(sys.argv[1:]); "
                  "print(resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss, file=sys.stderr); sys.exit(p.returncode)")
        import subprocess
        import sys

        from support.registration import CLI, client_env
        process = subprocess.run([sys.executable, "-c", script, CLI, "plan", "-e", "dev"], cwd=project.root,
                                 capture_output=True, text=True, timeout=60,
                                 env=client_env(project.api_url, project.home, **FAST))
    assert resource  # noqa: the measure is the child's own
    peak_mib = int(process.stderr.strip().splitlines()[-1]) / 1024
    assert process.returncode == 4, process.stderr
    assert "is larger than flow-register reads (32 MiB)" in process.stderr, process.stderr
    assert peak_mib < 300, peak_mib  # the inflated answer would be 512 MiB, held twice


def test_a_huge_error_detail_is_cut_short_in_the_log(tmp_path):
    with Hostile(lambda *a: None) as server:
        server.answer = huge_detail(server)
        result, _ = timed_plan(project_at(tmp_path, server.url))
    assert result.code in (1, 4), result
    assert "refused DDDD" in result.err, result
    assert "more)" in result.err, result
    assert len(result.err) + len(result.out) < 20_000, len(result.err) + len(result.out)


def test_a_huge_json_list_is_refused_at_the_cap(tmp_path):
    with Hostile(lambda *a: None) as server:
        server.answer = huge_list(server)
        result, _ = timed_plan(project_at(tmp_path, server.url))
    assert result.code == 4, result
    assert "is larger than flow-register reads (32 MiB)" in result.err, result


def test_a_listing_that_never_ends_is_stopped(tmp_path):
    with Hostile(lambda *a: None) as server:
        server.answer = endless_pages(server)
        result, seconds = timed_plan(project_at(tmp_path, server.url), FLOW_REGISTER_RETRY_SECONDS="30")
    assert result.code == 4, result
    assert "listed more than 100000 and kept going" in result.err, result
    assert seconds < 60


# -- a registry and GitHub's API: the same bounds, through the same client ----------------------------

@pytest.fixture
def short_deadlines(monkeypatch):
    from register.image import registries
    from register.report import comment

    monkeypatch.setattr(registries, "TIMEOUT", 2.0)
    monkeypatch.setattr(comment, "TIMEOUT", 2.0)


def registry_at(server: Hostile):
    from register.image.registries import Repository
    from support import stages

    return stages.registry(Repository.parse(f"127.0.0.1:{server.port}/flows"))


@pytest.mark.parametrize("attack", [trickle_body, trickle_headers], ids=["trickled body", "trickled headers"])
def test_a_registry_that_trickles_bytes_is_given_up_at_the_deadline(short_deadlines, attack):
    from register.image.registries import RegistryError

    with Hostile(lambda *a: None) as server:
        server.answer = attack(server)
        started = time.monotonic()
        with pytest.raises(RegistryError, match=f"cannot reach the registry 127.0.0.1:{server.port}: ReadTimeout"):
            registry_at(server).add_tag("sha256:" + "0" * 64, "v1")
    assert time.monotonic() - started < 10


@pytest.mark.parametrize("attack", [endless_body, gzip_bomb], ids=["endless body", "gzip bomb"])
def test_a_registry_answer_is_read_up_to_its_cap(short_deadlines, attack):
    from register.image.registries import RegistryError

    with Hostile(lambda *a: None) as server:
        server.answer = attack(server)
        with pytest.raises(RegistryError, match=r"is larger than flow-register reads \(8 MiB\)"):
            registry_at(server).add_tag("sha256:" + "0" * 64, "v1")
        assert server.sent < 64 * 1024 * 1024


def comment_on(server: Hostile, tmp_path):
    from register.report.comment import upsert_comment
    from register.settings import GitHub

    event = tmp_path / "event.json"
    event.write_text(json.dumps({"pull_request": {"number": 7}}))
    github = GitHub(active=True, api_url=server.url, repository="acme/flows", event_name="pull_request",
                    event_path=str(event), token="ghs_" + "t" * 36)
    return upsert_comment("plan", github, project="etl", environment="dev")


@pytest.mark.parametrize("attack", [trickle_body, trickle_headers, endless_body, gzip_bomb, huge_detail],
                         ids=["trickled body", "trickled headers", "endless body", "gzip bomb", "huge message"])
def test_the_github_api_cannot_hold_or_flood_the_comment(short_deadlines, tmp_path, attack):
    with Hostile(lambda *a: None) as server:
        server.answer = attack(server)
        started = time.monotonic()
        note = comment_on(server, tmp_path)
    assert note.warning, note
    assert time.monotonic() - started < 10, note
    assert len(note) < 1000, len(note)
    if attack in (endless_body, gzip_bomb):
        assert "is larger than flow-register reads (16 MiB)" in note, note


# -- the deploy lease: a lock a server user switched off or widened is refused ------------------------

def _deploying(project: Project, api_url: str) -> subprocess.Popen:
    from support.registration import CLI, client_env

    env = client_env(api_url, project.home, PREFECT_API_REQUEST_TIMEOUT="300")  # it is held a while
    return subprocess.Popen([CLI, "deploy", "-e", "dev", "--output", "json"], cwd=project.root, env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


@pytest.mark.integration
@pytest.mark.parametrize("change", [{"active": False}, {"limit": 5}, {"slot_decay_per_second": 1.0}],
                         ids=["switched off", "limit raised", "slots decaying"])
def test_a_deploy_lock_changed_on_the_server_does_not_let_two_deploys_run_at_once(project, api, change):
    from support.proxy import Proxy, Rule

    lock = f"flow-register:{project.name}:dev"
    with Proxy(project.api_url, rules=[Rule("hold", "POST", r"/deployments/$")]) as proxy:
        first = _deploying(project, proxy.api_url)
        deadline = time.monotonic() + 120
        while not proxy.injected["hold"]:  # the first run holds the lease, mid-apply
            assert time.monotonic() < deadline and first.poll() is None, proxy.summary()
            time.sleep(0.05)
        response = api.http.patch(f"/v2/concurrency_limits/{lock}", json=change)  # a server user, by hand
        assert response.status_code == 204, response.text
        second = project.deploy(timeout=120)
        proxy.open_gate()
        out, err = first.communicate(timeout=300)
    assert first.returncode == 0, err
    assert second.code == 4, second
    assert f"the deploy lock '{lock}' on " in second.err, second.err
    assert "no longer keeps deploys of project" in second.err and "Nothing was written" in second.err, second.err
    assert "registering deployment" not in second.err, second.err


# -- drift: what the server holds is compared with what the manifest and the flow source make ----------

@pytest.mark.integration
def test_a_parameter_schema_rewritten_with_its_label_still_shows_as_drift_and_deploy_repairs_it(project, api):
    import hashlib

    assert project.deploy().code == 0
    found = api.deployments("managed-by:flow-register", f"project:{project.name}", "environment:dev")
    registered = found[f"extract-{project.name}"]
    original = registered["parameter_openapi_schema"]
    # A server user widens what runs may be started with (any region, days as a string) and rewrites the
    # label that says which flow source and schema flow-register wrote, so that the two agree again.
    forged = {**original, "properties": {**original["properties"], "days": {"type": "string", "title": "days"}}}
    labels = dict(registered["labels"])
    label = json.loads(labels["flow-register.schema"])
    label["schema"] = hashlib.sha256(json.dumps(forged, sort_keys=True).encode()).hexdigest()[:16]
    labels["flow-register.schema"] = json.dumps(label, separators=(",", ":"))
    # (labels are not patchable: the whole deployment is written again, as a client upserts it)
    kept = ["name", "flow_id", "paused", "concurrency_limit", "concurrency_options", "enforce_parameter_schema",
            "parameters", "tags", "pull_steps", "work_queue_name", "work_pool_name", "description", "version",
            "entrypoint", "job_variables"]
    body = {k: registered[k] for k in kept if k in registered}
    body["concurrency_limit"] = (registered.get("global_concurrency_limit") or {}).get("limit")
    body["schedules"] = [{k: s[k] for k in ("schedule", "active", "parameters", "slug") if k in s}
                         for s in registered.get("schedules") or []]
    response = api.http.post("/deployments/", json={**body, "parameter_openapi_schema": forged, "labels": labels})
    assert response.status_code in (200, 201), response.text
    assert api.deployment(registered["id"])["parameter_openapi_schema"] == forged

    planned = project.plan()
    assert planned.code == 0, planned
    extract = next(d for d in planned.json["deployments"] if d["name"] == f"extract-{project.name}")
    assert extract["action"] == "update" and extract["changes"] == ["parameter_schema"], extract
    assert planned.json["changes"] is True if "changes" in planned.json else True

    repaired = project.deploy()
    assert repaired.code == 0, repaired
    again = api.deployments("managed-by:flow-register", f"project:{project.name}", "environment:dev")
    assert again[f"extract-{project.name}"]["parameter_openapi_schema"] == original


# -- numbers the server cannot store: refused before the first write ---------------------------------

@pytest.mark.integration
@pytest.mark.parametrize("field, value, said", [
    ("schedules", [{"interval": 1e20}], "to 31536000000 seconds (1000 years: the server computes dates up to"),
    ("concurrency_limit", 2**64, "concurrency_limit 18446744073709551616 is more than the server stores"),
], ids=["interval of 1e20 s", "limit above 64 bits"])
def test_a_number_the_server_cannot_store_is_refused_before_any_write(project, api, field, value, said):
    manifest = project.manifest
    manifest["deployments"].insert(0, {"name": "first", "entrypoint": "flows/etl.py:extract"})  # written first
    manifest["deployments"][-1][field] = value  # the last deployment
    project.write(manifest)
    started = time.monotonic()
    result = project.deploy(timeout=300)
    assert result.code == 1, result
    # validate's range check at the number's line, and the one problem there (deploy's own last guard,
    # rule server-range, stays quiet where validate already refused the line)
    assert said in result.err and result.err.count(": error: ") == 1, result.err
    assert "flows.yaml:" in result.err.split(said)[0].splitlines()[-1], result.err
    assert api.deployments(f"project:{project.name}") == {}, "nothing is written"
    assert time.monotonic() - started < 60


def _edit_first_automation(api, project, how: str):
    found = api.deployments("managed-by:flow-register", f"project:{project.name}", "environment:dev")
    deployment = found[f"extract-{project.name}"]
    [automation] = api.automations_of(deployment["id"])
    if how == "switched off":
        response = api.http.patch(f"/automations/{automation['id']}", json={"enabled": False})
    else:  # other events, the same tags (its fingerprint among them)
        body = {k: automation[k] for k in ("name", "description", "enabled", "trigger", "actions",
                                            "actions_on_trigger", "actions_on_resolve", "tags")}
        body["trigger"] = {**body["trigger"], "expect": ["something.else"]}
        body["trigger"].pop("id", None)
        response = api.http.put(f"/automations/{automation['id']}", json=body)
    assert response.status_code in (200, 204), response.text
    return deployment["id"]


@pytest.mark.integration
@pytest.mark.parametrize("how", ["switched off", "other events"])
def test_a_trigger_edited_on_the_server_under_its_fingerprint_tag_shows_as_drift(project, api, how):
    assert project.deploy().code == 0
    deployment_id = _edit_first_automation(api, project, how)

    planned = project.plan()
    assert planned.code == 0, planned
    extract = next(d for d in planned.json["deployments"] if d["name"] == f"extract-{project.name}")
    assert extract["action"] == "update" and extract["changes"] == ["triggers"], extract

    assert project.deploy().code == 0
    [automation] = api.automations_of(deployment_id)
    assert automation["enabled"] is True and automation["trigger"]["expect"] == ["data.arrived"], automation
