"""Deploy history: what each deploy registered, kept on the Prefect server, so `rollback` can put it back.

Each deploy that writes something records one Prefect artifact under one key per project and environment
(`flow-register-<project>-<environment>-<hash>`); the server keeps every artifact of a key as a version,
on the open-source server and on Cloud alike (Cloud's own deployment versions hold one deployment's fields
only, not its triggers or the variables, and the open-source server has none). A record holds the desired
state flow-register applied: each deployment's fields, trigger specs and version info, the variables, the
image, the commit, who and when. Only the newest `KEEP` records are kept (older ones are deleted when a new
one is written) and a record is at most `MAX_BYTES` of JSON, so the history stays bounded.

A server user can write artifacts, so a record is untrusted data: `read` checks it as strictly as a
manifest (its shape, sizes and kinds of values; the ownership tags; only pull steps flow-register writes;
triggers through Prefect's models; an image only as a digest of the environment's registry) and refuses
the whole record with the reason, before anything is written.
"""

from __future__ import annotations

import datetime
import hashlib
import json
import re
from dataclasses import dataclass, field

from register.prefect import fields as deployment_fields
from register.prefect import models
from register.engine.desired import FIELDS, State, Trigger
from register.engine.kind import Item
from register.problems import Invalid, Problem

FORMAT = 1
KEEP = 20  # records kept per project and environment
MAX_BYTES = 1 << 20  # one record, as JSON: far below Cloud's 5 MiB body limit
MAX_DEPLOYMENTS = 2000
MAX_VARIABLES = 2000
ARTIFACT_TYPE = "flow-register-history"
DIGEST = re.compile(r"sha256:[0-9a-f]{64}")
# The pull steps flow-register writes (register/code/__init__.py); a record naming any other step is refused.
PULL_STEPS = {"prefect.deployments.steps.set_working_directory", "prefect.deployments.steps.git_clone",
              "prefect.deployments.steps.pip_install_requirements", "prefect.deployments.steps.run_shell_script",
              "prefect_aws.deployments.steps.pull_from_s3", "prefect_gcp.deployments.steps.pull_from_gcs"}
SHELL_SCRIPTS = {"pip install ."}  # the one script flow-register's run_shell_script step runs
RULE = "history"


def key(project: str, environment: str) -> str:
    """The artifact key of a project's environment: readable, and distinct for every pair (a project
    'a-b' in 'c' and 'a' in 'b-c' read alike, the hash tells them apart)."""
    digest = hashlib.sha256(f"{project}\0{environment}".encode()).hexdigest()[:8]
    return f"flow-register-{project}-{environment}-{digest}"


@dataclass
class Entry:
    """One deploy as recorded, checked."""

    revision: int
    at: str
    commit: str | None
    by: str | None
    image: str | None
    deployments: list[State]
    variables: list[Item] | None  # None: the deploy managed no variables
    rolled_back_to: int | None = None
    id: str | None = None  # the artifact's id
    run_url: str | None = None
    keys: set = field(default_factory=set)

    def line(self) -> str:
        what = f"rollback to revision {self.rolled_back_to}" if self.rolled_back_to else "deploy"
        return (f"revision {self.revision}: {self.at} {what}, commit {self.commit[:12] if self.commit else '-'}, "
                f"by {self.by or '-'}, image {self.image or '-'}, {len(self.deployments)} deployment"
                f"{'s' * (len(self.deployments) != 1)}")


# -- writing -----------------------------------------------------------------------------------------

def _deployment(state: State) -> dict:
    return {"flow": state.flow, "name": state.name, "manifest_name": state.manifest_name,
            "fields": {k: v for k, v in state.fields.items() if k != "triggers"},
            "triggers": [models.plain(t.spec) for t in state.triggers or []],
            "version_info": state.version_info, "schema_label": state.schema_label}


def record_body(project: str, environment: str, *, revision: int, deployments: list[State],
                variables: list[Item] | None, image: str | None, commit: str | None, by: str | None,
                run_url: str | None, rolled_back_to: int | None = None) -> dict | None:
    """The artifact of one deploy, or None when it would be larger than a record may be."""
    data = {"format": FORMAT, "project": project, "environment": environment, "revision": revision,
            "at": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
            "commit": commit, "by": by, "run_url": run_url, "image": image, "rolled_back_to": rolled_back_to,
            "deployments": [_deployment(s) for s in deployments],
            "variables": None if variables is None else [{"name": i.name, "fields": i.fields} for i in variables]}
    if len(json.dumps(data)) > MAX_BYTES:
        return None
    return {"key": key(project, environment), "type": ARTIFACT_TYPE, "data": data,
            "description": f"flow-register: revision {revision} of project `{project}` in `{environment}`"}


def raw_records(server, project: str, environment: str, limit: int = KEEP) -> list[dict]:
    """The newest `limit` artifacts of the history, newest first, as the server holds them."""
    found = server.request("POST", "/artifacts/filter", json={
        "artifacts": {"key": {"any_": [key(project, environment)]}}, "sort": "CREATED_DESC", "limit": limit},
        doing="reading the deploy history")
    if not isinstance(found, list):
        return []
    return [a for a in found[:limit] if isinstance(a, dict)]


def write(server, body: dict, *, older: list[dict]) -> None:
    """Write a record; delete what falls beyond the newest KEEP (`older`: the records read before, newest first)."""
    def made_already():  # an attempt whose answer was lost may have written it: not a second record
        found = raw_records(server, body["data"]["project"], body["data"]["environment"], 3)
        return next((a for a in found if a.get("data") == body["data"]), None)

    server.request("POST", "/artifacts/", json=body, doing="recording the deploy in its history", recover=made_already)
    for old in older[KEEP - 1:]:
        if isinstance(old.get("id"), str):
            try:
                server.request("DELETE", f"/artifacts/{old['id']}", doing="trimming the deploy history")
            except Exception:  # noqa: BLE001 (a record left over is harmless; the next deploy trims again)
                pass


def next_revision(older: list[dict]) -> int:
    revisions = [r for a in older if isinstance(a.get("data"), dict)
                 and isinstance(r := a["data"].get("revision"), int) and not isinstance(r, bool) and 0 < r < 10**9]
    return max(revisions, default=0) + 1


# -- reading, as untrusted data -----------------------------------------------------------------------

class _Bad(Exception):
    pass


def _need(ok: bool, where: str, what: str) -> None:
    if not ok:
        raise _Bad(f"{where} {what}")


def _text(value, where: str, *, empty: bool = False, limit: int = 1000, none: bool = False, lines: bool = False):
    if value is None and none:
        return None
    printable = isinstance(value, str) and (value.replace("\n", "").replace("\t", "") if lines else value).isprintable()
    _need(printable and (empty or value) and len(value) <= limit, where,
          f"is not {'text' if lines else 'a line of text'} of at most {limit} characters")
    return value


def _json(value, where: str, kind: type | tuple, *, none: bool = False):
    if value is None and none:
        return None
    _need(isinstance(value, kind), where, f"is not {'an object' if kind is dict else 'a list'}")
    return value


def _number(value, where: str, *, none: bool = True):
    if value is None and none:
        return None
    _need(isinstance(value, int) and not isinstance(value, bool) and 0 <= value <= 2**31, where,
          "is not a whole number from 0 to 2^31")
    return value


def _only(value: dict, allowed: set, where: str) -> None:
    extra = sorted(set(value) - allowed)
    _need(not extra, where, f"has keys flow-register does not write: {', '.join(map(str, extra[:5]))}")


# The fields a record holds are the plan's (desired.FIELDS, triggers apart). Those of version 1 must be
# there; one added later (register/prefect/fields.py) may be missing from a record written before it, and reads as
# unset there.
FIELD_NAMES = set(FIELDS) - {"triggers"}
LATER_FIELDS = FIELD_NAMES - deployment_fields.VERSION_1
MAX_SLAS = 50


def _image_allowed(image, registry: str | None, also: set[str], where: str) -> None:
    if image is None or image in also:
        return
    if isinstance(image, str) and registry and image.startswith(registry + "@") and \
            DIGEST.fullmatch(image[len(registry) + 1:]):
        return
    allowed = f"'{registry}@sha256:<digest>'" if registry else "no image (the environment has no image)"
    raise _Bad(f"{where} is {_show(image)}: a rollback registers only {allowed}, the environment's registry in the "
               "manifest, pinned by digest")


def _show(value) -> str:
    text = json.dumps(value)
    return "'" + (text[:80] + "...' " if len(text) > 80 else text + "'")


def _pull_steps(steps, where: str) -> None:
    if steps is None:
        return
    _json(steps, where, list)
    _need(len(steps) <= 10, where, "has more than 10 steps")
    for i, step in enumerate(steps):
        at = f"{where}[{i}]"
        _json(step, at, dict)
        _need(len(step) == 1, at, "is not one step")
        (name, inputs), = step.items()
        _need(name in PULL_STEPS, at, f"is the step {_show(name)}, which flow-register never writes")
        _json(inputs, f"{at}.{name}", dict)
        for k, v in inputs.items():
            _need(isinstance(v, (str, bool)) and (not isinstance(v, str) or len(v) <= 2000 and v.isprintable()),
                  f"{at}.{name}.{k}", "is not text")
        if name.endswith("run_shell_script"):
            _need(inputs.get("script") in SHELL_SCRIPTS, f"{at}.{name}.script",
                  f"is {_show(inputs.get('script'))}, not a script flow-register writes")


def _fields(fields, where: str, owner: list[str], registry: str | None, images: set[str],
            by_pool: dict[str, str]) -> dict:
    _json(fields, where, dict)
    _need(FIELD_NAMES - LATER_FIELDS <= set(fields) <= FIELD_NAMES, where,
          "does not have exactly the fields of a deployment")
    fields = {**{name: deployment_fields.BY_NAME[name].unset for name in LATER_FIELDS}, **fields}
    _text(fields["work_pool"], f"{where}.work_pool", limit=200)
    _text(fields["work_queue"], f"{where}.work_queue", limit=200)
    for name in ("job_variables", "parameters"):
        _json(fields[name], f"{where}.{name}", dict)
    _json(fields["parameter_schema"], f"{where}.parameter_schema", dict, none=True)
    # a pool with a repository of its own (image.repositories) runs that repository's digest
    _image_allowed(fields["job_variables"].get("image"), by_pool.get(fields["work_pool"], registry), images,
                   f"{where}.job_variables.image")
    tags = _json(fields["tags"], f"{where}.tags", list)
    _need(len(tags) <= 100 and all(isinstance(t, str) and 0 < len(t) <= 200 and t.isprintable() for t in tags),
          f"{where}.tags", "are not up to 100 short texts")
    _need(set(owner) <= set(tags), f"{where}.tags", f"lack this environment's ownership tags ({', '.join(owner)})")
    _text(fields["description"], f"{where}.description", none=True, limit=10000, empty=True, lines=True)
    _text(fields["entrypoint"], f"{where}.entrypoint", limit=1000)
    _need(":" in fields["entrypoint"] and ".." not in fields["entrypoint"].split(":")[0].split("/") and
          not fields["entrypoint"].startswith("/"), f"{where}.entrypoint", "is not a path:function inside the code")
    _pull_steps(fields["pull_steps"], f"{where}.pull_steps")
    _number(fields["concurrency_limit"], f"{where}.concurrency_limit")
    options = _json(fields["concurrency_options"], f"{where}.concurrency_options", dict, none=True)
    if options:
        _only(options, {"collision_strategy", "grace_period_seconds"}, f"{where}.concurrency_options")
        _need(options.get("collision_strategy") in (None, "ENQUEUE", "CANCEL_NEW"),
              f"{where}.concurrency_options.collision_strategy", "is not ENQUEUE or CANCEL_NEW")
        _number(options.get("grace_period_seconds"), f"{where}.concurrency_options.grace_period_seconds")
    _need(isinstance(fields["enforce_parameter_schema"], bool), f"{where}.enforce_parameter_schema",
          "is not true/false")
    _need(fields["paused"] is None or isinstance(fields["paused"], bool), f"{where}.paused", "is not true/false")
    _text(fields["version"], f"{where}.version", none=True, limit=200)
    schedules = _json(fields["schedules"], f"{where}.schedules", list)
    _need(len(schedules) <= 100, f"{where}.schedules", "are more than 100")
    for i, s in enumerate(schedules):
        at = f"{where}.schedules[{i}]"
        _json(s, at, dict)
        _only(s, {"schedule", "active", "parameters", "slug"}, at)
        body = _json(s.get("schedule"), f"{at}.schedule", dict)
        _only(body, {"cron", "interval", "rrule", "timezone", "day_or", "anchor_date"}, f"{at}.schedule")
        spec = {k: v for k, v in body.items() if k in ("cron", "interval", "rrule", "timezone")}
        _need(len({"cron", "interval", "rrule"} & set(spec)) == 1, f"{at}.schedule",
              "is not one cron, interval or rrule")
        if "interval" in spec:
            _need(isinstance(spec["interval"], (int, float)) and not isinstance(spec["interval"], bool)
                  and 0 < spec["interval"] <= 10**10, f"{at}.schedule.interval", "is not a number of seconds")
        else:
            _text(spec.get("cron") or spec.get("rrule"), f"{at}.schedule", limit=2000)
        problems = models.schedule_problems(spec)
        _need(not problems, f"{at}.schedule", "; ".join(m for _, m in problems))
        _need(s.get("active") in (None, True, False), f"{at}.active", "is not true/false")
        _json(s.get("parameters") or {}, f"{at}.parameters", dict)
        _text(s.get("slug"), f"{at}.slug", none=True, limit=200)
    _slas(fields["slas"], f"{where}.slas")
    return fields


def _slas(slas, where: str) -> None:
    """SLAs as flow-register sends them (fields.sla_body): named, of the SLA API's keys and kinds of value."""
    if slas is None:
        return
    _json(slas, where, list)
    _need(len(slas) <= MAX_SLAS, where, f"are more than {MAX_SLAS}")
    for i, sla in enumerate(slas):
        at = f"{where}[{i}]"
        _json(sla, at, dict)
        _only(sla, set(deployment_fields.SLA_KEYS), at)
        _text(sla.get("name"), f"{at}.name", limit=200)
        _need(sla.get("severity") in (None, "minor", "low", "moderate", "high", "critical"), f"{at}.severity",
              "is not minor, low, moderate, high or critical")
        _need(sla.get("enabled") in (None, True, False), f"{at}.enabled", "is not true/false")
        for name in ("duration", "stale_after", "within"):  # seconds (duration whole ones: the schema's)
            value = sla.get(name)
            _need(value is None or isinstance(value, (int, float)) and not isinstance(value, bool)
                  and 0 < value <= 10**10, f"{at}.{name}", "is not a number of seconds")
        _text(sla.get("expected_event"), f"{at}.expected_event", none=True, limit=1000)
        _json(sla.get("resource_match"), f"{at}.resource_match", dict, none=True)


def _deployments(raw, owner: list[str], registry: str | None, images: set[str],
                 by_pool: dict[str, str]) -> list[State]:
    _json(raw, "deployments", list)
    _need(len(raw) <= MAX_DEPLOYMENTS, "deployments", f"are more than {MAX_DEPLOYMENTS}")
    out, seen = [], set()
    for i, d in enumerate(raw):
        where = f"deployments[{i}]"
        _json(d, where, dict)
        _only(d, {"flow", "name", "manifest_name", "fields", "triggers", "version_info", "schema_label"}, where)
        flow, name = _text(d.get("flow"), f"{where}.flow", limit=200), _text(d.get("name"), f"{where}.name", limit=200)
        _need((flow, name) not in seen, where, f"repeats deployment '{name}' of flow '{flow}'")
        seen.add((flow, name))
        fields = dict(_fields(d.get("fields"), f"{where}.fields", owner, registry, images, by_pool))
        specs = _json(d.get("triggers"), f"{where}.triggers", list)
        _need(len(specs) <= 50, f"{where}.triggers", "are more than 50")
        triggers = []
        for n, spec in enumerate(specs, start=1):
            _json(spec, f"{where}.triggers[{n - 1}]", dict)
            trigger = Trigger(spec, name, n, tuple(owner))
            try:
                trigger.automation  # Prefect's models check it, as they check a manifest's
            except Exception as error:  # noqa: BLE001 (pydantic's and Prefect's errors alike)
                raise _Bad(f"{where}.triggers[{n - 1}] is not a trigger Prefect accepts: "
                           f"{' '.join(str(error).split())[:200]}") from None
            triggers.append(trigger)
        fields["triggers"] = [t.fingerprint for t in triggers]  # made here, never taken from the record
        info = _json(d.get("version_info"), f"{where}.version_info", dict, none=True)
        if info:
            for k, v in info.items():
                _text(v, f"{where}.version_info.{k}", limit=2000, empty=True)
        out.append(State(flow, name, fields, manifest_name=_text(d.get("manifest_name"), f"{where}.manifest_name",
                                                                 none=True, limit=200),
                         triggers=triggers, version_info=info,
                         schema_label=_text(d.get("schema_label"), f"{where}.schema_label", none=True, limit=200)))
    return out


def _variables(raw, owner: list[str]) -> list[Item] | None:
    if raw is None:
        return None
    _json(raw, "variables", list)
    _need(len(raw) <= MAX_VARIABLES, "variables", f"are more than {MAX_VARIABLES}")
    out = []
    for i, v in enumerate(raw):
        where = f"variables[{i}]"
        _json(v, where, dict)
        _only(v, {"name", "fields"}, where)
        name = _text(v.get("name"), f"{where}.name", limit=255)
        fields = _json(v.get("fields"), f"{where}.fields", dict)
        _only(fields, {"value", "tags"}, f"{where}.fields")
        tags = _json(fields.get("tags"), f"{where}.fields.tags", list)
        _need(set(owner) <= set(tags), f"{where}.fields.tags", "lack this environment's ownership tags")
        out.append(Item(name, {"value": fields.get("value"), "tags": sorted(set(tags))}, tags=list(tags), index=i))
    return out


def parse(raw: dict, project: str, environment: str, owner: list[str], registry: str | None,
          images: set[str], by_pool: dict[str, str] | None = None) -> Entry:
    """A record, checked: an Entry, or _Bad saying what in it flow-register would never have written."""
    data = _json(raw.get("data"), "the record", dict)
    _need(len(json.dumps(data)) <= MAX_BYTES, "the record", f"is larger than {MAX_BYTES} bytes")
    _only(data, {"format", "project", "environment", "revision", "at", "commit", "by", "run_url", "image",
                 "rolled_back_to", "deployments", "variables"}, "the record")
    _need(data.get("format") == FORMAT, "format", f"is not {FORMAT}")
    _need(data.get("project") == project and data.get("environment") == environment, "the record",
          f"is not of project '{project}' in environment '{environment}'")
    revision = _number(data.get("revision"), "revision", none=False)
    _need(revision > 0, "revision", "is not 1 or more")
    at = _text(data.get("at"), "at", limit=40)
    try:
        datetime.datetime.fromisoformat(at)
    except ValueError:
        raise _Bad(f"at is {_show(at)}, not a time") from None
    commit = _text(data.get("commit"), "commit", none=True, limit=64)
    _need(commit is None or re.fullmatch(r"[0-9a-f]{7,64}", commit), "commit", "is not a commit's hex id")
    image = data.get("image")
    _image_allowed(image, registry, images, "image")
    deployments = _deployments(data.get("deployments"), owner, registry, images, by_pool or {})
    return Entry(revision, at, commit, _text(data.get("by"), "by", none=True, limit=100),
                 image, deployments, _variables(data.get("variables"), owner),
                 rolled_back_to=_number(data.get("rolled_back_to"), "rolled_back_to"),
                 id=str(raw.get("id")), run_url=_text(data.get("run_url"), "run_url", none=True, limit=500),
                 keys={s.key for s in deployments})


def problem(raw: dict, why: str) -> Problem:
    where = f"deploy history (artifact {str(raw.get('id'))[:36]!s}, key {str(raw.get('key'))[:100]})"
    return Problem(where, 0, 0, f"this record is not one flow-register writes: {why}; it was written on the server "
                                "by someone else, so it is not rolled back to and nothing was written. Pick another "
                                "revision (rollback --list), or deploy the commit you want", RULE)


def check(raw: dict, project: str, environment: str, owner: list[str], registry: str | None,
          images: set[str], by_pool: dict[str, str] | None = None) -> Entry:
    """`parse`, with a record that fails refused as a Problem (Invalid: exit 1, nothing written). `registry`:
    the environment's image repository; `by_pool`: the repositories of pools that have their own."""
    try:
        return parse(raw, project, environment, owner, registry, images, by_pool)
    except _Bad as bad:
        raise Invalid([problem(raw, str(bad))]) from None
    except (TypeError, ValueError, AttributeError, KeyError, RecursionError) as error:
        raise Invalid([problem(raw, f"it cannot be read ({type(error).__name__})")]) from None


def carry(server, old: tuple[str, str], new: tuple[str, str], old_tags: list[str], new_tags: list[str],
          deployments: set, variables: set[str], records: list[dict]) -> int:
    """After `move`: the old name's records (`records`, newest first) written again as the new name's, so
    a rollback under the new name goes back to the deploys made under the old one. Each keeps its revision,
    time, commit and image, and holds only what moved (the `deployments` keys, the `variables` names), owned
    by the new name; the old name's records stay as they are. How many were written.

    The records are untrusted data here too; they are copied, not believed: a rollback checks each when it
    reads it, and a record without the old name's ownership tags keeps its tags (and is refused then)."""
    def retag(tags):
        if not isinstance(tags, list) or not set(old_tags) <= set(tags):
            return tags
        return [t for t in tags if t not in old_tags] + [t for t in new_tags if t not in tags or t in old_tags]

    written = 0
    for raw in reversed(records[:KEEP]):  # oldest first: the server lists a key's records by when written
        data = raw.get("data")
        if not isinstance(data, dict) or not isinstance(data.get("deployments"), list):
            continue
        moved = []
        for d in data["deployments"]:
            if isinstance(d, dict) and (d.get("flow"), d.get("name")) in deployments:
                fields = d.get("fields")
                moved.append({**d, "fields": {**fields, "tags": retag(fields.get("tags"))}}
                             if isinstance(fields, dict) else d)
        kept = data.get("variables")
        if isinstance(kept, list):
            kept = [{**v, "fields": {**v["fields"], "tags": retag(v["fields"].get("tags"))}}
                    if isinstance(v.get("fields"), dict) else v
                    for v in kept if isinstance(v, dict) and v.get("name") in variables]
        body = {"key": key(*new), "type": ARTIFACT_TYPE,
                "data": {**data, "project": new[0], "environment": new[1], "deployments": moved, "variables": kept},
                "description": f"flow-register: revision {revision_of(raw)} of project `{new[0]}` in `{new[1]}` "
                               f"(moved from project `{old[0]}` in `{old[1]}`)"}
        if len(json.dumps(body["data"])) > MAX_BYTES:
            continue
        write(server, body, older=[])
        written += 1
    return written


def revision_of(raw: dict) -> int | None:
    data = raw.get("data")
    revision = data.get("revision") if isinstance(data, dict) else None
    return revision if isinstance(revision, int) and not isinstance(revision, bool) else None


def who(environ) -> str | None:
    """Who deployed: the GitHub actor in Actions, else the local user."""
    return (environ.get("GITHUB_ACTOR") or environ.get("USER") or environ.get("USERNAME") or None)


def record(server, plan, *, image: str | None, everything: set, variables: bool, settings,
           rolled_back_to: int | None = None) -> int | None:
    """Record what `plan` registered (after it was applied) as the next revision; its number, or None when
    the record would be too large. Deployments an --only run left out keep what the last record had."""
    older = raw_records(server, plan.project, plan.environment, KEEP)
    desired = [a.desired for a in plan.of("deployment") if a.kind != "delete" and a.desired is not None]
    here = {s.key for s in desired}
    carried = []
    if older and isinstance(older[0].get("data"), dict) and isinstance(older[0]["data"].get("deployments"), list):
        carried = [d for d in older[0]["data"]["deployments"] if isinstance(d, dict)
                   and (d.get("flow"), d.get("name")) in everything - here]
    items = [a.desired for a in plan.actions if a.resource == "variable" and a.kind != "delete"] if variables else None
    commit = next((s.version_info.get("commit_sha") for s in desired if s.version_info), None) or settings.github.sha
    body = record_body(plan.project, plan.environment, revision=next_revision(older), deployments=desired,
                       variables=items, image=image, commit=commit, by=who(settings.environ),
                       run_url=settings.github.run_url, rolled_back_to=rolled_back_to)
    if body is None:
        return None
    body["data"]["deployments"] += carried
    write(server, body, older=older)
    return body["data"]["revision"]
