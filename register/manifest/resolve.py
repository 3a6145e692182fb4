"""Resolve one environment's deployments from the manifest.

Precedence, lowest to highest: built-in defaults < `defaults` < `environments.<env>` < the
deployment < `deployments[].environments.<env>` < command line / action inputs.
Mappings merge key by key, lists and scalars replace, `null` removes. Every resolved leaf remembers
the manifest path it came from, so a problem with an inherited value is reported where it was written.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from register.prefect import fields

OWNER_TAG = "managed-by:flow-register"
DEFAULT_NAME_TEMPLATE = "{name}"
PLACEHOLDERS = ("name", "environment", "project")
BANNED_CHARACTERS = ("/", "%", "&", ">", "<")  # prefect.types.names.BANNED_CHARACTERS, without importing Prefect
# Settings that replace as a whole: a different pool is a different pool, not a merge of two;
# a block and a token variable are two ways to authenticate, not parts of one.
_REPLACE = {"work_pool", "credentials"}
# Keys of a deployment entry that are not settings to merge.
_NOT_SETTINGS = {"name", "entrypoint", "environments", "enabled"}


@dataclass
class Overrides:
    """What the command line or the action's inputs set for every deployment."""

    work_pool: str | None = None
    cpu: object = None
    memory: object = None
    only: list[str] | None = None  # a subset of deployment names (manifest names)
    # How the user wrote each override (and the environment), for problems about them: the command
    # line's flags unless the action names its inputs, e.g. {"cpu": "input 'cpu'"}.
    labels: dict[str, str] = field(default_factory=dict)

    def label(self, name: str) -> str:
        return self.labels.get(name) or FLAGS[name]


FLAGS = {"environment": "--environment", "work_pool": "--work-pool", "cpu": "--cpu", "memory": "--memory",
         "only": "--only", "preview": "--preview"}
COMMAND_LINE = "<command line>"  # an origin's first part when an override set the value: (COMMAND_LINE, label, ...)


@dataclass
class Deployment:
    """One deployment as it should be registered, in one environment."""

    name: str  # the registered name (after name_template)
    manifest_name: str  # the name written in the manifest
    index: int  # its position in `deployments`, for error positions
    entrypoint: str
    work_pool: str | None
    work_pool_type: str | None
    work_queue: str | None = None
    resources: dict = field(default_factory=dict)
    job_variables: dict = field(default_factory=dict)
    parameters: dict = field(default_factory=dict)
    schedules: list = field(default_factory=list)
    triggers: list = field(default_factory=list)
    slas: list | None = None  # Prefect Cloud's SLAs (`sla:`); None: not managed, the server's stay
    tags: list = field(default_factory=list)
    description: str | None = None
    version: str | None = None
    concurrency_limit: int | None = None
    concurrency_options: dict | None = None  # {collision_strategy, grace_period_seconds?} with a limit
    enforce_parameter_schema: bool = True  # Prefect 3's default
    paused: bool | None = None  # None: not set; the server's (an operator's) choice stays
    code: dict | None = None  # where a run gets its code (register/code/__init__.py); None: the image's workdir
    flow: str | None = None  # the flow's name, read from source by the flow checks
    origins: dict = field(default_factory=dict, repr=False)  # resolved path -> manifest path

    def origin(self, *path) -> tuple:
        """Where in the manifest the resolved value at `path` (e.g. 'resources', 'cpu') was written."""
        for cut in range(len(path), 0, -1):
            if path[:cut] in self.origins:
                return self.origins[path[:cut]] + tuple(path[cut:])
        return ("deployments", self.index)


def ownership_tags(project: str, environment: str) -> list[str]:
    return [OWNER_TAG, f"project:{project}", f"environment:{environment}"]


def _merge(into: dict, origins: dict, layer: dict, layer_path: tuple, at: tuple = (), nulls=frozenset()) -> None:
    """`nulls`: the manifest paths of `!null`, the value null itself, where a plain null removes."""
    for key, value in layer.items():
        here = at + (key,)
        if value is None and layer_path + (key,) not in nulls:
            into.pop(key, None)
            for path in [p for p in origins if p[: len(here)] == here]:
                del origins[path]
            continue
        if isinstance(value, dict) and isinstance(into.get(key), dict) and key not in _REPLACE:
            _merge(into[key], origins, value, layer_path + (key,), here, nulls)
            continue
        into[key] = _written(value, layer_path + (key,), nulls)
        for path in [p for p in origins if p[: len(here)] == here]:
            del origins[path]
        origins[here] = layer_path + (key,)


def _written(value, path: tuple, nulls) -> object:
    """A copy of `value` as it merges: a plain null inside it removes (nothing to remove below), `!null` stays."""
    if isinstance(value, dict):
        return {k: _written(v, path + (k,), nulls) for k, v in value.items() if v is not None or path + (k,) in nulls}
    if isinstance(value, list):
        return [_written(v, path + (i,), nulls) for i, v in enumerate(value)]
    return value


def environment_names(manifest: dict) -> list[str]:
    envs = manifest.get("environments")
    return list(envs) if isinstance(envs, dict) else []


def layers(manifest: dict, environment: str, index: int) -> list[tuple[dict, tuple]]:
    """The setting layers of deployment `index` in `environment`, lowest precedence first."""
    entry = manifest["deployments"][index]
    settings = {k: v for k, v in entry.items() if k not in _NOT_SETTINGS}
    override = (entry.get("environments") or {}).get(environment) or {}
    return [
        (manifest.get("defaults") or {}, ("defaults",)),
        ((manifest.get("environments") or {}).get(environment) or {}, ("environments", environment)),
        (settings, ("deployments", index)),
        ({k: v for k, v in override.items() if k != "enabled"}, ("deployments", index, "environments", environment)),
    ]


def is_enabled(manifest: dict, environment: str, index: int) -> bool:
    entry = manifest["deployments"][index]
    override = (entry.get("environments") or {}).get(environment) or {}
    return override.get("enabled", entry.get("enabled", True)) is not False


def render_name(template: str, name: str, environment: str, project: str) -> str:
    # str.format would also accept {name!r} or {0}; only the three placeholders are meant.
    out = template
    for key, value in (("name", name), ("environment", environment), ("project", project)):
        out = out.replace("{" + key + "}", value)
    return out


def resolve(manifest: dict, environment: str, overrides: Overrides | None = None,
            nulls=frozenset()) -> list[Deployment]:
    """Every enabled deployment of `environment`, fully merged. Assumes the manifest passed the schema.
    `nulls`: where `!null` was written (Source.nulls)."""
    overrides = overrides or Overrides()
    project = manifest["project"]
    result = []
    for index, entry in enumerate(manifest["deployments"]):
        if entry is None:  # rejected by the schema (see schema.usable_part)
            continue
        if overrides.only is not None and entry["name"] not in overrides.only:
            continue
        if not is_enabled(manifest, environment, index):
            continue
        merged: dict = {}
        origins: dict = {}
        for layer, path in layers(manifest, environment, index):
            _merge(merged, origins, layer, path, nulls=nulls)
        for name, layer in (("work_pool", {"work_pool": overrides.work_pool}),
                            ("cpu", {"resources": {"cpu": overrides.cpu}}),
                            ("memory", {"resources": {"memory": overrides.memory}})):
            if getattr(overrides, name) not in (None, ""):
                _merge(merged, origins, layer, (COMMAND_LINE, overrides.label(name)))

        result.append(Deployment(
            name=render_name(merged.get("name_template", DEFAULT_NAME_TEMPLATE), entry["name"], environment, project),
            manifest_name=entry["name"],
            index=index,
            # every deployment field's setting (register/prefect/fields.py)
            **fields.resolved(merged, entry, ownership_tags(project, environment)),
            origins=origins,
        ))
    return result


@dataclass
class Variable:
    """One Prefect variable as it should be on the server, in one environment."""

    name: str
    value: object
    index: int  # its position in `variables`, for error positions
    tags: list = field(default_factory=list)  # with the ownership tags
    value_at: tuple = ()  # where its value was written: the variable's own, or its environment's override

    def origin(self, *path) -> tuple:
        return self.value_at if path == ("value",) else ("variables", self.index, *path)


def resolve_variables(manifest: dict, environment: str) -> list[Variable] | None:
    """`environment`'s variables; None when the manifest has no `variables:` (then it manages none, and prunes
    none). An environment's override replaces the value and tags it gives. Assumes the schema passed."""
    entries = manifest.get("variables")
    if entries is None:
        return None
    out = []
    for index, entry in enumerate(entries):
        if not isinstance(entry, dict):  # rejected by the schema (see schema.usable_part)
            continue
        override = (entry.get("environments") or {}).get(environment) or {}
        if override.get("enabled", entry.get("enabled", True)) is False:
            continue
        value_at = ("variables", index, "environments", environment, "value") if "value" in override else \
            ("variables", index, "value")
        tags = override["tags"] if override.get("tags") is not None else entry.get("tags") or []
        out.append(Variable(entry["name"], override.get("value", entry.get("value")), index,
                            list(dict.fromkeys([*tags, *ownership_tags(manifest["project"], environment)])),
                            value_at))
    return out
