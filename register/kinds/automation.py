"""A deployment's triggers, registered as automations that run it: read in bulk, compared, written, deleted.

They belong to their deployment: each automation names it by id (its run-deployment action and its owner
resource), so they are read with the deployments (register/kinds/deployment.py), compared as the
deployment's `triggers` field, written after the deployment in the same action (a new one's id is known
only then) and deleted before it. One set per deployment, replaced only when it changed, keeps the plan's
figures per deployment: a trigger's change is an update of its deployment.
"""

from __future__ import annotations

import json

from register.prefect import models
from register.engine.desired import State, automation_body
from register.engine.kind import Change
from register.server import Server


def deployments_run(raw: dict) -> set[str]:
    """The deployments an automation runs (the 'run this deployment' actions deploy triggers make)."""
    return {str(a["deployment_id"]) for a in raw.get("actions") or []
            if a.get("type") == "run-deployment" and a.get("source") == "selected" and a.get("deployment_id")}


def by_deployment(automations: list[dict]) -> dict[str, list[dict]]:
    """The automations (as /automations/filter returns them) by the id of each deployment they run."""
    found: dict[str, list[dict]] = {}
    for automation in automations:
        for deployment_id in deployments_run(automation):
            found.setdefault(deployment_id, []).append(automation)
    return found


def fingerprints(automations: list[dict]) -> list[str | None]:
    """The fingerprint tag of each registered automation (None: made without flow-register)."""
    return [next((t for t in a.get("tags") or [] if t.startswith(models.FINGERPRINT_TAG)), None)
            for a in automations]


def _canonical(value) -> str:
    return json.dumps(value, sort_keys=True)


def _without_tags(automation: dict) -> dict:
    return {k: v for k, v in automation.items() if k != "tags"}


def compare(want: State, have: State) -> Change | None:
    """None when the server's automations are the manifest's triggers. Equal fingerprints say so without
    Prefect's models; otherwise both sides are shaped by them and compared (tags aside: automations that
    `prefect deploy` made are the same triggers without flow-register's tags)."""
    if sorted(want.fields["triggers"]) == sorted(f or "" for f in have.fields["triggers"]) and \
            _as_tagged(want, have):
        return None
    after = [t.automation for t in want.triggers or []]
    before = [models.registered_automation(a) for a in have.automations or []]
    if sorted(_canonical(_without_tags(a)) for a in after) == sorted(_canonical(_without_tags(b)) for b in before):
        return None
    return Change("triggers", before, after)


def _as_tagged(want: State, have: State) -> bool:
    """Whether each registered automation still does what its fingerprint tag says: a tag is server-held
    text, and a server user can edit an automation (switch it off, run another deployment, listen for other
    events, other parameters) and keep its tag. Any doubt here only sends the triggers to the full comparison
    through Prefect's models, never to a false change."""
    by_fingerprint = {t.fingerprint: t for t in want.triggers or []}
    for raw in have.automations or []:
        tag = next((t for t in raw.get("tags") or [] if t.startswith(models.FINGERPRINT_TAG)), None)
        trigger = by_fingerprint.get(tag)
        if trigger is None:
            return False
        spec = models.plain(trigger.spec)
        body = raw.get("trigger") or {}
        actions = raw.get("actions") or []
        if raw.get("enabled", True) != spec.get("enabled", True) or \
                raw.get("name") != spec.get("name", f"{trigger.deployment}__automation_{trigger.index}") or \
                body.get("type") != spec.get("type") or \
                (raw.get("description") or "") != (spec.get("description") or "") or \
                sorted(body.get("expect") or []) != sorted(spec.get("expect") or []) or \
                raw.get("actions_on_trigger") or raw.get("actions_on_resolve") or len(actions) != 1:
            return False
        action = actions[0]
        if action.get("type") != "run-deployment" or str(action.get("deployment_id")) != str(have.id) or \
                (action.get("parameters") or {}) != (spec.get("parameters") or {}) or \
                (action.get("job_variables") or {}) != (spec.get("job_variables") or {}):
            return False
    return True


def write(server: Server, want: State, have: State | None, deployment_id: str, name: str) -> None:
    """Replace the deployment's automations with the manifest's triggers."""
    # The old triggers are deleted by their ids, never "all the deployment's": a delete whose answer was
    # lost may still reach the server after the new ones exist, and must not take them with it; and on
    # Prefect Cloud a deployment's SLAs are owned by it too (prefect.deployment.<id>), so "all the
    # deployment's" would take its SLAs. Those `prefect deploy` made, of a deployment taken over, were found
    # by their names with the others.
    for automation in (have.automations or []) if have is not None else []:
        server.delete_automation(str(automation["id"]), name)
    for trigger in want.triggers:
        server.create_automation(automation_body(trigger.automation, deployment_id), name)


def delete(server: Server, deployment_id: str, name: str) -> None:
    """Every automation the deployment owns, before the deployment goes."""
    server.delete_owned_automations(deployment_id, name)
