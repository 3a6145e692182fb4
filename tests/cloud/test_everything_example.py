"""examples/everything end to end, as its team runs it: a copy of the example (names of the test's own) deployed
with the CLI through the Cloud STAND-IN (tests/support/cloud.py: Cloud's webhooks API in memory, the rest passed
on to the session's real open-source server), the work pool made by the test as the platform team would
("provisioned elsewhere"), the image taken as already in the registry (support.registration.fake_registry: the
image is not the point here).

What issue 20 promises, checked on what the server holds and what the user reads:
- one `deploy` registers every kind the example declares: deployments, their automations, variables, blocks (a
  secret one among them), webhooks;
- a re-run writes nothing;
- a change of the secret's environment value is planned as "secret changed", and neither value appears in the
  output, the errors, the JSON, the step summary, the action's outputs or anything readable on the server;
- a hand edit of one thing of each kind (a deployment's parameters, an automation, a variable's value, a block's
  non-secret field, a webhook's template), and of the secret, is drift in the next plan (the secret's as "secret
  changed", the hand-typed value shown nowhere), and the next deploy puts it back.
"""

from __future__ import annotations

import json
import shutil
import subprocess
from pathlib import Path

import httpx
import pytest

from support.cloud import CloudStandIn
from support.registration import CLI, Api, Result, client_env, fake_registry, unique

pytestmark = pytest.mark.integration

EXAMPLE = Path(__file__).resolve().parents[2] / "examples" / "everything"
OWNER = "managed-by:flow-register"
OLD_TOKEN = "xoxb-1111-old-slack-token-e2e"
NEW_TOKEN = "xoxb-2222-new-slack-token-e2e"
HAND_TOKEN = "xoxb-3333-typed-in-the-ui-e2e"
KINDS = ("deployments", "variables", "blocks", "webhooks")


class Team:
    """The example's repository, copied, with the names of this test; the CLI run in it as the team runs it."""

    def __init__(self, tmp_path: Path, registry: str, cloud: CloudStandIn):
        self.root = tmp_path / "payments"
        shutil.copytree(EXAMPLE, self.root, ignore=shutil.ignore_patterns(".github"))
        self.project, self.pool, suffix = unique("payments"), unique("dev-docker"), unique("t").replace("-", "_")
        self.api_url_var, self.reconcile_var = f"payments_api_url_{suffix}", f"payments_reconcile_{suffix}"
        self.token_block, self.exports_block = f"slack-{self.project}", f"exports-{self.project}"
        text = (self.root / "flows.yaml").read_text()
        for old, new in (("project: payments", f"project: {self.project}"), ("dev-docker", self.pool),
                         ("localhost:5000/payments", f"{registry}/payments"),
                         ("payments_api_url", self.api_url_var), ("payments_reconcile", self.reconcile_var),
                         ("payments-slack-token", self.token_block),
                         ("name: payments-exports", f"name: {self.exports_block}")):
            assert old in text, old
            text = text.replace(old, new)
        (self.root / "flows.yaml").write_text(text)
        self.cloud = cloud
        self.token = OLD_TOKEN

    def run(self, command: str, *args: str, output: str = "json", github: bool = False) -> Result:
        extra = {"PREFECT_API_KEY": self.cloud.api_key, "PREFECT_API_REQUEST_TIMEOUT": "10",
                 "SLACK_TOKEN": self.token}
        if github:  # the files GitHub Actions gives a step: the summary and the outputs are added to them
            for name in ("GITHUB_STEP_SUMMARY", "GITHUB_OUTPUT"):
                extra[name] = str(self.root.parent / name.lower())
                Path(extra[name]).touch()
        build = ("--build", "never") if command == "deploy" else ()
        args = (command, "-e", "dev", "--output", output, *build, *args)
        done = subprocess.run([CLI, *args], cwd=self.root, capture_output=True, text=True, timeout=300,
                              env=client_env(self.cloud.api_url, self.root.parent / "home", **extra))
        return Result(done.returncode, done.stdout, done.stderr)

    def github_files(self) -> str:
        return "".join((self.root.parent / name).read_text() for name in ("github_step_summary", "github_output"))


def actions(report: dict) -> dict[str, dict[str, str]]:
    """Each kind's actions in a JSON report: {kind: {name: action}}."""
    return {kind: {a["name"]: a["action"] for a in report.get(kind, [])} for kind in KINDS}


def by_name(report: dict, kind: str) -> dict[str, dict]:
    return {a["name"]: a for a in report[kind]}


class Server:
    """What the workspace holds, read (and edited by hand, as in the UI) directly, not through flow-register."""

    def __init__(self, api: Api, cloud: CloudStandIn, team: Team):
        self.api, self.team = api, team
        self.cloud_http = httpx.Client(base_url=cloud.api_url + "/", timeout=10,
                                       headers={"Authorization": f"Bearer {cloud.api_key}"})

    def deployments(self) -> dict[str, dict]:
        return self.api.deployments(OWNER, f"project:{self.team.project}", "environment:dev")

    def variables(self) -> dict[str, object]:
        owned = {"all_": [OWNER, f"project:{self.team.project}"]}
        found = self.api.post("/variables/filter", {"variables": {"tags": owned}})
        return {v["name"]: v["value"] for v in found}

    def block(self, slug: str, name: str) -> dict:
        found = self.api.http.get(f"/block_types/slug/{slug}/block_documents/name/{name}",
                                  params={"include_secrets": "true"})
        found.raise_for_status()
        return found.json()

    def webhooks(self) -> dict[str, dict]:
        found = self.cloud_http.post("webhooks/filter", json={})
        found.raise_for_status()
        return {w["name"]: w for w in found.json()}

    def everything_readable(self) -> str:
        """All a workspace member reads without asking for secrets: variables, deployments, automations, blocks
        (as the UI shows them), webhooks."""
        return json.dumps([self.api.post("/variables/filter"), self.api.post("/deployments/filter"),
                           self.api.post("/automations/filter"), self.api.post("/block_documents/filter"),
                           list(self.webhooks().values())])


def test_the_everything_example_end_to_end_on_cloud(tmp_path, api, prefect_server):
    with fake_registry() as (registry, _), CloudStandIn(prefect_server.api_url, plan="pro") as cloud:
        team = Team(tmp_path, registry, cloud)
        api.create_pool(team.pool, "docker")  # the platform team's: provisioned elsewhere, named in flows.yaml
        server = Server(api, cloud, team)
        blocks = {f"secret/{team.token_block}": "create", f"s3-bucket/{team.exports_block}": "create"}

        # -- the first deploy registers every kind the example declares ----------------------------------------
        first = team.run("deploy")
        assert first.code == 0, first
        assert actions(first.json) == {
            "deployments": {"record-payment": "create", "reconcile": "create"},
            "variables": {team.api_url_var: "create", team.reconcile_var: "create"},
            "blocks": blocks,
            "webhooks": {"stripe-payments": "create", "bank-export": "create"}}, first

        deployments = server.deployments()
        assert set(deployments) == {"record-payment", "reconcile"}
        assert deployments["record-payment"]["work_pool_name"] == team.pool
        assert deployments["record-payment"]["job_variables"]["env"] == {
            "PAYMENTS_API": f"{{{{ prefect.variables.{team.api_url_var} }}}}"}
        assert deployments["reconcile"]["parameters"] == {"tolerance_cents": 100}
        events = {"record-payment": "stripe.payment.succeeded", "reconcile": "bank.export.finished"}
        for name, event in events.items():
            automations = api.automations_of(deployments[name]["id"])
            assert [a["trigger"]["expect"] for a in automations] == [[event]], automations
            assert [a["enabled"] for a in automations] == [True]
        assert server.variables() == {
            team.api_url_var: "https://payments.dev.example.com",
            team.reconcile_var: {"tolerance_cents": 100, "currencies": ["EUR", "USD"]}}
        assert server.block("secret", team.token_block)["data"] == {"value": OLD_TOKEN}
        exports = server.block("s3-bucket", team.exports_block)
        assert exports["data"] == {"bucket_name": "acme-payments-exports-dev", "bucket_folder": "bank"}, exports
        hooks = server.webhooks()
        assert {n: h["enabled"] for n, h in hooks.items()} == {"stripe-payments": False, "bank-export": True}
        assert {w["name"]: w["url"] for w in first.json["webhooks"]} == {
            n: f"{cloud.url}/hooks/{h['slug']}" for n, h in hooks.items()}

        # -- a re-run writes nothing ---------------------------------------------------------------------------
        again = team.run("deploy")
        assert again.code == 0, again
        assert again.json["requests"]["writes"] == 0, again
        assert {kind: set(names.values()) for kind, names in actions(again.json).items()} == \
               {kind: {"unchanged"} for kind in KINDS}, again
        assert again.json["summary"] == {"create": 0, "update": 0, "unchanged": 8, "delete": 0}

        # -- the secret changes in the environment: planned as "secret changed", its values nowhere ------------
        team.token = NEW_TOKEN
        # the pull request's plan: JSON on stdout, and the step summary (the comment's text) and the action's outputs
        planned = team.run("plan", "--detailed-exitcode", github=True)
        assert planned.code == 2, planned
        token = by_name(planned.json, "blocks")[f"secret/{team.token_block}"]
        assert token["action"] == "update" and token["changes"] == ["value"], token
        assert token["diff"] == {"value": {"from": "(secret)", "to": "(secret changed)"}} and not token["drift"]
        assert {kind: set(names.values()) for kind, names in actions(planned.json).items()} == {
            "deployments": {"unchanged"}, "variables": {"unchanged"}, "webhooks": {"unchanged"},
            "blocks": {"update", "unchanged"}}
        assert "value: secret changed" in (tmp_path / "github_step_summary").read_text()
        applied = team.run("deploy")
        assert applied.code == 0, applied
        assert [(a["action"], a["name"]) for a in applied.json["applied"]] == [
            ("updated", f"secret/{team.token_block}")]
        assert server.block("secret", team.token_block)["data"] == {"value": NEW_TOKEN}
        printed = "".join(r.out + r.err for r in (first, again, planned, applied)) + team.github_files()
        for value in (OLD_TOKEN, NEW_TOKEN):
            assert value not in printed and value not in server.everything_readable()

        # -- a hand edit of one thing of each kind is drift, and the next deploy puts it back -------------------
        record = deployments["record-payment"]
        api.http.patch(f"/deployments/{deployments['reconcile']['id']}",
                       json={"parameters": {"tolerance_cents": 5}}).raise_for_status()
        automation = api.automations_of(record["id"])[0]
        api.http.patch(f"/automations/{automation['id']}", json={"enabled": False}).raise_for_status()
        api.http.patch(f"/variables/name/{team.api_url_var}",
                       json={"value": "https://by-hand.example.com"}).raise_for_status()
        api.http.patch(f"/block_documents/{exports['id']}",
                       json={"data": {"bucket_name": "acme-payments-exports-dev", "bucket_folder": "by-hand"},
                             "merge_existing_data": False}).raise_for_status()
        api.http.patch(f"/block_documents/{server.block('secret', team.token_block)['id']}",
                       json={"data": {"value": HAND_TOKEN}, "merge_existing_data": False}).raise_for_status()
        server.cloud_http.patch(f"webhooks/{hooks['bank-export']['id']}", json={
            "template": '{"event": "by.hand", "resource": {"prefect.resource.id": "x"}}'}).raise_for_status()

        drifted = team.run("plan", "--detailed-exitcode")
        assert drifted.code == 2, drifted
        edited = {"deployments": ("reconcile", ["parameters"]), "variables": (team.api_url_var, ["value"]),
                  "blocks": (f"s3-bucket/{team.exports_block}", ["bucket_folder"]),
                  "webhooks": ("bank-export", ["template"])}
        for kind, (name, changes) in edited.items():
            action = by_name(drifted.json, kind)[name]
            assert (action["action"], action["changes"], action["drift"]) == ("update", changes, True), (kind, action)
            assert any(note.startswith("drift: ") for note in action["notes"]), (kind, action)
        by_automation = by_name(drifted.json, "deployments")["record-payment"]
        assert (by_automation["action"], by_automation["changes"], by_automation["drift"]) == \
               ("update", ["triggers"], True), by_automation
        token = by_name(drifted.json, "blocks")[f"secret/{team.token_block}"]
        assert (token["action"], token["diff"], token["drift"]) == (
            "update", {"value": {"from": "(secret)", "to": "(secret changed)"}}, True), token
        assert drifted.json["summary"]["update"] == 6, drifted.json["summary"]
        assert HAND_TOKEN not in drifted.out + drifted.err and NEW_TOKEN not in drifted.out + drifted.err

        back = team.run("deploy")
        assert back.code == 0, back
        assert HAND_TOKEN not in back.out + back.err and NEW_TOKEN not in back.out + back.err
        assert sorted(a["name"] for a in back.json["applied"]) == sorted(
            ["reconcile", "record-payment", team.api_url_var, f"s3-bucket/{team.exports_block}",
             f"secret/{team.token_block}", "bank-export"])
        assert server.block("secret", team.token_block)["data"] == {"value": NEW_TOKEN}
        assert server.deployments()["reconcile"]["parameters"] == {"tolerance_cents": 100}
        assert [a["enabled"] for a in api.automations_of(record["id"])] == [True]
        assert server.variables()[team.api_url_var] == "https://payments.dev.example.com"
        assert server.block("s3-bucket", team.exports_block)["data"]["bucket_folder"] == "bank"
        assert '"bank.export.finished"' in server.webhooks()["bank-export"]["template"]
        assert server.webhooks()["bank-export"]["slug"] == hooks["bank-export"]["slug"]  # the sender's URL still works

        settled = team.run("deploy")
        assert settled.code == 0, settled
        assert settled.json["requests"]["writes"] == 0, settled
