"""examples/everything: one manifest that sets up everything a flows repository needs on the Prefect side
(deployments, the automations their triggers make, variables, blocks, Cloud webhooks), the work pools
aside. It
validates offline as it is, and a copy with names of the test's own plans and applies through the Cloud
STAND-IN (tests/support/cloud.py: its webhooks API in memory, the rest on the session's real open-source
server), then a re-run writes nothing."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest

from support.cloud import CloudStandIn
from support.registration import CLI, Result, client_env, fake_registry, unique

EXAMPLE = Path(__file__).resolve().parents[2] / "examples" / "everything"
OWNER = "managed-by:flow-register"


def cli(root: Path, api_url: str | None, *args: str, **extra: str) -> Result:
    done = subprocess.run([CLI, *args], cwd=root, capture_output=True, text=True, timeout=300,
                          env=client_env(api_url, root.parent / "home", **extra))
    return Result(done.returncode, done.stdout, done.stderr)


def test_the_example_validates_offline_as_it_is():
    checked = cli(EXAMPLE, None, "validate", SLACK_TOKEN="xoxb-test-token")
    assert checked.code == 0, checked
    assert "flows.yaml: valid (2 deployments; environments: dev, prod)" in checked.out, checked


def test_the_examples_workflow_passes_zizmor_as_the_teams_own_repository(tmp_path):
    repo = tmp_path / "payments"
    shutil.copytree(EXAMPLE, repo)
    commit = ["-c", "user.email=t@example.com", "-c", "user.name=t", "commit", "-qm", "init"]
    for args in (["init", "-q"], ["add", "-A"], commit):
        subprocess.run(["git", "-C", str(repo), *args], check=True, capture_output=True)
    audit = subprocess.run([str(Path(CLI).with_name("zizmor")), "--offline", "--format", "plain", "."], cwd=repo,
                           capture_output=True, text=True, timeout=300)
    assert audit.returncode == 0, audit.stdout + audit.stderr
    assert "completed ./.github/workflows/flows.yml" in audit.stderr, audit.stderr


@pytest.mark.integration
def test_the_example_plans_and_applies_on_cloud_and_a_rerun_writes_nothing(tmp_path, api, prefect_server):
    root = tmp_path / "repo"
    shutil.copytree(EXAMPLE, root, ignore=shutil.ignore_patterns(".github"))
    project, pool, suffix = unique("payments"), unique("dev-docker"), unique("t").replace("-", "_")
    api.create_pool(pool, "docker")
    with fake_registry() as (registry, _), CloudStandIn(prefect_server.api_url, plan="pro") as cloud:
        text = (root / "flows.yaml").read_text()
        for old, new in (("project: payments", f"project: {project}"), ("dev-docker", pool),
                         ("localhost:5000/payments", f"{registry}/payments"),
                         ("payments_api_url", f"payments_api_url_{suffix}"),
                         ("payments_reconcile", f"payments_reconcile_{suffix}"),
                         ("payments-slack-token", f"slack-{project}")):
            text = text.replace(old, new)
        (root / "flows.yaml").write_text(text)
        env = {"PREFECT_API_KEY": cloud.api_key, "PREFECT_API_REQUEST_TIMEOUT": "10", "SLACK_TOKEN": "xoxb-test-token"}

        planned = cli(root, cloud.api_url, "plan", "-e", "dev", "--output", "json", **env)
        assert planned.code == 0, planned
        assert {w["name"]: w["action"] for w in planned.json["webhooks"]} == {
            "stripe-payments": "create", "bank-export": "create"}
        assert {v["action"] for v in planned.json["variables"]} == {"create"} and len(planned.json["variables"]) == 2
        assert {b["name"]: b["action"] for b in planned.json["blocks"]} == {f"secret/slack-{project}": "create"}
        assert "xoxb-test-token" not in planned.out + planned.err
        assert {d["name"]: d["action"] for d in planned.json["deployments"]} == {
            "record-payment": "create", "reconcile": "create"}

        applied = cli(root, cloud.api_url, "deploy", "-e", "dev", "--build", "never", "--output", "json", **env)
        assert applied.code == 0, applied
        urls = {w["name"]: w["url"] for w in applied.json["webhooks"]}
        assert all(url.startswith(f"{cloud.url}/hooks/") for url in urls.values()), urls

        # what the workspace holds now: the webhooks (dev's Stripe one paused) ...
        hooks = {h["name"]: h for store in cloud.webhooks.values() for h in store.by_id.values()}
        assert {n: h["enabled"] for n, h in hooks.items()} == {"stripe-payments": False, "bank-export": True}
        assert {n: f"{cloud.url}/hooks/{h['slug']}" for n, h in hooks.items()} == urls
        # ... the variables the deployments' job variables name ...
        found = api.post("/variables/filter", {"variables": {"tags": {"all_": [OWNER, f"project:{project}"]}}})
        assert {v["name"]: v["value"] for v in found} == {
            f"payments_api_url_{suffix}": "https://payments.dev.example.com",
            f"payments_reconcile_{suffix}": {"tolerance_cents": 100, "currencies": ["EUR", "USD"]}}
        # ... and the deployments, each with the automation that the webhook's events start
        deployments = api.deployments(OWNER, f"project:{project}", "environment:dev")
        assert set(deployments) == {"record-payment", "reconcile"}
        expected = {"record-payment": "stripe.payment.succeeded", "reconcile": "bank.export.finished"}
        for name, event in expected.items():
            automations = api.automations_of(deployments[name]["id"])
            assert [a["trigger"]["expect"] for a in automations] == [[event]], automations
        assert deployments["record-payment"]["job_variables"]["env"] == {
            "PAYMENTS_API": f"{{{{ prefect.variables.payments_api_url_{suffix} }}}}"}

        again = cli(root, cloud.api_url, "deploy", "-e", "dev", "--build", "never", "--output", "json", **env)
        assert again.code == 0, again
        assert again.json["requests"]["writes"] == 0, again
        assert {w["action"] for w in again.json["webhooks"]} == {"unchanged"}
