"""The plan and what was applied: a table for people, JSON for machines, outputs and a step summary
for GitHub. Reporters format; they never decide and never call the server."""

from __future__ import annotations

import json
import urllib.parse
from dataclasses import dataclass, field

from register.engine.applier import ApplyResult
from register.engine.kind import Change
from register.engine.planner import Action, Plan
from register.kinds import KINDS
from register.report import github

PAST = {"create": "created", "update": "updated", "delete": "deleted", "unchanged": "unchanged"}


@dataclass
class Outcome:
    """Everything a report shows: the plan, what was applied (None in a dry run) and how it went."""

    plan: Plan
    server: str
    image: object = None  # register.image.Image, or None without an image
    result: ApplyResult | None = None
    dry_run: bool = False
    reads: int = 0
    writes: int = 0
    retries: int = 0
    busy_window: int | None = None  # when the server answered busy: the fewest requests then let in flight
    budget: float | None = None  # requests a minute the run kept to (register/server/budget.py); None: none
    refused: int = 0  # answers 429 (a rate limit)
    lowered_to: float | None = None  # the lowest budget the 429s taught
    seconds: float = 0.0
    image_how: str | None = None  # says how the image was made, when the image stage was not asked to
    smoke: list = field(default_factory=list)  # register.commands.smoke.SmokeRun of each smoke run, after applying
    uploads: list = field(default_factory=list)  # register.code.upload.Upload: code in object storage

    def deployment_id(self, action: Action) -> str | None:
        if self.result is not None:
            return self.result.ids.get((action.flow, action.name), action.id)
        return action.id

    def applied(self, action: Action) -> bool:
        if self.result is None:
            return False
        # things of other kinds are found by name alone (flow ""): a variable and a webhook may share one
        return any((s.resource, s.flow, s.name) == (action.resource, action.flow, action.name)
                   for s in self.result.applied)


# -- values, short ------------------------------------------------------------------------------------

def _short(value, width: int = 60) -> str:
    text = json.dumps(value, sort_keys=True) if not isinstance(value, str) else repr(value)
    return text if len(text) <= width else text[: width - 3] + "..."


def _describe_schedule(s: dict) -> str:
    body = s.get("schedule") or {}
    if "cron" in body:
        what = f"cron '{body['cron']}'"
    elif "interval" in body:
        what = f"every {body['interval']:g}s"
    else:
        what = f"rrule '{body.get('rrule', '?')}'"
    if body.get("timezone"):
        what += f" {body['timezone']}"
    if not s.get("active", True):
        what += " (inactive)"
    return what


MAX_DIFF_LINES = 40


def _text_diff(name: str, before: str, after: str) -> list[str]:
    """A change of text of several lines (a webhook's template) as the lines removed (-) and added (+), with
    one line of context around each; at most MAX_DIFF_LINES of them."""
    import difflib

    lines = [line.rstrip("\n") for line in difflib.unified_diff(before.splitlines(), after.splitlines(), n=1,
                                                                  lineterm="")][2:]  # no ---/+++ header
    hunk = lambda line: f"{name}, from line {line.split('+')[1].split(',')[0].split()[0]}:"  # noqa: E731
    shown = [hunk(line) if line.startswith("@@") else f"  {line}" for line in lines]
    if len(shown) > MAX_DIFF_LINES:
        shown = shown[:MAX_DIFF_LINES] + [f"  ... {len(shown) - MAX_DIFF_LINES} more lines of the diff"]
    return shown or [f"{name} changed only in its line endings"]


def change_lines(change: Change) -> list[str]:
    """What changed in one field, as short lines: keys of mappings, items of lists, scalars."""
    before, after = github.redacted(change.before), github.redacted(change.after)  # before a cut can split one
    name = change.field
    if getattr(change, "secret", False):  # register/kinds/block.py: never a value, never a digest of one
        return [f"{name}: secret changed"]
    if name == "parameter_schema":
        return ["parameter_schema: the flow's parameters changed in source"]
    if name == "schedules":
        return [f"schedules: {', '.join(map(_describe_schedule, before)) or 'none'} -> "
                f"{', '.join(map(_describe_schedule, after)) or 'none'}"]
    if name == "triggers":
        names = lambda items: ", ".join(t.get("name", "?") for t in items) or "none"  # noqa: E731
        if names(before) == names(after):
            return [f"triggers: {names(after)} changed"]
        return [f"triggers: {names(before)} -> {names(after)}"]
    if isinstance(before, str) and isinstance(after, str) and "\n" in before + after:
        return _text_diff(name, before, after)
    if name == "tags":
        added = [t for t in after if t not in before]
        removed = [t for t in before if t not in after]
        return [f"tags: {' '.join(['+' + t for t in added] + ['-' + t for t in removed])}"]
    if isinstance(before, dict) and isinstance(after, dict):
        lines = []
        for key in sorted(set(before) | set(after), key=str):
            if key not in before:
                lines.append(f"{name}.{key}: (unset) -> {_short(after[key])}")
            elif key not in after:
                lines.append(f"{name}.{key}: {_short(before[key])} -> (unset)")
            elif json.dumps(before[key], sort_keys=True) != json.dumps(after[key], sort_keys=True):
                lines.append(f"{name}.{key}: {_short(before[key])} -> {_short(after[key])}")
        return lines or [f"{name} changed"]
    return [f"{name}: {_short(before)} -> {_short(after)}"]


# -- text ---------------------------------------------------------------------------------------------

def _image_line(outcome: Outcome) -> str | None:
    image = outcome.image
    if image is None or not getattr(image, "reference", None):
        return None
    if outcome.image_how:
        how = outcome.image_how
    elif image.built:
        how = "built and pushed" if image.pushed else "built, not pushed"
    elif image.pushed:
        how = "pushed"
    else:
        how = "not built: dry run" if outcome.dry_run else "already in the registry"
    why = getattr(image, "why", None)  # why the registry's image was reused, or built anyway
    return f"Image: {image.reference} ({how})" + (f"\n  {why}" if why and not outcome.image_how else "")


def text(outcome: Outcome) -> str:
    return table(outcome) + "\n\n" + summary_line(outcome)


def step_line(step) -> str:
    """One write as it happens."""
    if step.resource != "deployment":
        link = f": {github.visible(step.link)}" if step.link else ""
        return f"  {step.action} {step.resource} {github.visible(step.name)}{link}"
    return f"  {step.action} {github.visible(step.name)} ({step.id})"


def other_kinds(plan: Plan) -> list:
    """The kinds besides deployments that this plan has something of (register/kinds/), in dependency order."""
    return [kind for kind in KINDS.values() if plan.of(kind.name) or plan.kept_other.get(kind.plural)]


def _rows(rows: list[tuple], details: dict[int, list[str]]) -> list[str]:
    """Aligned columns, the last one left ragged, with each row's detail lines under it."""
    widths = [max(len(row[i]) for row in rows) for i in range(len(rows[0]) - 1)]
    lines = []
    for index, row in enumerate(rows):
        lines.append(("  " + "  ".join(cell.ljust(widths[i]) for i, cell in enumerate(row[:-1])) + "  " +
                      row[-1]).rstrip())
        for line in details.get(index, []):
            lines.append(" " * (4 + widths[0]) + line)
    return lines


def link(action: Action) -> str | None:
    """Where people reach the thing (a webhook's URL: Cloud gives it when it creates one)."""
    return next((i.link for i in (action.desired, action.registered) if getattr(i, "link", None)), None)


def _details(action: Action) -> list[str]:
    return [github.visible(line) for line in [line for change in action.changes for line in change_lines(change)]
            + action.notes]


def _sentence(text: str) -> str:
    return text[:1].upper() + text[1:]


def table(outcome: Outcome) -> str:
    """The header and one row per deployment, with what changed under each update."""
    plan = outcome.plan
    lines = [f"Plan for project '{github.visible(plan.project)}', environment '{github.visible(plan.environment)}', "
             f"on {outcome.server}"]
    image = _image_line(outcome)
    if image:
        lines.append(image)
    lines += [github.visible(u.line(outcome.dry_run)) for u in outcome.uploads]
    lines.append("")
    # Each kind a table of its own, the things a deployment names first, as they are written.
    for kind in other_kinds(plan):
        rows = [("ACTION", kind.name.upper(), "CHANGES")]
        details = {}
        for action in plan.of(kind.name):
            rows.append((action.kind, github.visible(action.name), ", ".join(action.changed)))
            # the URL in the terminal and the JSON, not in Markdown: a summary or a comment travels further
            if extra := ([f"url: {github.visible(url)}"] if (url := link(action)) else []) + _details(action):
                details[len(rows) - 1] = extra
        lines += _rows(rows, details) if len(rows) > 1 else [f"  (no {kind.plural})"]
        if kept := plan.kept_other.get(kind.plural):
            lines += [f"  {kind.plural.capitalize()} {plan.kept_because}, kept: "
                      f"{', '.join(github.visible(i.name) for i in kept)}; --prune deletes them"]
        lines.append("")
    deployments = plan.of("deployment")
    rows = [("ACTION", "DEPLOYMENT", "FLOW", "WORK POOL", "CHANGES")]
    details: dict[int, list[str]] = {}
    for action in deployments:
        state = action.desired or action.registered
        rows.append((action.kind, github.visible(action.name), github.visible(action.flow),
                     github.visible(state.fields.get("work_pool") or ""), ", ".join(action.changed)))
        if extra := _details(action):
            details[len(rows) - 1] = extra
    lines += _rows(rows, details)
    if not deployments:
        lines.append("  (no deployments)")
    if plan.kept:
        names = ", ".join(f"{github.visible(s.name)} (flow {github.visible(s.flow)})" for s in plan.kept)
        lines += ["", f"{_sentence(plan.kept_because)}, kept: {names}; --prune deletes them"]
    return "\n".join(lines)


def summary_line(outcome: Outcome) -> str:
    plan = outcome.plan
    requests = f"{outcome.reads + outcome.writes} request{'s' * (outcome.reads + outcome.writes != 1)}: " \
               f"{outcome.reads} read{'s' * (outcome.reads != 1)}, {outcome.writes} write{'s' * (outcome.writes != 1)}"
    if outcome.busy_window is not None:
        # SQLite takes one write at a time: a few busy answers are normal there, and cost little.
        requests += f", {outcome.retries} sent again when the server was busy, down to {outcome.busy_window} at once"
    if outcome.refused:
        requests += f", {outcome.refused} refused by the rate limit (429), budget lowered to " \
                    f"{outcome.lowered_to:.0f} a minute"
    counts = (f"{plan.count('create')} to create, {plan.count('update')} to update, "
              f"{plan.count('unchanged')} unchanged, {plan.count('delete')} to delete")
    if outcome.dry_run:
        return f"Plan: {counts}. Dry run: nothing was written ({requests})."
    result = outcome.result
    if result is None or not plan.changes_anything:
        return f"Nothing to change: {plan.count('unchanged')} unchanged, no write made ({requests})."
    done = {kind: sum(s.action == kind for s in result.applied) for kind in ("created", "updated", "deleted")}
    applied = f"{done['created']} created, {done['updated']} updated, {done['deleted']} deleted"
    if result.ok:
        return f"Applied: {applied}, {plan.count('unchanged')} unchanged ({requests}, {outcome.seconds:.1f}s)."
    return f"Failed after: {applied}."


def smoke_lines(outcome: Outcome) -> list[str]:
    """Each smoke run: its deployment, its final state, the link to the run."""
    lines = []
    for run in outcome.smoke:
        state = run.state_name or run.state or "not started"
        why = f": {run.message}" if run.message and not run.ok else ""
        lines.append(f"Smoke run of {run.deployment}: {state}{why} ({run.url})")
    failed = sum(not run.ok for run in outcome.smoke)
    if failed:
        lines.append(f"{failed} of {len(outcome.smoke)} smoke run{'s' * (len(outcome.smoke) != 1)} did not complete: "
                     "the deployments are registered, but do not run as they should")
    return lines


def failure_text(outcome: Outcome) -> str:
    """What a failed apply did and did not do; printed to stderr."""
    result = outcome.result
    what = lambda thing: "" if thing == "deployment" else thing + " "  # noqa: E731
    applied = ", ".join(f"{s.action} {what(s.resource)}'{s.name}'" for s in result.applied) or "nothing"
    rest = ", ".join(f"{a.kind} {what(a.resource)}'{a.name}'" for a in result.not_attempted) or "nothing"
    return "\n".join([
        f"flow-register: error: {result.error}",
        f"Applied before the failure: {applied}.",
        f"Failed: {result.failed.kind} {what(result.failed.resource)}'{result.failed.name}'. Not attempted: {rest}.",
        "Run the same command again to finish: every write sets a whole state, so a new run converges.",
    ])


# -- JSON ---------------------------------------------------------------------------------------------

def deployments_list(outcome: Outcome) -> list[dict]:
    return [{"name": a.name, "flow": a.flow, "id": outcome.deployment_id(a), "action": a.kind}
            for a in outcome.plan.of("deployment")]


def as_json(outcome: Outcome) -> dict:
    plan = outcome.plan
    image = outcome.image
    out = {
        "project": plan.project,
        "environment": plan.environment,
        "server": outcome.server,
        "dry_run": outcome.dry_run,
        "image": None if image is None or not getattr(image, "reference", None) else {
            "reference": image.reference, "content_tag": image.content_tag, "built": image.built,
            "pushed": image.pushed, "why": getattr(image, "why", None),
            # every repository the image is in (image.repositories) -> what runs from it
            **({"references": image.references} if len(getattr(image, "references", None) or {}) > 1 else {})},
        "deployments": [{
            "name": a.name,
            "flow": a.flow,
            "id": outcome.deployment_id(a),
            "action": a.kind,
            "applied": outcome.applied(a),
            "work_pool": (a.desired or a.registered).fields.get("work_pool"),
            "changes": a.changed,
            "diff": {c.field: {"from": c.before, "to": c.after} for c in a.changes},
            **({"notes": a.notes} if a.notes else {}),
            "drift": a.drift,
        } for a in plan.of("deployment")],
        "kept": [{"name": s.name, "flow": s.flow, "id": s.id} for s in plan.kept],
        "summary": {"create": plan.count("create"), "update": plan.count("update"),
                    "unchanged": plan.count("unchanged"), "delete": plan.count("delete")},
        "requests": {"reads": outcome.reads, "writes": outcome.writes, "retries": outcome.retries,
                     "busy_window": outcome.busy_window, "per_minute": outcome.budget, "refused": outcome.refused,
                     "lowered_to": outcome.lowered_to},
    }
    for kind in other_kinds(plan):  # e.g. "variables": [...], "variables_kept": [...]
        out[kind.plural] = [{
            "name": a.name, "id": a.id, "action": a.kind, "applied": outcome.applied(a), "changes": a.changed,
            "diff": {c.field: {"from": c.before, "to": c.after} for c in a.changes},
            **({"notes": a.notes} if a.notes else {}), "drift": a.drift,
            **({"url": link(a)} if link(a) else {})} for a in plan.of(kind.name)]
        out[f"{kind.plural}_kept"] = [{"name": i.name, "id": i.id} for i in plan.kept_other.get(kind.plural, [])]
    if outcome.uploads:
        out["code"] = [u.as_dict() for u in outcome.uploads]
    if outcome.smoke:
        out["smoke"] = [run.as_dict() for run in outcome.smoke]
    result = outcome.result
    if result is not None:
        out["applied"] = [{"action": s.action, "name": s.name, "flow": s.flow, "id": s.id,
                           **({"kind": s.resource} if s.resource != "deployment" else {})} for s in result.applied]
        # not_attempted: names, as before; not_attempted_items says each one's kind (a variable and a webhook
        # may share a name)
        out["failed"] = None if result.ok else {
            "action": result.failed.kind, "name": result.failed.name, "flow": result.failed.flow,
            **({"kind": result.failed.resource} if result.failed.resource != "deployment" else {}),
            "error": result.error, "not_attempted": [a.name for a in result.not_attempted],
            "not_attempted_items": [{"kind": a.resource, "name": a.name, **({"flow": a.flow} if a.flow else {})}
                                    for a in result.not_attempted]}
    return out


# -- GitHub -------------------------------------------------------------------------------------------

def github_outputs(outcome: Outcome) -> dict[str, str]:
    """The action's outputs. created/updated/unchanged/deleted are counts; `deployments` names them."""
    plan = outcome.plan
    image = outcome.image
    # The counts are of deployments, as action.yml says; `changes` is of every kind.
    planned = lambda kind: sum(a.kind == kind for a in plan.of("deployment"))  # noqa: E731
    done = planned
    if outcome.result is not None and not outcome.result.ok:
        applied = [s for s in outcome.result.applied if s.resource == "deployment"]
        done = lambda kind: sum(s.action == PAST[kind] for s in applied) if kind != "unchanged" \
            else planned("unchanged")  # noqa: E731
    return {
        "image": github.redact(getattr(image, "reference", None) or ""),
        # the image in each repository of image.repositories, default's included: {repository: reference}
        "images": json.dumps(github.redacted(getattr(image, "references", None) or {}), separators=(",", ":")),
        # redacted before it is JSON: a secret with a quote or a backslash is escaped in the JSON text
        "plan": json.dumps(github.redacted(as_json(outcome)), separators=(",", ":")),
        "deployments": json.dumps(github.redacted(deployments_list(outcome)), separators=(",", ":")),
        "created": str(done("create")),
        "updated": str(done("update")),
        "unchanged": str(done("unchanged")),
        "deleted": str(done("delete")),
        "changes": str(plan.changes_anything).lower(),
    }


def markdown(outcome: Outcome) -> str:
    """The plan for the step summary and the pull request comment. Every text that came from the manifest
    or a server (names, flows, pools, tags, values, errors) is a code span (github.code): no Markdown, HTML,
    mention or link of its own, one line, masked values redacted; only what this function writes is
    Markdown."""
    plan = outcome.plan
    title = "Plan" if outcome.dry_run else "Deploy"
    lines = [f"### flow-register {title.lower()}: {github.code(plan.project)} → {github.code(plan.environment)}", ""]
    image = getattr(outcome.image, "reference", None)
    if image:
        lines += [f"Image: {github.code(image)}", ""]
    for u in outcome.uploads:
        lines += [github.code(u.line(outcome.dry_run)), ""]
    for kind in other_kinds(plan):
        lines += [f"| Action | {kind.name.capitalize()} | Changes |", "|---|---|---|"]
        for a in plan.of(kind.name):
            changes = "<br>".join(github.code(line, cell=True) for line in
                                  [line for c in a.changes for line in change_lines(c)] + a.notes)
            lines.append(f"| {a.kind} | {github.code(a.name, cell=True)} | {changes} |")
        if kept := plan.kept_other.get(kind.plural):
            lines += ["", f"{kind.plural.capitalize()} {plan.kept_because}, kept (`prune` deletes them): " +
                      ", ".join(github.code(i.name) for i in kept)]
        lines.append("")
    lines += ["| Action | Deployment | Flow | Work pool | Changes |", "|---|---|---|---|---|"]
    for a in plan.of("deployment"):
        changes = "<br>".join(github.code(line, cell=True) for line in
                              [line for c in a.changes for line in change_lines(c)] + a.notes)
        pool = (a.desired or a.registered).fields.get("work_pool")
        lines.append(f"| {a.kind} | {github.code(a.name, cell=True)} | {github.code(a.flow, cell=True)} "
                     f"| {github.code(pool or '', cell=True)} | {changes} |")
    if plan.kept:
        lines += ["", f"{_sentence(plan.kept_because)}, kept (`prune` deletes them): " +
                  ", ".join(github.code(s.name) for s in plan.kept)]
    lines += ["", summary_line(outcome)]
    if outcome.smoke:
        lines += ["", "| Smoke run | State | Flow run |", "|---|---|---|"]
        for run in outcome.smoke:
            state = run.state_name or run.state or "not started"
            if run.message and not run.ok:
                state += ": " + " ".join(str(run.message).split())[:300]
            name = github.code(run.flow_run_name or run.flow_run_id, cell=True)
            link = f"[{name}]({urllib.parse.quote(github.redact(run.url), safe=':/?#=&%~.-_')})" if run.url else name
            lines.append(f"| {github.code(run.deployment, cell=True)} | {'✅' if run.ok else '❌'} "
                         f"{github.code(state, cell=True)} | {link} |")
    if outcome.result is not None and not outcome.result.ok:
        lines += ["", "**Failed:** " + github.code(outcome.result.error)]
    return "\n".join(lines)


def write_github(outcome: Outcome) -> None:
    """Outputs and the step summary, when GitHub Actions provides the files (no-ops elsewhere)."""
    github.set_outputs(github_outputs(outcome))
    github.add_summary(markdown(outcome))
