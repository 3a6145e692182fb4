"""Apply a plan: write what changed, one request after another, and keep a record of what was written.

A deployment whose fields changed is written whole with one upsert (POST /deployments/: same flow and
name, same id), so what the server has afterwards is exactly the manifest's, whatever was there before.
Its triggers are automations owned by the deployment, replaced only when they changed. Writes are
sequential: against SQLite, concurrent writes were slower. The first failure stops the run; the result
lists what was applied, and since each write sets a whole state, running again converges.
"""

from __future__ import annotations

import copy
from dataclasses import dataclass, field
from typing import Callable

from register.plan import Action, Plan
from register.server import Server, ServerError


@dataclass
class Step:
    """One completed write, or the one that failed."""

    action: str  # created | updated | deleted
    flow: str
    name: str
    id: str | None = None


@dataclass
class ApplyResult:
    applied: list[Step] = field(default_factory=list)
    ids: dict[tuple[str, str], str] = field(default_factory=dict)  # (flow, name) -> deployment id
    failed: Action | None = None
    error: str | None = None
    not_attempted: list[Action] = field(default_factory=list)
    progress: Callable[[Step], None] | None = field(default=None, repr=False)

    def done(self, step: Step) -> None:
        self.applied.append(step)
        if self.progress:
            self.progress(step)

    @property
    def ok(self) -> bool:
        return self.failed is None


def deployment_payload(action: Action, flow_id: str) -> dict:
    f = action.desired.fields
    return {
        "name": action.name,
        "flow_id": flow_id,
        "work_pool_name": f["work_pool"],
        "work_queue_name": f["work_queue"],
        "job_variables": f["job_variables"],
        "parameters": f["parameters"],
        "parameter_openapi_schema": f["parameter_schema"],
        "schedules": f["schedules"],
        "tags": f["tags"],
        # sent as given: Prefect's DeploymentCreate would turn a missing description into the string "None"
        "description": f["description"],
        "entrypoint": f["entrypoint"],
        "pull_steps": f["pull_steps"],
        "concurrency_limit": f["concurrency_limit"],
        "paused": f["paused"],
        "version": f["version"],
    }


def automation_payload(automation: dict, deployment_id: str) -> dict:
    """A desired trigger (as plan.trigger shaped it) made into the automation the deployment owns."""
    body = copy.deepcopy(automation)  # the plan's desired state stays as it was
    for key in ("actions", "actions_on_trigger", "actions_on_resolve"):
        body[key] = [{**a, "deployment_id": deployment_id} if a.get("type") == "run-deployment"
                     and a.get("source") == "selected" else a for a in body.get(key) or []]
    body["owner_resource"] = f"prefect.deployment.{deployment_id}"
    return body


def apply(plan: Plan, server: Server, flow_ids: dict[str, str],
          progress: Callable[[Step], None] | None = None) -> ApplyResult:
    """Write `plan`'s creates, updates and deletes. `flow_ids` are the flows the server already has;
    `progress` hears of each write as it completes."""
    result = ApplyResult(progress=progress)
    flow_ids = dict(flow_ids)
    pending = [a for a in plan.actions if a.kind != "unchanged"]
    for position, action in enumerate(pending):
        try:
            _apply_one(action, server, flow_ids, result)
        except ServerError as error:
            result.failed = action
            result.error = str(error)
            result.not_attempted = pending[position + 1:]
            break
    for action in plan.actions:
        if action.kind == "unchanged":
            result.ids[(action.flow, action.name)] = action.id
    return result


def _apply_one(action: Action, server: Server, flow_ids: dict[str, str], result: ApplyResult) -> None:
    key = (action.flow, action.name)
    if action.kind == "delete":
        server.delete_owned_automations(action.id, action.name)
        server.delete_deployment(action.id, action.name)
        result.done(Step("deleted", action.flow, action.name, action.id))
        return
    deployment_id = action.id
    if action.writes_deployment:
        if action.flow not in flow_ids:
            flow_ids[action.flow] = server.create_flow(action.flow)
        deployment_id = server.upsert_deployment(deployment_payload(action, flow_ids[action.flow]))
        result.ids[key] = deployment_id
        result.done(Step("created" if action.kind == "create" else "updated", action.flow, action.name,
                                   deployment_id))
    result.ids[key] = deployment_id
    if action.writes_triggers:
        server.delete_owned_automations(deployment_id, action.name)
        for automation in action.desired.fields["triggers"]:
            server.create_automation(automation_payload(automation, deployment_id), action.name)
        if not action.writes_deployment:
            result.done(Step("updated", action.flow, action.name, deployment_id))
