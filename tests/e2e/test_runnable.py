"""Registered means runnable, end to end: a real Docker engine and registry, a real Prefect server, and a
real Prefect Docker worker polling the pool.

- the image is read (never run) and checked against the deployments before any is written: an image whose
  WORKDIR is not where the manifest says the code is, is refused, and the server holds nothing new;
- smoke runs: after applying, the named deployments run once on the worker; a good image passes, a flow
  that raises fails the deploy with exit 6; the log and the step summary show each state and its link.

These tests never skip: without the services they fail, saying how to start them.
"""

from __future__ import annotations

import contextlib
import os
import re
import shutil
import signal
import subprocess
import sys
import uuid
from pathlib import Path

import pytest

from register.problems import Exit
from support.services import services_env
from support.worker import api, create_docker_pool

pytestmark = pytest.mark.e2e

EXAMPLES = Path(__file__).resolve().parents[2] / "examples"
BIN = Path(sys.executable).parent
POOL = "runnable-docker"
SUFFIX = uuid.uuid4().hex[:6]
PROJECT = f"runnable-{SUFFIX}"
BOOM = '''"""A flow that fails, as a broken change would."""

from prefect import flow


@flow
def boom() -> None:
    raise RuntimeError("the smoke run's flow raised")
'''


@pytest.fixture(scope="module")
def services() -> dict[str, str]:
    return services_env()


@pytest.fixture(scope="module")
def repository(services) -> str:
    # One repository for the module: the base image's layers are pushed once.
    return f"{services['REGISTRY']}/runnable-{SUFFIX}/flows"


def flows_repo(tmp_path: Path, repository: str) -> Path:
    """The example flows repository as its own project (names of its own on the shared server), in the
    module's pool, with a smoke run of ingest-forecast in dev."""
    root = tmp_path / "flows-repo"
    shutil.copytree(EXAMPLES, root, ignore=shutil.ignore_patterns("__pycache__", ".flow-register"))
    path = root / "flows.yaml"
    text = path.read_text().replace("localhost:5000/sales-etl", repository) \
        .replace("project: sales-etl", f"project: {PROJECT}") \
        .replace('name_template: "{name}"', 'name_template: "{name}-' + SUFFIX + '"') \
        .replace("work_pool: {name: dev-docker, type: docker}",
                 f"work_pool: {{name: {POOL}, type: docker}}\n"
                 "    smoke: [{deployment: ingest-forecast, parameters: {horizon_hours: 6}}]")
    path.write_text(text)
    return path


@pytest.fixture
def env(services, prefect_server, tmp_path) -> dict[str, str]:
    create_docker_pool(prefect_server, POOL)
    out = {**os.environ, "PREFECT_API_URL": prefect_server.api_url, "PREFECT_SERVER_EPHEMERAL_ENABLED": "false",
           "PREFECT_HOME": str(tmp_path / "prefect-home"), "DOCKER_HOST": services["DOCKER_HOST"],
           "DOCKER_CONFIG": str(tmp_path / "docker-config"), "GITHUB_STEP_SUMMARY": str(tmp_path / "summary.md")}
    for name in ("PREFECT_API_KEY", "REGISTRY_USERNAME", "REGISTRY_PASSWORD", "GITHUB_ACTIONS", "GITHUB_SHA",
                 "FLOW_REGISTER_BUILDER", "PREFECT_UI_URL"):
        out.pop(name, None)
    return out


@contextlib.contextmanager
def worker(env: dict, log: Path):
    """A real Prefect Docker worker polling the pool while the deploy runs."""
    with log.open("w") as out:
        process = subprocess.Popen(
            [str(BIN / "prefect"), "worker", "start", "--pool", POOL, "--type", "docker", "--limit", "2"],
            env={**env, "PREFECT_WORKER_QUERY_SECONDS": "1"}, stdout=out, stderr=subprocess.STDOUT,
            start_new_session=True)
        try:
            yield process
        finally:
            os.killpg(process.pid, signal.SIGTERM)
            try:
                process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                os.killpg(process.pid, signal.SIGKILL)
                process.wait()


def worker_log(tmp_path: Path) -> str:
    return (tmp_path / "worker.log").read_text()[-3000:]


def deploy(path: Path, env: dict, *args: str) -> subprocess.CompletedProcess:
    return subprocess.run([str(BIN / "flow-register"), "deploy", "-f", str(path), "--environment", "dev", *args],
                          capture_output=True, text=True, env=env, timeout=1200)


def project_deployments(server) -> list[dict]:
    return api(server, "POST", "/deployments/filter",
               json={"deployments": {"tags": {"all_": [f"project:{PROJECT}"]}}, "limit": 200})


def test_an_image_whose_workdir_is_not_the_manifests_is_refused_before_anything_is_written(
        env, prefect_server, repository, tmp_path):
    path = flows_repo(tmp_path, repository)
    dockerfile = path.parent / "Dockerfile"
    dockerfile.write_text(dockerfile.read_text().replace("WORKDIR /opt/prefect/sales-etl", "WORKDIR /code"))
    before = {d["id"] for d in project_deployments(prefect_server)}

    refused = deploy(path, env)
    shown = f"stdout:\n{refused.stdout}\nstderr:\n{refused.stderr}"
    assert refused.returncode == Exit.INVALID, shown
    entrypoint_line = next(i for i, line in enumerate(path.read_text().splitlines(), 1)
                           if "entrypoint: flows/sales.py:daily_sales" in line)
    # the file, the path in the image, and the fix, at the deployment's entrypoint
    assert re.search(rf"flows\.yaml:{entrypoint_line}:\d+: error: deployment 'daily-sales' runs flows/sales\.py "
                     r"from /opt/prefect/sales-etl .*has no file /opt/prefect/sales-etl/flows/sales\.py; the image "
                     r"has it at /code/flows/sales\.py: set image\.workdir: /code \[image-entrypoint\]",
                     refused.stderr), shown
    assert {d["id"] for d in project_deployments(prefect_server)} == before, "a deployment was written"
    assert "Smoke run" not in refused.stdout, shown

    # image.workdir left out: the Dockerfile's last WORKDIR, which is where the code is
    path.write_text(path.read_text().replace("  workdir: /opt/prefect/sales-etl\n", ""))
    fixed = deploy(path, env, "--only", "daily-sales")
    shown = f"stdout:\n{fixed.stdout}\nstderr:\n{fixed.stderr}"
    assert fixed.returncode == Exit.OK, shown
    registered = api(prefect_server, "GET", f"/deployments/name/daily-sales/daily-sales-{SUFFIX}")
    assert registered["pull_steps"] == [{"prefect.deployments.steps.set_working_directory": {"directory": "/code"}}]


def test_smoke_runs_pass_on_a_good_image_and_a_flow_that_raises_fails_the_deploy_with_exit_6(
        env, prefect_server, repository, tmp_path):
    path = flows_repo(tmp_path, repository)
    (path.parent / "flows" / "boom.py").write_text(BOOM)
    path.write_text(path.read_text().replace(
        "deployments:\n", "deployments:\n  - name: boom\n    entrypoint: flows/boom.py:boom\n", 1))
    summary = Path(env["GITHUB_STEP_SUMMARY"])

    with worker(env, tmp_path / "worker.log"):
        good = deploy(path, env)  # the manifest's smoke list: ingest-forecast, with a parameter
        shown = f"stdout:\n{good.stdout}\nstderr:\n{good.stderr}\nworker:\n{worker_log(tmp_path)}"
        assert good.returncode == Exit.OK, shown
        link = rf"{re.escape(prefect_server.api_url.removesuffix('/api'))}/runs/flow-run/([0-9a-f-]{{36}})"
        passed = re.search(rf"Smoke run of ingest-forecast-{SUFFIX}: Completed \({link}\)", good.stdout)
        assert passed, shown
        run = api(prefect_server, "GET", f"/flow_runs/{passed[1]}")
        assert run["parameters"]["horizon_hours"] == 6 and run["state"]["type"] == "COMPLETED"
        assert f"`ingest-forecast-{SUFFIX}` | ✅ `Completed`" in summary.read_text()

        summary.write_text("")
        failed = deploy(path, env, "--smoke", "boom", "--smoke-timeout", "300")
        shown = f"stdout:\n{failed.stdout}\nstderr:\n{failed.stderr}\nworker:\n{worker_log(tmp_path)}"
    assert failed.returncode == Exit.SMOKE_FAILED == 6, shown
    assert re.search(rf"Smoke run of boom-{SUFFIX}: Failed.*\({link}\)", failed.stdout), shown
    assert "1 of 1 smoke run did not complete" in failed.stdout, shown
    assert "Smoke run of ingest-forecast" not in failed.stdout, shown  # --smoke replaces the manifest's list
    assert f"`boom-{SUFFIX}` | ❌ `Failed" in summary.read_text()  # the state and its message, one code span
    # the deployments are registered: a smoke run proves them, it does not undo them
    assert api(prefect_server, "GET", f"/deployments/name/boom/boom-{SUFFIX}")["id"]


def test_a_smoke_run_of_a_deployment_the_environment_lacks_is_refused_before_anything_is_written(
        env, prefect_server, repository, tmp_path):
    path = flows_repo(tmp_path, repository)
    path.write_text(path.read_text().replace("deployment: ingest-forecast", "deployment: ingest-forcast"))
    before = {d["id"] for d in project_deployments(prefect_server)}
    result = deploy(path, env)
    assert result.returncode == Exit.INVALID, result.stderr
    assert re.search(r"flows\.yaml:\d+:\d+: error: no deployment 'ingest-forcast' to smoke-run in environment 'dev'; "
                     r"the deployments there are 'daily-sales', 'sales-backfill', 'ingest-forecast' or "
                     r"'weekly-report' \[smoke\]", result.stderr), result.stderr
    flag = deploy(flows_repo(tmp_path / "again", repository), env, "--smoke", "nope")
    assert flag.returncode == Exit.INVALID and "--smoke: error: no deployment 'nope'" in flag.stderr, flag.stderr
    assert {d["id"] for d in project_deployments(prefect_server)} == before
