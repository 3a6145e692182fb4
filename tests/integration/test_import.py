"""A prefect.yaml registered both ways into one real Prefect server: `prefect deploy --all` from the
fixture's folder (with `--prefect-file` when the prefect.yaml is in a subfolder, as in a monorepo), and
`flow-register deploy` of what `flow-register import` made of it (its names end in `-fr`). Every field of
every deployment, and its automations, must be the same but for the differences named in BY_DESIGN."""

from __future__ import annotations

import re
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

FIXTURES = Path(__file__).resolve().parents[1] / "unit" / "importer"
PREFECT = str(Path(sys.executable).with_name("prefect"))
OWNERSHIP = ("managed-by:flow-register", "project:", "environment:")
# Work pools the fixtures name, with the type each repository's pool has (a managed pool cannot be
# made on a local server: a process pool stands in; its job variables are empty).
POOLS = {"scope-push-pool": "ecs:push", "ccdi-curation-2gb-prefect-3.2.14-python3.9": "process",
         "tasks-manager-managed-pool": "process", "import-fixture-docker": "docker"}
# What the fixtures' `{{ $VAR }}` read: prefect deploy fills them when it deploys, flow-register's `${VAR}` too
VARIABLES = {"IMPORT_TEAM": "sales", "IMPORT_STAGE": "dev"}


def _clone(steps: list | None) -> str | None:
    """The repository a run clones (a token a step templated into its URL left out)."""
    for step in steps or []:
        for name, inputs in step.items():
            if name.endswith(("git_clone", "git_clone_project")):
                return re.sub(r"//[^/@]*\{\{.*?\}\}[^/@]*@", "//", inputs["repository"])
    return None


def _same_steps(a: list | None, b: list | None) -> bool:
    """The same pull steps but for the clone step's id (prefect.yaml's own, or flow-register's)."""
    ids = [inputs.get("id") for step in a or [] for name, inputs in step.items() if name.endswith("git_clone")]
    if not ids or not ids[0]:
        return a == b
    text = yaml.safe_dump(b).replace("clone-step", ids[0])
    return a == yaml.safe_load(text)


def _as_file(entrypoint: str) -> str:
    module, _, function = entrypoint.rpartition(":")
    return f"{module.replace('.', '/')}.py:{function}"


# What differs by design, field by field: a test of (prefect deploy's value, flow-register's), and why.
BY_DESIGN = {
    "entrypoint": (lambda a, b: not a.split(":")[0].endswith(".py") and b == _as_file(a),
                   "a module path is written as the flow's file path"),
    "pull_steps": (lambda a, b: _clone(a) == _clone(b) is not None,
                   "the same repository, cloned at the commit being deployed when prefect.yaml names no branch; no "
                   "stream_output; steps with no equivalent (run_shell_script) left out, with a warning"),
    "version": (lambda a, b: a and b is None,
                "prefect deploy registers a hash of the flow's file when prefect.yaml sets no version; flow-register "
                "its own default (the image's content tag; none without an image)"),
    "description": (lambda a, b: a == "None" and b is None,
                    "prefect deploy registers the string 'None' for an empty description of a flow with no docstring"),
}
COMPARED = ("flow_id", "entrypoint", "work_pool_name", "work_queue_name", "job_variables", "parameters",
            "parameter_openapi_schema", "enforce_parameter_schema", "description", "version", "concurrency_limit",
            "concurrency_options", "paused", "tags", "pull_steps")
SCHEDULE_FIELDS = ("active", "parameters", "slug", "max_scheduled_runs")


def git(root: Path, *args: str) -> None:
    subprocess.run(["git", "-C", str(root), "-c", "user.name=t", "-c", "user.email=t@t", *args], check=True,
                   capture_output=True)


STARTED = datetime.now(timezone.utc)


def schedules(deployment: dict) -> list[dict]:
    def one(s: dict) -> dict:
        shape = {k: v for k, v in s["schedule"].items() if v is not None}
        if "anchor_date" in shape and datetime.fromisoformat(shape["anchor_date"]) >= STARTED:
            del shape["anchor_date"]  # none in the file: each client anchors an interval at the time it deploys
        return {"schedule": shape, **{k: s.get(k) for k in SCHEDULE_FIELDS}}
    return sorted((one(s) for s in deployment["schedules"]), key=repr)


def triggers(api: Api, deployment: dict) -> list[dict]:
    out = []
    for automation in api.automations_of(deployment["id"]):
        trigger = {k: v for k, v in automation["trigger"].items() if k != "id"}
        actions = [{k: v for k, v in a.items() if k != "deployment_id"} for a in automation["actions"]]
        # named after the deployment, as registered: `daily__automation_1` and `daily-fr__automation_1`
        name = automation["name"].replace(f"{deployment['name']}__", "__", 1)
        out.append({"name": name, "description": automation["description"],
                    "enabled": automation["enabled"], "trigger": trigger, "actions": actions})
    return sorted(out, key=repr)


@pytest.fixture
def api(prefect_server) -> Api:
    api = Api(prefect_server.api_url)
    for name, kind in POOLS.items():
        template = worker_templates()["ecs" if kind == "ecs:push" else kind]
        try:
            api.create_pool(name, kind, template)
        except httpx.HTTPStatusError as error:
            if error.response.status_code != 409:  # made by an earlier test of the session
                raise
    return api


@pytest.mark.parametrize("repository", sorted(p.parent.name for p in FIXTURES.glob("*/flows.yaml.expected")))
def test_the_converted_manifest_registers_what_prefect_deploy_registers(repository, tmp_path, prefect_server, api):
    root = tmp_path / repository
    shutil.copytree(FIXTURES / repository, root, ignore=shutil.ignore_patterns("*.expected", "__pycache__"))
    git(root, "init", "-q")
    git(root, "add", ".")
    git(root, "commit", "-qm", "flows")
    env = client_env(prefect_server.api_url, tmp_path / "home", **VARIABLES)
    prefect_yaml = str(next(root.rglob("prefect.yaml")).relative_to(root))

    prefect = subprocess.run([PREFECT, "--no-prompt", "deploy", "--all", "--prefect-file", prefect_yaml], cwd=root,
                             env=env, capture_output=True, text=True, timeout=600)
    assert prefect.returncode == 0, prefect.stdout + prefect.stderr

    converted = subprocess.run([CLI, "import", prefect_yaml, "-o", "flows.yaml"], cwd=root, env=env,
                               capture_output=True, text=True)
    assert converted.returncode == 0, converted.stderr
    manifest = yaml.safe_load((root / "flows.yaml").read_text())
    manifest["environments"]["prod"]["name_template"] = "{name}-fr"
    (root / "flows.yaml").write_text(yaml.safe_dump(manifest, sort_keys=False))
    ours = subprocess.run([CLI, "deploy", "-e", "prod"], cwd=root, env=env, capture_output=True, text=True,
                          timeout=600)
    assert ours.returncode == 0, ours.stdout + ours.stderr

    declared = yaml.safe_load((root / prefect_yaml).read_text())["deployments"]
    names = list(dict.fromkeys(str(d["name"]) for d in declared if d.get("name") is not None))  # as prefect deploy
    registered = {d["name"]: d for d in api.post("/deployments/filter", {"deployments": {"name": {"any_": [
        *names, *(f"{n}-fr" for n in names)]}}})}
    differences = {}
    for name in names:
        theirs, mine = registered[name], registered[f"{name}-fr"]
        for field in COMPARED:
            a, b = theirs.get(field), mine.get(field)
            if field == "tags":
                b = [t for t in b if not t.startswith(OWNERSHIP)]
            if field == "pull_steps" and _same_steps(a, b):
                continue
            if a != b:
                differences[(name, field)] = (a, b)
        assert schedules(theirs) == schedules(mine), name
        assert triggers(api, theirs) == triggers(api, mine), name

    unexplained = {k: v for k, v in differences.items() if k[1] not in BY_DESIGN or not BY_DESIGN[k[1]][0](*v)}
    assert unexplained == {}
    if repository == "monorepo":  # written for these tests: every step has its equivalent, so only the version differs
        assert {field for _, field in differences} == {"version"}
    # Each difference by design is the one named; print them for the record (pytest -s).
    for (name, field), (a, b) in differences.items():
        print(f"{repository}: {name}.{field}: prefect deploy {a!r} / flow-register {b!r} ({BY_DESIGN[field][1]})")
