"""A deployment's desired state: exactly what will be registered, built in one place.

From the resolved manifest deployment, the facts of its work pool (from the server at plan time, from
the manifest's declared type offline) and the image, this builds the body `POST /deployments/` gets and
the automations its triggers become. `render`, `plan` and `deploy` all call `desired()`, so what
`render -e ENV` prints is what `deploy` sends to pools of the declared types.
"""

from __future__ import annotations

import copy
import re
import subprocess
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from functools import cached_property

from register import code

from register.prefect import models
from register.code import upload as code_upload
from register.prefect.resources import Pool, job_variables  # noqa: F401 (part of what a desired state is built from)
from register.prefect import fields
from register import flows
from register.manifest.resolve import Deployment
from register.settings import GitHub

STATE_LABEL = "flow-register.state"  # the fingerprint of what flow-register wrote: drift is what differs since
SCHEMA_LABEL = "flow-register.schema"  # the flow source its parameter schema was made from (flows.label)
# The digest of the SLAs flow-register last set (Prefect Cloud): the SLA API writes and has no documented
# read, so what was set is known by this label, written only after the SLAs themselves (register/prefect/fields.py).
SLA_LABEL = fields.SLA_LABEL
# Names looked for past a deployment's triggers: on a server that does not keep automation tags, the old
# automations of triggers just removed from the manifest are found by these names.
SPARE_TRIGGER_NAMES = 3

# The fields of a deployment the plan compares (declared in register/prefect/fields.py); `triggers` are automations of
# their own. A change of the others writes the deployment (SLAs: the label that records them).
FIELDS = fields.NAMES
DEPLOYMENT_FIELDS = tuple(f.name for f in fields.FIELDS if f.server is not None or f.label is not None)


@dataclass
class Trigger:
    """One trigger of a desired deployment: its fingerprint now, Prefect's automation only when needed."""

    spec: dict
    deployment: str
    index: int
    tags: tuple[str, ...]

    @cached_property
    def fingerprint(self) -> str:
        return models.trigger_fingerprint(self.spec, self.deployment, self.index, list(self.tags))

    @cached_property
    def automation(self) -> dict:
        return models.trigger(self.spec, self.deployment, self.index, list(self.tags))


@dataclass
class State:
    """One deployment's registrable state, in the shape both sides share (plain JSON values).

    `fields["triggers"]` holds fingerprints; the automations are in `triggers` (desired) or `automations`
    (registered), turned into Prefect's shapes only when the fingerprints differ."""

    flow: str
    name: str
    fields: dict
    id: str | None = None
    owned: bool = True  # carries this project's and environment's ownership tags
    manifest_name: str | None = None
    triggers: list[Trigger] | None = None  # desired side
    automations: list[dict] | None = None  # registered side: as the server returned them
    version_info: dict | None = None  # desired side: where the code came from (sent, never compared)
    last_written: str | None = None  # registered side: the fingerprint flow-register wrote last (a label)
    schema_label: str | None = None  # what its parameter schema was made from (SCHEMA_LABEL)

    def fingerprint(self) -> str:
        """A digest of the fields, to tell at the next plan whether the manifest changed since this write."""
        return fields.fingerprint(self.fields)

    @property
    def key(self) -> tuple[str, str]:
        return self.flow, self.name


def desired(deployment: Deployment, *, pool: Pool, image: str | None, flow_schema: flows.FlowSchema,
            pull_steps: list | None, version: str | None, owner_tags: list[str],
            version_info: dict | None = None) -> State:
    """What `deployment` registers as."""
    triggers = [Trigger(spec, deployment.name, i, tuple(owner_tags))
                for i, spec in enumerate(deployment.triggers, start=1)]
    values = fields.desired(fields.Inputs(
        deployment, job_variables(deployment, pool, image), flow_schema.schema, pull_steps, version,
        [t.fingerprint for t in triggers]))
    return State(deployment.flow, deployment.name, values, manifest_name=deployment.manifest_name, triggers=triggers,
                 version_info=version_info, schema_label=flows.label(flow_schema))


def body(state: State, flow_id: str) -> dict:
    """The body of `POST /deployments/` (an upsert: same flow and name, same id) for a desired state."""
    return {
        "name": state.name,
        "flow_id": flow_id,
        **fields.server_body(state.fields),
        "labels": {STATE_LABEL: state.fingerprint(), SCHEMA_LABEL: state.schema_label, **fields.labels(state.fields)},
        **({"version_info": state.version_info} if state.version_info else {}),
    }


sla_body, sla_digest = fields.sla_body, fields.sla_digest  # declared with the field


def automation_names(deployments: list[tuple[str, list]]) -> list[str]:
    """The names the automations of these (deployment name, trigger specs) have, or had: Prefect's
    `<deployment>__automation_<n>` unless a trigger names itself, and a few past the last."""
    names = []
    for name, triggers in deployments:
        names += [spec["name"] for spec in triggers if isinstance(spec, dict) and spec.get("name")]
        names += [f"{name}__automation_{i}" for i in range(1, len(triggers) + SPARE_TRIGGER_NAMES + 1)]
    return sorted(set(names))


def automation_body(automation: dict, deployment_id: str) -> dict:
    """A desired trigger's automation, made to run and be owned by the deployment `deployment_id`."""
    out = copy.deepcopy(automation)  # the plan's desired state stays as it was
    for key in ("actions", "actions_on_trigger", "actions_on_resolve"):
        out[key] = [{**a, "deployment_id": deployment_id} if a.get("type") == "run-deployment"
                    and a.get("source") == "selected" else a for a in out.get(key) or []]
    out["owner_resource"] = f"prefect.deployment.{deployment_id}"
    return out



def version_info(github, checkout: code.Checkout, message: str = "") -> dict | None:
    """Prefect's version information (shown in its UI, and in Prefect Cloud's version history): the
    repository, branch, commit, its message and the run that deployed it, from the GitHub context, or from
    the checkout's git when run locally; the fields of Prefect's GithubVersionInfo and GitVersionInfo
    (prefect/_internal/versioning.py), `message` among them."""
    commit = github.sha or checkout.commit
    if not commit:
        return None
    info = {"type": "vcs:github" if github.repository else "vcs:git", "version": commit[:8], "commit_sha": commit,
            "message": message,
            "branch": github.head_ref or github.ref_name or checkout.branch or "",
            "repository": github.repository or checkout.remote or "",
            "url": f"{github.repository_url}/tree/{commit}" if github.repository_url else (checkout.remote or "")}
    if github.run_url:
        info["run_url"] = github.run_url
    return info


MESSAGE_CHARS = 500  # a commit's first line, as Prefect sends it; a longer one is cut


def commit_message(root, commit: str | None, environ: Mapping[str, str] | None = None) -> str:
    """The first line of `commit`'s message (what Prefect's `get_commit_message_first_line` sends), from the
    checkout's git; '' when git or the commit is not there (a shallow clone has the commit it checked out).
    The text is the commit author's: sent as data, as written, never shown by flow-register."""
    if not commit or not re.fullmatch(r"[0-9a-fA-F]{7,64}", commit):
        return ""
    try:
        out = subprocess.run(["git", "-C", str(root), "log", "-1", "--format=%B", commit, "--"],
                             capture_output=True, text=True, timeout=30,
                             env=dict(environ) if environ is not None else None)
    except (OSError, subprocess.SubprocessError):
        return ""
    lines = out.stdout.strip().splitlines() if out.returncode == 0 else []
    return "".join(c for c in lines[0] if c.isprintable())[:MESSAGE_CHARS] if lines else ""


def _cloned_commit(d: Deployment, at: code.Checkout, root, asked: dict, environ) -> str | None:
    """Code cloned at run time has no image to name its version: the commit it clones does. A branch or tag
    is named with the commit it points at now, so a deploy after it moved changes the version (its runs get
    whatever it holds when they start)."""
    git = (d.code or {}).get("git")
    if not git:
        return None
    ref = git.get("ref") or at.commit
    if not ref:
        return None
    if re.fullmatch(r"[0-9a-f]{40}", ref):
        return ref[:12]
    key = (git.get("repository") or "", ref)  # asked once per run, however many deployments clone it
    if key not in asked:
        asked[key] = code.ref_commit(root, *key, environ)
    now = asked[key]
    return f"{ref}@{now[:12]}" if now else None


def _uploaded(d: Deployment, prefixes: dict) -> str | None:
    """Code uploaded to object storage is named by its content: so is the version of what runs it."""
    where = code.storage(d.code)
    return prefixes.get(where.key) if where else None


def _image_for(image, d: Deployment) -> str | None:
    """The image `d` runs: its work pool's repository's (image.repositories), else the default one's."""
    if not image:
        return None
    return image.reference_for(d.work_pool) if hasattr(image, "reference_for") else image.reference


def for_environment(manifest, environment: str, deployments: list[Deployment], *, pool: Callable[[Deployment], Pool],
                    image, owner: list[str], github=None, schemas: flows.Schemas | None = None,
                    uploads: list | None = None, environ: Mapping[str, str]) -> list[State]:
    """The desired state of each of `environment`'s `deployments`, in the manifest's order. `image`: the
    image stage's (None without one); `github`: the run's context (settings.GitHub), for the commit;
    `schemas`: where the flows' schemas come from (built from source when not given); `uploads`: the code
    upload stage's (register/code/upload.py), for code in object storage; `environ`: the run's variables (settings),
    for git."""
    if uploads is None:  # render: the same content prefixes, computed offline
        uploads = code_upload.uploads_for(manifest, deployments)
    prefixes = {u.where.key: u.prefix for u in uploads}
    asked: dict = {}
    github = github or GitHub()
    schemas = schemas or flows.Schemas()
    spec = manifest.image(environment)
    at = code.checkout(manifest.root, github.sha, environ)
    info = version_info(github, at, commit_message(manifest.root, github.sha or at.commit, environ))
    return [desired(d, pool=pool(d), image=_image_for(image, d),
                    flow_schema=schemas.of(manifest.root, d.entrypoint),
                    pull_steps=code.pull_steps(manifest, d, spec, at, prefixes),
                    version=d.version or (image.content_tag if image else None) or _uploaded(d, prefixes)
                    or _cloned_commit(d, at, manifest.root, asked, environ),
                    owner_tags=owner,
                    version_info=info)
            for d in deployments]
