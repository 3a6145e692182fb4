"""A Prefect 3 deploy script registered both ways into one real Prefect server: the script itself, run
with `python deploy.py` (the test's own fixture: running it is the point), and `flow-register deploy` of
what `flow-register import deploy.py` read from it without running it (its names end in `-fr`). Every
field of every deployment, and its automations, must be the same but for the differences named in
BY_DESIGN. Prefect 1 and 2 scripts cannot run under Prefect 3: the unit tier compares them with the
manifests they must make (tests/unit/importer/python)."""

from __future__ import annotations

import shutil
import subprocess
import sys
from datetime import datetime, timezone
from pathlib import Path

import httpx
import pytest
import yaml

from support.registration import CLI, Api, client_env, worker_templates

pytestmark = pytest.mark.integration

FIXTURE = Path(__file__).resolve().parents[1] / "unit" / "importer" / "python" / "prefect3-deploy"
POOL = "docker-python-import"  # the script's default pool (os.getenv("WORK_POOL", ...))
NAMES = ("sales-dev", "sales-prod", "sales-hourly", "weekly-report")
OWNERSHIP = ("managed-by:flow-register", "project:", "environment:")
COMPARED = ("flow_id", "entrypoint", "work_pool_name", "work_queue_name", "job_variables", "parameters",
            "parameter_openapi_schema", "enforce_parameter_schema", "description", "version", "concurrency_limit",
            "concurrency_options", "paused", "tags", "pull_steps")
SCHEDULE_FIELDS = ("active", "parameters", "slug", "max_scheduled_runs")
# What differs by design, field by field: a test of (the script's value, flow-register's), and why.
BY_DESIGN = {
    "version": (lambda a, b: a and b is None,
                "the script registers a hash of the flow's file when it sets no version; flow-register its own "
                "default (the image's content tag; none without an image)"),
    "description": (lambda a, b: a == "None" and b is None,
                    "the script registers the string 'None' for a flow with no docstring and no description"),
    "pull_steps": (lambda a, b: a == [] and b is None,
                   "no pull steps either way: the script sends an empty list, flow-register none"),
}


def schedules(deployment: dict, since: datetime) -> list[dict]:
    def one(s: dict) -> dict:
        shape = {k: v for k, v in s["schedule"].items() if v is not None}
        if shape.get("anchor_date") and datetime.fromisoformat(shape["anchor_date"].replace("Z", "+00:00")) >= since:
            shape["anchor_date"] = "when it was registered"  # neither side set one: the server's now, by design
        return {"schedule": shape, **{k: s.get(k) for k in SCHEDULE_FIELDS}}
    return sorted((one(s) for s in deployment["schedules"]), key=repr)


def triggers(api: Api, deployment: dict) -> list[dict]:
    out = []
    for automation in api.automations_of(deployment["id"]):
        trigger = {k: v for k, v in automation["trigger"].items() if k != "id"}
        actions = [{k: v for k, v in a.items() if k != "deployment_id"} for a in automation["actions"]]
        out.append({"description": automation["description"], "enabled": automation["enabled"], "trigger": trigger,
                    "actions": actions})
    return sorted(out, key=repr)


@pytest.fixture
def api(prefect_server) -> Api:
    api = Api(prefect_server.api_url)
    try:
        api.create_pool(POOL, "docker", worker_templates()["docker"])
    except httpx.HTTPStatusError as error:
        if error.response.status_code != 409:  # made by an earlier test of the session
            raise
    return api


def test_the_imported_manifest_registers_what_the_deploy_script_registers(tmp_path, prefect_server, api):
    root = tmp_path / "prefect3-deploy"
    shutil.copytree(FIXTURE, root, ignore=shutil.ignore_patterns("*.expected", "__pycache__"))
    env = client_env(prefect_server.api_url, tmp_path / "home")
    since = datetime.now(timezone.utc)

    script = subprocess.run([sys.executable, "deploy.py"], cwd=root, env=env, capture_output=True, text=True,
                            timeout=600)
    assert script.returncode == 0, script.stdout + script.stderr

    converted = subprocess.run([CLI, "import", "deploy.py", "-o", "flows.yaml"], cwd=root, env=env,
                               capture_output=True, text=True)
    assert converted.returncode == 0, converted.stderr
    manifest = yaml.safe_load((root / "flows.yaml").read_text())
    manifest["environments"]["prod"]["name_template"] = "{name}-fr"
    (root / "flows.yaml").write_text(yaml.safe_dump(manifest, sort_keys=False))
    ours = subprocess.run([CLI, "deploy", "-e", "prod"], cwd=root, env=env, capture_output=True, text=True,
                          timeout=600)
    assert ours.returncode == 0, ours.stdout + ours.stderr

    registered = {d["name"]: d for d in api.post("/deployments/filter", {"deployments": {"name": {"any_": [
        *NAMES, *(f"{n}-fr" for n in NAMES)]}}})}
    assert sorted(registered) == sorted([*NAMES, *(f"{n}-fr" for n in NAMES)])
    differences = {}
    for name in NAMES:
        theirs, mine = registered[name], registered[f"{name}-fr"]
        for field in COMPARED:
            a, b = theirs.get(field), mine.get(field)
            if field == "tags":
                b = [t for t in b if not t.startswith(OWNERSHIP)]
            if a != b:
                differences[(name, field)] = (a, b)
        assert schedules(theirs, since) == schedules(mine, since), name
        assert triggers(api, theirs) == triggers(api, mine), name
    # what the script set is there on both sides (the comparison is not of two empty deployments)
    assert registered["sales-prod-fr"]["job_variables"] == {"image": "registry.example.com/acme/sales:2024.06.1",
                                                            "env": {"STAGE": "prod"}}
    assert registered["weekly-report-fr"]["work_queue_name"] == "reports"
    assert len(api.automations_of(registered["sales-dev-fr"]["id"])) == 1

    unexplained = {k: v for k, v in differences.items() if k[1] not in BY_DESIGN or not BY_DESIGN[k[1]][0](*v)}
    assert unexplained == {}
    for (name, field), (a, b) in differences.items():
        print(f"{name}.{field}: the script {a!r} / flow-register {b!r} ({BY_DESIGN[field][1]})")
