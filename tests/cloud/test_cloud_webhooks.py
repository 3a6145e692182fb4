"""`webhooks:` in the manifest: Prefect Cloud webhooks planned and owned like deployments, against the Cloud
STAND-IN's webhooks API (tests/support/cloud.py: Cloud's documented request and response shapes, in memory,
in front of the session's real open-source server), and against that open-source server itself, which has
no webhooks.

What a user relies on: the webhook is created with its template and its URL is printed; a re-run writes
nothing; a template change is planned as a diff of its lines; a hand edit in Cloud shows as drift and is
put back; a webhook of the same name made by hand is refused before anything is written; --prune deletes
only this project's and environment's; an open-source server is told apart before any write.
"""

from __future__ import annotations

import re

import httpx
import pytest

from support.cloud import CloudStandIn
from support.registration import Project

pytestmark = pytest.mark.integration

FAST = {"PREFECT_API_REQUEST_TIMEOUT": "10", "FLOW_REGISTER_RETRY_SECONDS": "60"}
OWNER = "managed-by:flow-register"


def through(cloud: CloudStandIn, project: Project, *args: str, command: str = "deploy", output: str = "json"):
    env = {"PREFECT_API_KEY": cloud.api_key, **FAST}
    return project.cli(command, "-e", "dev", "--output", output, *args, api_url=cloud.api_url, **env)


class Workspace:
    """The workspace's webhooks through Cloud's API, as `prefect cloud webhook ...` or the UI change them."""

    def __init__(self, cloud: CloudStandIn):
        self.http = httpx.Client(base_url=cloud.api_url + "/", timeout=10,
                                 headers={"Authorization": f"Bearer {cloud.api_key}"})

    def all(self) -> dict[str, dict]:
        found = self.http.post("webhooks/filter", json={})
        found.raise_for_status()
        return {w["name"]: w for w in found.json()}

    def create(self, **body) -> dict:
        made = self.http.post("webhooks/", json=body)
        made.raise_for_status()
        return made.json()

    def patch(self, webhook_id: str, **body) -> None:
        self.http.patch(f"webhooks/{webhook_id}", json=body).raise_for_status()


def hooks_of(result) -> dict[str, dict]:
    return {w["name"]: w for w in result.json["webhooks"]}


STATIC = {"event": "stripe.payment.succeeded",
          "resource": {"prefect.resource.id": "stripe.payment.{{ body.id }}", "prefect.resource.name": "payment"}}
JINJA = '{\n  "event": "github.{{ headers["X-GitHub-Event"] }}",\n  "resource": {"prefect.resource.id": "github"}\n}\n'


def with_webhooks(project: Project) -> tuple[str, str]:
    stripe, github = f"stripe-{project.name}", f"github-{project.name}"
    project.manifest["webhooks"] = [
        {"name": stripe, "description": "Stripe's payment events", "template": STATIC},
        {"name": github, "template": JINJA, "paused": True},
    ]
    project.write()
    return stripe, github


def test_a_webhook_is_created_with_its_url_and_a_rerun_writes_nothing(project):
    stripe, github = with_webhooks(project)
    with CloudStandIn(project.api_url, plan="pro") as cloud:
        workspace = Workspace(cloud)
        created = through(cloud, project)
        assert created.code == 0, created
        hooks = workspace.all()
        assert {n: a["action"] for n, a in hooks_of(created).items()} == {stripe: "create", github: "create"}
        # the URL the sending system is given: Cloud's host, /hooks/, the slug Cloud chose
        for name in (stripe, github):
            assert hooks_of(created)[name]["url"] == f"{cloud.url}/hooks/{hooks[name]['slug']}", created
        assert hooks[stripe]["enabled"] is True and hooks[github]["enabled"] is False
        assert hooks[github]["template"] == JINJA
        assert re.fullmatch(r'\{\s*"event": "stripe.payment.succeeded",.*"stripe.payment.\{\{ body.id \}\}".*\}',
                            hooks[stripe]["template"], re.S), hooks[stripe]["template"]
        # whose it is, in the one place a webhook has for it
        assert re.fullmatch(rf"Stripe's payment events\n\n\[{OWNER} project:{project.name} environment:dev "
                            r"flow-register-state:[0-9a-f]{16}\]", hooks[stripe]["description"])

        again = through(cloud, project, output="text")
        assert again.code == 0, again
        assert re.search(rf"^  unchanged +{stripe}\s*\n +url: {cloud.url}/hooks/{hooks[stripe]['slug']}$",
                         again.out, re.M), again.out
        assert "Nothing to change: 4 unchanged, no write made" in again.out, again.out
        assert workspace.all() == hooks


def test_a_template_change_is_planned_as_a_diff_and_applied(project):
    stripe, _ = with_webhooks(project)
    with CloudStandIn(project.api_url, plan="pro") as cloud:
        assert through(cloud, project).code == 0
        project.manifest["webhooks"][0]["template"] = {**STATIC, "event": "stripe.charge.refunded"}
        project.write()
        planned = through(cloud, project, "--detailed-exitcode", command="plan", output="text")
        assert planned.code == 2, planned
        assert re.search(rf"^  update +{stripe} +template$", planned.out, re.M), planned.out
        assert '-  "event": "stripe.payment.succeeded",' in planned.out, planned.out
        assert '+  "event": "stripe.charge.refunded",' in planned.out, planned.out
        assert re.search(r'^ +template, from line 1:\n +\{\n +-  "event": "stripe.payment.succeeded",\n'
                         r' +\+  "event": "stripe.charge.refunded",\n +"resource": \{$', planned.out, re.M), planned.out
        assert '"stripe.payment.succeeded"' in Workspace(cloud).all()[stripe]["template"]  # a plan writes nothing

        updated = through(cloud, project)
        assert updated.code == 0, updated
        assert hooks_of(updated)[stripe]["action"] == "update" and not hooks_of(updated)[stripe]["drift"]
        assert '"stripe.charge.refunded"' in Workspace(cloud).all()[stripe]["template"]


def test_a_hand_edit_in_cloud_is_drift_and_is_put_back(project):
    stripe, github = with_webhooks(project)
    with CloudStandIn(project.api_url, plan="pro") as cloud:
        workspace = Workspace(cloud)
        assert through(cloud, project).code == 0
        hooks = workspace.all()
        # someone turns the paused one on (`prefect cloud webhook toggle`) and rewrites the other's template
        workspace.patch(hooks[github]["id"], enabled=True)
        workspace.patch(hooks[stripe]["id"], template='{"event": "by.hand", "resource": {"prefect.resource.id": "x"}}')

        drifted = through(cloud, project, command="plan")
        assert drifted.code == 0, drifted
        planned = hooks_of(drifted)
        assert planned[github]["drift"] is True and planned[github]["diff"] == {"paused": {"from": False, "to": True}}
        assert planned[stripe]["drift"] is True and planned[stripe]["changes"] == ["template"]
        assert any("drift" in note for note in planned[stripe]["notes"])

        assert through(cloud, project).code == 0
        back = workspace.all()
        assert back[github]["enabled"] is False
        assert '"stripe.payment.succeeded"' in back[stripe]["template"]
        assert back[stripe]["slug"] == hooks[stripe]["slug"]  # the same webhook: the sender's URL still works


def test_a_webhook_of_the_same_name_made_by_hand_is_refused_before_any_write(project, api):
    stripe, _ = with_webhooks(project)
    with CloudStandIn(project.api_url, plan="pro") as cloud:
        workspace = Workspace(cloud)
        theirs = workspace.create(name=stripe, description="made in the UI", template='{"event": "mine"}')
        refused = through(cloud, project, output="text")
        assert refused.code == 1, refused
        line = next(i for i, text in enumerate((project.root / "flows.yaml").read_text().splitlines(), 1)
                    if text.strip() == f"- name: {stripe}")
        assert (f"flows.yaml:{line}:9: error: webhook '{stripe}' on {cloud.api_url} was made outside flow-register "
                "(it lacks the tag managed-by:flow-register); flow-register does not overwrite it") in refused.err
        assert workspace.all() == {stripe: theirs}  # neither it nor the other webhook was written
        assert api.deployments(f"project:{project.name}") == {}


def test_prune_deletes_only_this_projects_webhooks(project):
    stripe, github = with_webhooks(project)
    with CloudStandIn(project.api_url, plan="pro") as cloud:
        workspace = Workspace(cloud)
        assert through(cloud, project).code == 0
        by_hand = workspace.create(name=f"ops-{project.name}", template='{"event": "ops"}')
        # the same project's prod environment (another workspace in practice; one here) keeps its own
        prod = workspace.create(name=f"prod-{project.name}", template='{"event": "prod"}',
                                description=f"[{OWNER} project:{project.name} environment:prod "
                                            "flow-register-state:0123456789abcdef]")
        project.manifest["webhooks"] = project.manifest["webhooks"][:1]
        project.write()

        kept = through(cloud, project, output="text")
        assert kept.code == 0, kept
        assert f"Webhooks no longer in the manifest, kept: {github}; --prune deletes them" in kept.out
        assert github in workspace.all()

        pruned = through(cloud, project, "--prune")
        assert pruned.code == 0, pruned
        assert hooks_of(pruned)[github]["action"] == "delete"
        assert set(workspace.all()) == {stripe, by_hand["name"], prod["name"]}

        project.manifest["webhooks"] = []
        project.write()
        emptied = through(cloud, project, "--prune")
        assert emptied.code == 0, emptied
        assert set(workspace.all()) == {by_hand["name"], prod["name"]}


def test_an_open_source_server_is_told_apart_at_the_webhooks_line_before_any_write(project, api):
    with_webhooks(project)
    refused = project.cli("deploy", "-e", "dev")
    assert refused.code == 1, refused
    line = (project.root / "flows.yaml").read_text().splitlines().index("webhooks:") + 1
    assert f"flows.yaml:{line}:1: error: webhooks need Prefect Cloud: {project.api_url} has no webhooks" \
           in refused.err, refused
    assert "[webhook-unavailable]" in refused.err
    assert api.deployments(f"project:{project.name}") == {}  # the deployments were not written either
