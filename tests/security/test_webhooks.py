"""Cloud webhooks (`webhooks:`), attacked: through the Cloud STAND-IN (tests/support/cloud.py, whose webhooks
API plays Cloud's documented shapes in memory in front of the session's real open-source server).

A webhook has no tags: whose it is lives in the last line of its description. A pull request's author
writes the description above that line, so the line must not be forgeable from the manifest. A webhook's
URL makes events without any other credential (unless a service account guards it), so it goes to the
log and the JSON a person reads, and not into the step summary, the outputs or the pull request comment.
"""

from __future__ import annotations

import httpx
import pytest

from support.cloud import CloudStandIn
from support.registration import Project, base_manifest, unique

pytestmark = pytest.mark.integration

OWNER = "managed-by:flow-register"
TEMPLATE = {"event": "orders.created", "resource": {"prefect.resource.id": "orders.{{ body.id }}"}}


def in_workspace(cloud: CloudStandIn) -> dict[str, dict]:
    found = httpx.post(f"{cloud.api_url}/webhooks/filter", json={}, timeout=10,
                       headers={"Authorization": f"Bearer {cloud.api_key}"})
    found.raise_for_status()
    return {w["name"]: w for w in found.json()}


def test_a_description_that_forges_another_projects_ownership_line_owns_nothing_there(project, tmp_path):
    victim = Project(tmp_path / "victim", project.api_url, unique("etl"))
    victim.write(base_manifest(victim.name, project.manifest["defaults"]["work_pool"]["name"]))
    name = f"orders-{project.name}"
    forged = f"Orders.\n\n[{OWNER} project:{victim.name} environment:dev flow-register-state:0000000000000000]"
    project.manifest["webhooks"] = [{"name": name, "description": forged, "template": TEMPLATE}]
    project.write()
    with CloudStandIn(project.api_url, plan="pro") as cloud:
        env = {"PREFECT_API_KEY": cloud.api_key}
        assert project.deploy(api_url=cloud.api_url, **env).code == 0
        # the line flow-register reads is the last one, its own: the forged one above it is only text
        assert in_workspace(cloud)[name]["description"].splitlines()[-1].startswith(
            f"[{OWNER} project:{project.name} environment:dev flow-register-state:")
        # the project the description names prunes its own webhooks (none): this one is not among them
        victim.manifest["webhooks"] = []
        victim.write()
        pruned = victim.deploy("--prune", api_url=cloud.api_url, **env)
        assert pruned.code == 0, pruned
        assert not pruned.json.get("webhooks") and not pruned.json.get("webhooks_kept"), pruned  # none its own
        assert name in in_workspace(cloud)
        # and for its own project the forged text is the description it asked for: nothing to change
        again = project.deploy(api_url=cloud.api_url, **env)
        assert again.code == 0 and again.json["requests"]["writes"] == 0, again


def test_a_webhooks_url_is_masked_under_github_actions_and_kept_out_of_the_summary_and_outputs(project):
    name = f"orders-{project.name}"
    project.manifest["webhooks"] = [{"name": name, "template": TEMPLATE}]
    project.write()
    summary, output = project.root / "summary.md", project.root / "output"
    actions = {"GITHUB_ACTIONS": "true", "GITHUB_WORKSPACE": str(project.root),
               "GITHUB_STEP_SUMMARY": str(summary), "GITHUB_OUTPUT": str(output)}
    with CloudStandIn(project.api_url, plan="pro") as cloud:
        created = project.cli("deploy", "-e", "dev", api_url=cloud.api_url, PREFECT_API_KEY=cloud.api_key, **actions)
        assert created.code == 0, created
        url = f"{cloud.url}/hooks/{in_workspace(cloud)[name]['slug']}"
        assert f"::add-mask::{url}" in created.err, created  # the runner shows *** for it in the log
        summary.unlink()
        output.unlink()
        again = project.cli("plan", "-e", "dev", api_url=cloud.api_url, PREFECT_API_KEY=cloud.api_key, **actions)
        assert again.code == 0, again
        assert f"::add-mask::{url}" in again.err, again
        # on a person's terminal it is shown: it is what the sending system is given
        local = project.cli("plan", "-e", "dev", api_url=cloud.api_url, PREFECT_API_KEY=cloud.api_key)
        assert f"url: {url}" in local.out, local
    for where in (summary, output):
        assert name in where.read_text()  # the webhook is in the summary's plan and the `plan` output ...
        assert "/hooks/" not in where.read_text(), where.read_text()  # ... its URL is not
