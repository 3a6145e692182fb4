"""plan and deploy against a real Prefect server, run as a user runs them (the CLI in a subprocess).

Each test has a project and work pools of its own, so tests share the session's server without
seeing each other's deployments.
"""

from __future__ import annotations

import copy
import json
import subprocess
from pathlib import Path

import pytest
import yaml

from support.proxy import Proxy, Rule
from support.registration import (CLI, Api, Project, base_manifest, client_env, fake_registry, unique,
                                  worker_templates)

pytestmark = pytest.mark.integration

OWNER = "managed-by:flow-register"
# The fake registry has every tag, and the integration tier builds nothing: its image is taken as it is
# (`build: auto` reuses a registry image only when the environment's deployments already run it).
PREBUILT = ("--build", "never")


def owned(api: Api, project: Project, environment: str = "dev") -> dict[str, dict]:
    """The project's deployments in `environment`, by their names in the manifest."""
    found = api.deployments(OWNER, f"project:{project.name}", f"environment:{environment}")
    return {name.removesuffix(f"-{project.name}"): d for name, d in found.items()}


def entries(result) -> dict[str, dict]:
    """The plan's deployments, by their names in the manifest (the registered names end in the project)."""
    project = result.json["project"]
    return {d["name"].removesuffix(f"-{project}"): d for d in result.json["deployments"]}


def actions(result) -> dict[str, str]:
    return {name: d["action"] for name, d in entries(result).items()}


def test_create_registers_every_field_then_a_second_run_writes_nothing(project, api, pool):
    with fake_registry() as (registry, _):
        manifest = base_manifest(project.name, pool, image=f"{registry}/etl")
        project.write(manifest)
        first = project.deploy(*PREBUILT)
        assert first.code == 0, first
        assert actions(first) == {"extract": "create", "weekly": "create"}
        image = first.json["image"]
        assert image["reference"].startswith(f"{registry}/etl@sha256:") and image["content_tag"].startswith("ct-")

        registered = owned(api, project)
        assert set(registered) == {"extract", "weekly"}
        extract = registered["extract"]
        assert extract["work_pool_name"] == pool and extract["work_queue_name"] == "default"
        assert extract["job_variables"] == {"image": image["reference"], "mem_limit": "512m"}
        assert extract["parameters"] == {"region": "eu"}
        assert set(extract["parameter_openapi_schema"]["properties"]) == {"region", "days"}
        assert [s["schedule"]["cron"] for s in extract["schedules"]] == ["0 6 * * *"]
        assert extract["schedules"][0]["schedule"]["timezone"] == "Europe/Berlin"
        assert set(extract["tags"]) == {"etl", OWNER, f"project:{project.name}", "environment:dev"}
        assert extract["description"] == "Extract some days of one region."  # the flow's docstring
        assert extract["entrypoint"] == "flows/etl.py:extract"
        assert extract["pull_steps"] == [
            {"prefect.deployments.steps.set_working_directory": {"directory": "/opt/prefect/etl"}}]
        assert extract["global_concurrency_limit"]["limit"] == 1
        assert extract["paused"] is False
        assert extract["version"] == image["content_tag"]  # the image's content tag is the default version
        automations = api.automations_of(extract["id"])
        assert [a["trigger"]["expect"] for a in automations] == [["data.arrived"]]
        assert automations[0]["actions"][0]["parameters"] == {"region": "us"}
        assert f"project:{project.name}" in automations[0]["tags"]
        weekly = registered["weekly"]
        assert weekly["parameters"] == {"recipients": ["a@example.com"]}
        assert weekly["global_concurrency_limit"] is None and weekly["schedules"] == []

        second = project.deploy(*PREBUILT)
        assert second.code == 0, second
        assert actions(second) == {"extract": "unchanged", "weekly": "unchanged"}
        assert second.json["requests"]["writes"] == 0
        assert second.json["requests"]["reads"] <= 4  # bulk: pools, deployments, flows, automations
        ids = {name: d["id"] for name, d in entries(second).items()}
        assert ids == {name: d["id"] for name, d in registered.items()}

        text = project.cli("deploy", "-e", "dev")
        assert text.code == 0, text
        assert f"unchanged  extract-{project.name}" in text.out and "no write made" in text.out


def _edit(manifest: dict, path: tuple, value) -> None:
    *parents, last = path
    node = manifest
    for key in parents:
        node = node[key]
    if value is None:
        node.pop(last, None)
    else:
        node[last] = value


def test_an_update_of_each_field_writes_that_field_and_converges(project, api, pool):
    other_pool = unique("docker")
    api.create_pool(other_pool, "docker")
    extract = ("deployments", 0)

    def edit_source(root):
        for name in ("etl.py", "etl_v2.py"):  # etl_v2.py has the same flow, at another entrypoint
            text = (root / "flows" / name).read_text()
            (root / "flows" / name).write_text(text.replace("days: int = 1)", "days: int = 1, dry: bool = False)", 1))

    # (what changes, the edit, the fields the plan must name)
    steps = [
        ("work pool", lambda m: _edit(m, ("defaults", "work_pool", "name"), other_pool), {"work_pool"}),
        ("work queue", lambda m: _edit(m, ("defaults", "work_queue"), "urgent"), {"work_queue"}),
        ("raw job variables", lambda m: _edit(m, extract + ("job_variables",), {"auto_remove": True}),
         {"job_variables"}),
        ("resources", lambda m: _edit(m, extract + ("resources",), {"memory": "1Gi"}), {"job_variables"}),
        ("parameters", lambda m: _edit(m, extract + ("parameters",), {"region": "us"}), {"parameters"}),
        # new code: a new content tag, so a new image reference and version, and the flow's new parameter
        ("flow source", None, {"parameter_schema", "job_variables", "version"}),
        ("schedules", lambda m: _edit(m, extract + ("schedules",), [{"cron": "0 7 * * *", "timezone": "UTC"},
                                                                     {"interval": 3600}]), {"schedules"}),
        ("triggers", lambda m: _edit(m, extract + ("triggers",), [{"type": "event", "expect": ["data.late"]}]),
         {"triggers"}),
        ("tags", lambda m: _edit(m, extract + ("tags",), ["etl", "nightly"]), {"tags"}),
        ("description", lambda m: _edit(m, extract + ("description",), "Extract, by hand"), {"description"}),
        ("entrypoint", lambda m: _edit(m, extract + ("entrypoint",), "flows/etl_v2.py:extract_v2"), {"entrypoint"}),
        ("pull steps", lambda m: _edit(m, ("image", "workdir"), "/srv/etl"), {"pull_steps"}),
        ("concurrency limit", lambda m: _edit(m, extract + ("concurrency_limit",), 3), {"concurrency_limit"}),
        ("no concurrency limit", lambda m: _edit(m, extract + ("concurrency_limit",), None), {"concurrency_limit"}),
        ("paused", lambda m: _edit(m, extract + ("paused",), True), {"paused"}),
        ("version", lambda m: _edit(m, extract + ("version",), "2024.1"), {"version"}),
        ("triggers removed", lambda m: _edit(m, extract + ("triggers",), []), {"triggers"}),
    ]
    with fake_registry() as (registry, _):
        manifest = base_manifest(project.name, pool, image=f"{registry}/etl")
        project.write(manifest)
        first = project.deploy(*PREBUILT)
        assert first.code == 0, first
        deployment_id = owned(api, project)["extract"]["id"]
        for what, edit, fields in steps:
            manifest = copy.deepcopy(manifest)
            if edit is None:
                edit_source(project.root)
            else:
                edit(manifest)
            project.write(manifest)
            planned = project.plan(*PREBUILT)
            assert planned.code == 0, planned
            entry = entries(planned)["extract"]
            assert (entry["action"], set(entry["changes"])) == ("update", fields), f"{what}: {planned}"
            assert planned.json["requests"]["writes"] == 0
            applied = project.deploy(*PREBUILT)
            assert applied.code == 0, f"{what}: {applied}"
            assert entries(applied)["extract"]["id"] == deployment_id, f"{what}: {applied}"

        final = project.plan(*PREBUILT)
        assert final.code == 0 and set(actions(final).values()) == {"unchanged"}, final

    extract = owned(api, project)["extract"]
    assert extract["work_pool_name"] == other_pool and extract["work_queue_name"] == "urgent"
    assert extract["job_variables"]["auto_remove"] is True and extract["job_variables"]["mem_limit"] == "1024m"
    assert extract["parameters"] == {"region": "us"}
    assert "dry" in extract["parameter_openapi_schema"]["properties"]
    assert sorted(str(s["schedule"].get("cron") or s["schedule"].get("interval")) for s in extract["schedules"]) == \
        ["0 7 * * *", "3600.0"]
    assert set(extract["tags"]) >= {"etl", "nightly"}
    assert extract["description"] == "Extract, by hand" and extract["entrypoint"] == "flows/etl_v2.py:extract_v2"
    assert extract["pull_steps"][0]["prefect.deployments.steps.set_working_directory"]["directory"] == "/srv/etl"
    assert extract["global_concurrency_limit"] is None
    assert extract["paused"] is True and extract["version"] == "2024.1"
    assert api.automations_of(extract["id"]) == []


def test_prune_deletes_only_what_this_project_and_environment_own(project, api, pool, tmp_path, prefect_server):
    manifest = base_manifest(project.name, pool)
    manifest["environments"]["staging"] = {"name_template": "{environment}-{name}-{project}"}
    project.write(manifest)
    assert project.deploy().code == 0
    assert project.cli("deploy", "-e", "staging").code == 0  # the same project, another environment

    # Another flow-register project with the same deployment names, in the same flows.
    neighbour = Project(tmp_path / "neighbour", prefect_server.api_url, unique("other"))
    neighbour.write(base_manifest(neighbour.name, pool))
    assert neighbour.deploy().code == 0
    # A deployment made without flow-register, of the same flow, carrying only some of the tags.
    flow_id = api.post("/flows/filter", {"flows": {"name": {"any_": ["extract"]}}})[0]["id"]
    by_hand = api.post("/deployments/", {"name": unique("by-hand"), "flow_id": flow_id,
                                         "tags": [OWNER, f"project:{project.name}"]})

    extract_id = owned(api, project)["extract"]["id"]
    manifest["deployments"] = [d for d in manifest["deployments"] if d["name"] != "extract"]
    project.write(manifest)

    kept = project.deploy()
    assert kept.code == 0, kept
    assert actions(kept) == {"weekly": "unchanged"}
    assert [k["name"] for k in kept.json["kept"]] == [f"extract-{project.name}"]
    text = project.cli("plan", "-e", "dev")
    assert f"No longer in the manifest, kept: extract-{project.name} (flow extract); --prune deletes them" in text.out

    planned = project.plan("--prune")
    assert actions(planned) == {"weekly": "unchanged", "extract": "delete"}, planned
    assert api.deployment(extract_id) is not None  # a plan writes nothing

    pruned = project.deploy("--prune")
    assert pruned.code == 0, pruned
    assert actions(pruned) == {"weekly": "unchanged", "extract": "delete"}
    assert api.deployment(extract_id) is None
    assert api.automations_of(extract_id) == []
    assert set(owned(api, project)) == {"weekly"}
    assert set(owned(api, project, "staging")) == {"staging-extract", "staging-weekly"}
    assert set(owned(api, neighbour)) == {"extract", "weekly"}
    assert api.deployment(by_hand["id"]) is not None

    again = project.deploy("--prune")
    assert again.code == 0 and actions(again) == {"weekly": "unchanged"}
    assert again.json["requests"]["writes"] == 0


def test_only_with_prune_leaves_the_deployments_it_was_not_given(project, api):
    assert project.deploy().code == 0
    result = project.deploy("--only", "weekly", "--prune")
    assert result.code == 0, result
    assert actions(result) == {"weekly": "unchanged"}
    assert set(owned(api, project)) == {"extract", "weekly"}


def test_a_deployment_made_by_hand_is_taken_over(project, api, pool):
    flow_id = api.post("/flows/", {"name": "weekly-report"})["id"]
    api.post("/deployments/", {"name": f"weekly-{project.name}", "flow_id": flow_id, "work_pool_name": pool,
                               "tags": ["mine"]})
    result = project.deploy()
    assert result.code == 0, result
    weekly = entries(result)["weekly"]
    assert weekly["action"] == "update" and any("takes it over" in n for n in weekly["notes"])
    assert OWNER in owned(api, project)["weekly"]["tags"]


def test_two_environments_with_the_same_names_on_one_server_are_refused(project, api):
    manifest = project.manifest
    manifest["environments"]["test"] = {}
    project.write(manifest)
    assert project.deploy().code == 0
    result = project.cli("deploy", "-e", "test")
    assert result.code == 1, result
    assert (f"flows.yaml:12:9: error: deployment 'extract-{project.name}' of flow 'extract' on " in result.err
            and "belongs to project" in result.err and "[deployment-owner]" in result.err), result.err
    assert set(owned(api, project)) == {"extract", "weekly"}  # still dev's


def test_a_missing_work_pool_is_an_error_naming_the_pools_that_exist(project, api, pool):
    project.manifest["defaults"]["work_pool"]["name"] = "no-such-pool"
    project.write()
    result = project.deploy()
    assert result.code == 1, result
    assert "flows.yaml:5:5: error: work pool 'no-such-pool' does not exist on http://127.0.0.1:" in result.err
    assert f"'{pool}'" in result.err and "[work-pool-missing]" in result.err
    assert "Traceback" not in result.err and owned(api, project) == {}


def test_a_pool_of_another_type_is_an_error_naming_both_types(project, api):
    k8s = unique("k8s")
    api.create_pool(k8s, "kubernetes")
    project.manifest["defaults"]["work_pool"]["name"] = k8s
    project.write()
    result = project.deploy()
    assert result.code == 1, result
    assert (f"flows.yaml:6:11: error: work pool '{k8s}' is of type 'kubernetes' on the server, but the manifest "
            "declares type 'docker'") in result.err, result.err
    assert owned(api, project) == {}


def test_the_server_type_is_used_when_the_manifest_declares_none(project, api):
    k8s = unique("k8s")
    api.create_pool(k8s, "kubernetes")
    project.manifest["defaults"]["work_pool"] = k8s
    project.write()
    result = project.deploy()
    assert result.code == 0, result
    assert owned(api, project)["extract"]["job_variables"] == {"memory_request": "512Mi", "memory_limit": "512Mi"}


def test_a_resource_variable_the_template_lacks_is_an_error(project, api):
    k8s = unique("k8s")
    template = copy.deepcopy(worker_templates()["kubernetes"])
    for name in ("cpu_request", "cpu_limit", "memory_request", "memory_limit"):
        template["variables"]["properties"].pop(name)
    # An older template: no resources in the job's container either.
    container = template["job_configuration"]["job_manifest"]["spec"]["template"]["spec"]["containers"][0]
    container.pop("resources")
    api.create_pool(k8s, "kubernetes", template)
    project.manifest["defaults"]["work_pool"] = {"name": k8s, "type": "kubernetes"}
    project.manifest["deployments"][0]["resources"] = {"cpu": 0.5, "memory": "1Gi"}
    project.write()
    result = project.deploy()
    assert result.code == 1, result
    assert ("error: resources.cpu becomes job variable 'cpu_request' on kubernetes pool "
            f"'{k8s}', but the pool's base job template declares no variable 'cpu_request'") in result.err
    assert "'memory_request'" in result.err and "[work-pool-variable]" in result.err
    assert owned(api, project) == {}


def test_job_variables_the_template_rejects_are_errors_before_any_write(project, api):
    project.manifest["deployments"][0]["job_variables"] = {"auto_remove": "sometimes", "networks": "bridge"}
    project.manifest["deployments"].append(
        {"name": "first", "entrypoint": "flows/etl.py:extract", "job_variables": {"mem_limit": 512}})
    project.write()
    result = project.deploy()
    assert result.code == 1, result
    assert "rejects job variable 'auto_remove': 'sometimes' is not of type 'boolean'" in result.err, result.err
    assert "rejects job variable 'networks': 'bridge' is not of type 'array'" in result.err
    assert "rejects job variable 'mem_limit': 512 is not of type 'string'" in result.err
    assert "3 errors" in result.err
    assert owned(api, project) == {}  # nothing written, not even the valid deployment


def test_an_unknown_job_variable_is_a_warning(project, api):
    project.manifest["deployments"][1]["job_variables"] = {"mem_limt": "1g"}
    project.write()
    result = project.deploy()
    assert result.code == 0, result
    assert "warning: job variable 'mem_limt' is not declared by the base job template" in result.err
    assert "did you mean 'mem_limit'?" in result.err


def test_without_a_url_it_stops_and_never_starts_a_server(project):
    result = project.cli("plan", "-e", "dev", api_url=None)
    assert result.code == 1, result
    assert result.err.startswith("PREFECT_API_URL: error: PREFECT_API_URL is not set"), result.err
    assert "[server-url]" in result.err and "Starting" not in result.err + result.out


def test_an_unreachable_server_is_the_servers_failure_not_the_manifests(project):
    from devtools.local_server import free_port

    url = f"http://127.0.0.1:{free_port()}/api"
    result = project.cli("deploy", "-e", "dev", api_url=url, FLOW_REGISTER_RETRY_SECONDS="2")
    assert result.code == 4, result
    assert result.err.startswith(f"flow-register: error: the Prefect server failed: cannot reach the Prefect "
                                 f"server at {url} while "), result.err
    assert result.err.rstrip().endswith("nothing was written, run again"), result.err
    assert "Traceback" not in result.err


SECRET = "pnu_Sup3rSecretKeyThatMustNeverBePrinted"
AUTH = "admin:An0therSecretPassword"


def test_the_api_key_and_auth_string_are_never_printed(project, tmp_path):
    """Not in a plan, not in an error about an unreachable server, not in a refusal that echoes the
    request's headers back (as some proxies do)."""
    import http.server
    import threading

    class EchoesHeaders(http.server.BaseHTTPRequestHandler):
        def do_GET(self):  # a client with an auth string asks for a CSRF token first
            self.do_POST()

        def do_POST(self):
            body = json.dumps({"detail": f"unauthorized; you sent {dict(self.headers)}"}).encode()
            self.send_response(401)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *args):
            pass

    echo = http.server.ThreadingHTTPServer(("127.0.0.1", 0), EchoesHeaders)
    threading.Thread(target=echo.serve_forever, daemon=True).start()
    from devtools.local_server import free_port

    try:
        outputs = []
        for url in (project.api_url, f"http://127.0.0.1:{echo.server_address[1]}/api",
                    f"http://127.0.0.1:{free_port()}/api", f"http://{AUTH}@127.0.0.1:{free_port()}/api"):
            for extra in ({"PREFECT_API_KEY": SECRET}, {"PREFECT_API_AUTH_STRING": AUTH}):
                result = project.cli("deploy", "-e", "dev", api_url=url, **extra, FLOW_REGISTER_RETRY_SECONDS="2",
                                     GITHUB_OUTPUT=str(tmp_path / "out"), GITHUB_STEP_SUMMARY=str(tmp_path / "sum"))
                outputs.append((url, extra, result))
        refused = [r for url, _, r in outputs if str(echo.server_address[1]) in url]
        assert all(r.code == 1 and "the server answered 401 Unauthorized" in r.err for r in refused), refused
        assert any("***" in r.err for r in refused)  # the echoed header was there, and was blanked
        assert outputs[0][2].code == 0, outputs[0][2]
        written = (tmp_path / "out").read_text() + (tmp_path / "sum").read_text()
        import base64
        for secret in (SECRET, AUTH, AUTH.split(":")[1], base64.b64encode(AUTH.encode()).decode()):
            for url, extra, result in outputs:
                assert secret not in result.out + result.err, (url, extra, str(result))
            assert secret not in written
    finally:
        echo.shutdown()
        echo.server_close()


def test_github_outputs_and_step_summary(project, tmp_path):
    outputs, summary = tmp_path / "outputs", tmp_path / "summary.md"
    result = project.cli("deploy", "-e", "dev", GITHUB_OUTPUT=str(outputs), GITHUB_STEP_SUMMARY=str(summary))
    assert result.code == 0, result
    text = outputs.read_text()
    values = {}
    lines = iter(text.splitlines())
    for line in lines:
        if "<<" in line:
            name, delimiter = line.split("<<", 1)
            values[name] = "\n".join(iter(lambda: next(lines), delimiter))
        else:
            name, _, value = line.partition("=")
            values[name] = value
    assert (values["created"], values["updated"], values["unchanged"], values["deleted"]) == ("2", "0", "0", "0")
    deployments = json.loads(values["deployments"])
    assert [(d["name"], d["flow"], d["action"]) for d in deployments] == \
        [(f"extract-{project.name}", "extract", "create"), (f"weekly-{project.name}", "weekly-report", "create")]
    assert all(len(d["id"]) == 36 for d in deployments)
    assert json.loads(values["plan"])["summary"] == {"create": 2, "update": 0, "unchanged": 0, "delete": 0}
    assert values["image"] == ""  # this manifest has no image
    assert f"| create | `extract-{project.name}` | `extract` |" in summary.read_text()


@pytest.mark.parametrize("rule, code, applied", [
    # the server refuses the second deployment: the apply failed (3)
    (Rule("422", "POST", "/api/deployments/$", body='"name": ?"weekly-'), 3, "created 'extract"),
    # the server keeps failing the first deployment's trigger: the server failed (4)
    (Rule("500", "POST", "/api/automations/$", times=None), 4, "created 'extract"),
], ids=["deployment", "trigger"])
def test_a_failure_half_way_lists_what_was_applied_and_a_new_run_converges(project, api, rule, code, applied):
    project.manifest["deployments"].append({"name": "daily", "entrypoint": "flows/etl.py:extract"})
    project.write()
    with Proxy(project.api_url, rules=[rule]) as proxy:
        failed = project.cli("deploy", "-e", "dev", api_url=proxy.api_url, FLOW_REGISTER_RETRY_SECONDS="2")
    assert failed.code == code, failed
    assert f"the server answered {rule.fault} " in failed.err
    assert ("the Prefect server failed: " in failed.err) == (code == 4), failed.err
    assert "Applied before the failure: " + applied in failed.err, failed.err
    assert "Run the same command again to finish" in failed.err
    assert "Traceback" not in failed.err
    assert f"  created extract-{project.name} (" in failed.out  # as it happened

    again = project.deploy()
    assert again.code == 0, again
    if rule.path == "/api/deployments/$":
        assert actions(again)["extract"] == "unchanged" and actions(again)["weekly"] == "create", again
    else:
        assert actions(again)["extract"] == "update", again
        assert entries(again)["extract"]["changes"] == ["triggers"]
    assert len(api.automations_of(owned(api, project)["extract"]["id"])) == 1

    last = project.deploy()
    assert set(actions(last).values()) == {"unchanged"} and last.json["requests"]["writes"] == 0, last


def test_command_line_overrides_take_the_pool_type_from_the_server(project, api):
    k8s = unique("k8s")
    api.create_pool(k8s, "kubernetes")
    result = project.deploy("--work-pool", k8s, "--cpu", "250m", "--memory", "2Gi", "--only", "weekly")
    assert result.code == 0, result
    assert actions(result) == {"weekly": "create"}
    weekly = owned(api, project)["weekly"]
    assert weekly["work_pool_name"] == k8s
    assert weekly["job_variables"] == {"cpu_request": "250m", "cpu_limit": "250m", "memory_request": "2048Mi",
                                       "memory_limit": "2048Mi"}
    docker = project.manifest["defaults"]["work_pool"]["name"]
    refused = project.deploy("--work-pool", docker, "--cpu", "1")
    assert refused.code == 1, refused
    # worded as `validate` words it: the flag, then the environment and the server's pool, then the rule
    assert refused.err.startswith(f"--cpu: error: environment 'dev', docker pool '{docker}': docker work pools "
                                  "have no cpu variable; remove resources.cpu (memory becomes mem_limit) "
                                  "[resources-docker]"), refused.err


def test_a_resource_warning_is_printed_once(project, api):
    """`validate`'s checks and the pool checks at plan time word a resource problem alike: one line, not two."""
    aci = unique("aci")
    api.create_pool(aci, "azure-container-instance")
    manifest = project.manifest
    manifest["defaults"]["work_pool"] = {"name": aci, "type": "azure-container-instance"}
    manifest["defaults"]["resources"] = {"cpu": 6, "memory": "8G"}
    project.write(manifest)
    result = project.plan()
    assert result.code == 0, result
    warnings = [line for line in result.err.splitlines() if "is above 4 vCPU" in line]
    assert warnings == [f"flows.yaml:{warnings[0].split(':')[1]}:{warnings[0].split(':')[2]}: warning: environment "
                        f"'dev', azure-container-instance pool '{aci}': cpu 6 is above 4 vCPU, which most Azure "
                        "regions refuse [resources-aci]"], result.err


PARAMS_FLOW = '''from prefect import flow


def today() -> str:
    return "2026-11-23"


@flow
def load(region: str = "eu", day: str = today(), limit: int = 10):
    """Load a day."""
'''


def test_an_unchanged_flow_plans_unchanged_with_the_same_checks(project, api):
    """A re-run builds the schema from the same flow source (never takes it from the server, which a server
    user can edit: tests/security/test_server.py), with the same warnings and checks; a schema edited on the
    server is drift, and a changed signature is a change."""
    (project.root / "flows" / "params.py").write_text(PARAMS_FLOW)
    manifest = project.manifest
    manifest["deployments"] = [{"name": "load", "entrypoint": "flows/params.py:load", "parameters": {"limit": 5}}]
    project.write(manifest)
    warning = "flows/params.py:9:41: warning: the default of parameter 'day' (today()) cannot be known"
    first = project.deploy()
    assert first.code == 0 and actions(first) == {"load": "create"}, first
    assert warning in first.err, first.err

    second = project.deploy()
    assert second.code == 0 and actions(second) == {"load": "unchanged"}, second
    assert warning in second.err, second.err

    manifest["deployments"][0]["parameters"] = {"limit": "ten"}
    project.write(manifest)
    wrong = project.plan()
    assert wrong.code == 1, wrong
    assert "error: parameter 'limit' must be a whole number; got the string 'ten' [parameter-type]" in wrong.err

    manifest["deployments"][0]["parameters"] = {"limit": 5}
    project.write(manifest)
    registered = owned(api, project)["load"]
    edited = {**registered["parameter_openapi_schema"], "required": ["region"]}
    assert api.http.patch(f"/deployments/{registered['id']}",
                          json={"parameter_openapi_schema": edited}).status_code == 204
    drifted = project.plan()
    assert drifted.code == 0 and entries(drifted)["load"]["changes"] == ["parameter_schema"], drifted

    (project.root / "flows" / "params.py").write_text(PARAMS_FLOW.replace("limit: int = 10", "limit: int = 20"))
    changed = project.deploy()
    assert changed.code == 0 and entries(changed)["load"]["changes"] == ["parameter_schema"], changed
    assert owned(api, project)["load"]["parameter_openapi_schema"]["properties"]["limit"]["default"] == 20


def test_a_plan_of_a_broken_manifest_tells_every_mistake_at_once(project, api):
    """A manifest with a mistake is not registered, yet one plan tells all its mistakes: those validate finds
    (its parameter mistakes too, although parameters otherwise wait for the server's schemas) and those only
    the server can tell (a work pool it does not have). Nothing on the server changes."""
    (project.root / "flows" / "params.py").write_text(PARAMS_FLOW)
    manifest = project.manifest
    manifest["deployments"] = [
        {"name": "load", "entrypoint": "flows/params.py:load", "parameters": {"limit": "ten"},
         "schedules": [{"cron": "0 6 * * *", "timezone": "Europe/Berln"}]},
        {"name": "weekly", "entrypoint": "flows/etl.py:report", "work_pool": "no-such-pool",
         "parameters": {"recipients": ["a@example.com"]}}]
    project.write(manifest)
    offline = ["unknown timezone 'Europe/Berln'",
               "parameter 'limit' must be a whole number; got the string 'ten' [parameter-type]"]
    validated = project.cli("validate")
    assert validated.code == 1 and all(m in validated.err for m in offline), validated
    assert validated.err.splitlines()[-1] == "2 errors, 1 warning", validated.err
    for result in (project.plan(), project.deploy()):
        assert result.code == 1, result
        assert all(m in result.err for m in offline), result.err
        assert "work pool 'no-such-pool' does not exist" in result.err, result.err
        assert result.err.splitlines()[-1] == "3 errors, 1 warning", result.err
    assert owned(api, project) == {}


BROKEN = sorted((Path(__file__).parents[1] / "unit" / "manifests").glob("invalid-*.yaml"))


@pytest.mark.parametrize("path", BROKEN, ids=lambda p: p.stem)
def test_a_plan_of_each_broken_manifest_tells_its_mistakes_and_nothing_else(path, tmp_path, prefect_server):
    """The hostile manifests of the unit tier, planned against the server: each fails with its mistakes at
    their lines, as validate tells them, and never a crash from the checks that still ask the server."""
    home = tmp_path / "home"
    home.mkdir()
    try:
        data = yaml.safe_load(path.read_text())
    except yaml.YAMLError:
        data = None
    declared = data.get("environments") if isinstance(data, dict) else None
    environments = list(declared) if isinstance(declared, dict) else ["dev"]
    for environment in environments:
        # as validate tells them for this environment (an unset variable only another one uses is a warning)
        validated = subprocess.run([CLI, "validate", "-f", path.name, "-e", environment], cwd=path.parent,
                                   capture_output=True, text=True, env=client_env(prefect_server.api_url, home))
        planned = subprocess.run([CLI, "plan", "-f", path.name, "-e", environment], cwd=path.parent,
                                 capture_output=True, text=True, env=client_env(prefect_server.api_url, home))
        assert planned.returncode == 1 and "Traceback" not in planned.stderr, planned.stderr
        told = [line for line in planned.stderr.splitlines() if line.startswith(f"{path.name}:")]
        # besides, what only the server can tell: its pools, what it does not have (webhooks) and what only
        # Prefect Cloud takes (this one is not Cloud)
        assert told and all(line in validated.stderr or "[work-pool" in line or "-cloud-only]" in line
                            or "-unavailable]" in line for line in told), planned.stderr
