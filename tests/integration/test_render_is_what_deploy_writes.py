"""`render -e ENV` prints what `deploy` writes: over the example (five pool types, triggers, schedules,
per-environment overrides) and the valid fixtures, into pools of the declared types on a real server."""

from __future__ import annotations

import json
import shutil
import uuid
from pathlib import Path

import pytest
import yaml

from register.prefect import models
from register.commands.deploy import DeployOptions, run
from register.image import offline
from register.manifest import Overrides, load_manifest
from register.commands.render import render
from register.prefect.resources import base_type
from register.report.reporters import choose
from register.server import Server, connection_from_environment
from register.settings import Settings
from support.examples import EXAMPLES
from support.registration import Api, worker_templates

pytestmark = pytest.mark.integration
FIXTURES = Path(__file__).resolve().parents[1] / "unit" / "manifests"


def _copy(source: Path, tmp_path: Path, manifest: str) -> Path:
    """A copy whose project and names are the test's own, so it shares the session's server with others."""
    root = tmp_path / "repo"
    shutil.copytree(source, root)
    path = root / manifest
    data = yaml.safe_load(path.read_text())
    data["project"] = f"render-{uuid.uuid4().hex[:8]}"
    data.setdefault("defaults", {})["name_template"] = "{project}-{name}-{environment}"
    for env in data["environments"].values():
        if env:
            env.pop("name_template", None)
    path.write_text(yaml.safe_dump(data, sort_keys=False))
    return path


def _server_fields(raw: dict) -> dict:
    """A deployment as the server holds it, under the names render uses."""
    limit = (raw.get("global_concurrency_limit") or {}).get("limit")
    return {"work_pool": raw["work_pool_name"], "work_queue": raw["work_queue_name"],
            "job_variables": raw["job_variables"], "parameters": raw["parameters"],
            "parameter_schema": raw["parameter_openapi_schema"], "tags": raw["tags"],
            "description": raw["description"], "entrypoint": raw["entrypoint"], "pull_steps": raw["pull_steps"],
            "concurrency_limit": limit, "paused": raw["paused"], "version": raw["version"]}


def _automation(raw: dict) -> dict:
    return json.loads(json.dumps(models.automation_shape(raw), sort_keys=True))


@pytest.mark.parametrize("source,manifest", [(EXAMPLES, "flows.yaml"), (FIXTURES, "valid-full.yaml")],
                         ids=["example", "valid-full"])
def test_render_equals_what_deploy_registers(prefect_server, tmp_path, source, manifest):
    path = _copy(source, tmp_path, manifest)
    loaded = load_manifest(path)
    assert not loaded.errors(), loaded.problems
    settings = Settings.from_environ({"PREFECT_API_URL": prefect_server.api_url})
    api = Api(prefect_server.api_url)
    # each pool from the pinned Prefect's template of its type, whichever release the server runs (3.4's own
    # kubernetes template has no cpu or memory variables)
    pools = {d.work_pool: d.work_pool_type for environment in loaded.environments
             for d in loaded.deployments(environment)}
    with Server(connection_from_environment(settings.environ)) as server:
        have = server.work_pools(list(pools))
    for name, kind in sorted(pools.items()):
        if name not in have:
            api.create_pool(name, kind, worker_templates()[base_type(kind)])
    for environment in loaded.environments:
        rendered = render(loaded, environment, settings=settings)
        code = run(DeployOptions(manifest=str(path), environment=environment, overrides=Overrides(),
                                 image=offline(loaded, environment)), settings, choose("json", settings))
        assert code == 0
        on_server = api.deployments(f"project:{loaded.project}", f"environment:{environment}")
        assert sorted(on_server) == sorted(d["name"] for d in rendered["deployments"])
        for want in rendered["deployments"]:
            raw = on_server[want["name"]]
            have = _server_fields(raw)
            assert {k: want[k] for k in have} == have, want["name"]
            schedules = [models.registered_schedule(s) for s in raw["schedules"]]
            assert len(schedules) == len(want["schedules"])
            assert all(any(models.schedule_matches(w, h) for h in schedules) for w in want["schedules"])
            # read as flow-register reads them: a field an older server does not know reads as its default
            automations = [_automation(models.registered_automation(a)) for a in api.automations_of(raw["id"])]
            assert sorted(map(json.dumps, automations)) == \
                sorted(json.dumps(_automation(t), sort_keys=True) for t in want["triggers"]), want["name"]
