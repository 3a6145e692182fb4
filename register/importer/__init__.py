"""`flow-register import`: a prefect.yaml turned into a flow manifest.

Each prefect.yaml deployment becomes a manifest deployment of one environment: its work pool and
queue, job variables (CPU and memory as `resources` when they translate back exactly), parameters,
schedules, triggers, tags, concurrency, version and description; `build` steps become `image:`, `pull`
steps `code:`. YAML anchors stay anchors under the manifest's `definitions`. What has no equivalent is
left out and reported at its line as a warning, never silently dropped.

The rule is what `prefect deploy --all` registers for the same file: the deployments it registers (named,
with an entrypoint, the last of one name), the placeholders it fills or drops (templates.py), the schedule
and trigger fields as its models read them, entrypoints from the folder it runs in. A file larger, with
more values or deeper than any real prefect.yaml is refused before it is read.
"""

from __future__ import annotations

import posixpath
from collections.abc import Mapping
import re
from dataclasses import dataclass, field
from pathlib import Path

import yaml

from register.prefect import fields

from register import files
from register.prefect import resources as res
from register.importer import templates
from register.importer.templates import DROPPED
from register.manifest.checks import SLA_KEYS
from register.manifest.source import MAX_BYTES, Source, decode, parse
from register.problems import Problem

STEPS = ("prefect.deployments.steps.", "prefect.projects.steps.")  # Prefect 3 and Prefect 2's names
_BLOCK = re.compile(r"^\{\{\s*prefect\.blocks\.([a-z0-9-]+)\.([^\s}]+)\s*\}\}$")
_ENV = re.compile(r"^\{\{\s*\$([A-Za-z_][A-Za-z0-9_]*)\s*\}\}$")
_STEP_OUTPUT = re.compile(r"^\{\{\s*([A-Za-z0-9_-]+)\.directory\s*\}\}/?(.*)$")
_TEMPLATE = re.compile(r"\{\{.*?\}\}")
_CREDENTIALS_IN_URL = re.compile(r"//[^/@]*\{\{.*?\}\}[^/@]*@")
# `pip install .` (or a folder) run in the clone: the project installing itself
_PIP_INSTALL = re.compile(r"^\s*(?:python3? -m )?pip3? install\s+(?:(?:-e|--editable)\s+)?([\w./-]+)\s*$")
# What build and push steps without an id give later placeholders (`{{ image }}`): their outputs' names
_STEP_OUTPUTS = {"build_docker_image": ("image", "image_name", "tag", "image_id", "additional_tags"),
                 "push_docker_image": ("image", "image_name", "tag", "additional_tags")}
_SCHEDULE_KEYS = ("cron", "interval", "rrule", "timezone", "anchor_date", "day_or", "active", "parameters", "slug")
_TRIGGER_KEYS = ("type", "name", "enabled", "expect", "match", "match_related", "after", "for_each", "posture",
                 "threshold", "within", "parameters", "job_variables", "description", "metric", "triggers",
                 "require", "schedule_after")
# What a prefect.yaml deployment may say that needs no conversion (prefect deploy fills it in itself)
_IGNORED = {"flow_name", "build", "push"}


@dataclass
class Conversion:
    manifest: dict
    warnings: list[Problem] = field(default_factory=list)
    anchors: dict[int, str] = field(default_factory=dict)  # id(object) -> anchor name, for the dump
    root: Path = Path(".")  # where the manifest belongs: the folder its entrypoints are relative to
    variables: list[str] = field(default_factory=list)  # the environment variables it reads (`{{ $VAR }}`)

    def text(self, header: str = "") -> str:
        return header + dump(self.manifest, self.anchors)


class _Loader(yaml.SafeLoader):
    """Remembers which constructed mapping or list each anchor named, so the manifest can keep the name."""

    def __init__(self, stream):
        super().__init__(stream)
        self.anchor_of_node: dict[int, str] = {}
        self.anchor_of_object: dict[int, str] = {}

    def compose_node(self, parent, index):
        event = self.peek_event()
        node = super().compose_node(parent, index)
        if getattr(event, "anchor", None) and not isinstance(event, yaml.AliasEvent):
            self.anchor_of_node[id(node)] = event.anchor
        return node

    def construct_object(self, node, deep=False):
        data = super().construct_object(node, deep)
        if id(node) in self.anchor_of_node and isinstance(data, (dict, list)):
            self.anchor_of_object[id(data)] = self.anchor_of_node[id(node)]
        return data


class _Dumper(yaml.SafeDumper):
    anchor_names: dict[int, str] = {}  # not `anchors`: the serializer's own attribute

    def ignore_aliases(self, data):
        # only what the prefect.yaml shared by an anchor is shared in the manifest, under the same name
        return super().ignore_aliases(data) or id(data) not in self.anchor_names

    def generate_anchor(self, node):
        for key, represented in self.represented_objects.items():
            if represented is node and key in self.anchor_names:
                return self.anchor_names[key]
        return super().generate_anchor(node)


def dump(data: dict, anchors: dict[int, str]) -> str:
    dumper = type("Dumper", (_Dumper,), {"anchor_names": anchors})
    return yaml.dump(data, Dumper=dumper, sort_keys=False, default_flow_style=False, allow_unicode=True, width=110)


def slug(text: str) -> str:
    return re.sub(r"[^a-z0-9]+", "-", str(text).lower()).strip("-") or "flows"


class _Importer:
    def __init__(self, source: Source, data: dict, root: Path, environment: str, pool_types: dict[str, str],
                 base: Path | None = None):
        self.source = source
        self.data = data
        self.root = root  # where the entrypoints are, as prefect deploy reads them (see entrypoint_base)
        self.base_note = base  # set when that is not the prefect.yaml's folder
        self.environment = environment
        self.pool_types = pool_types
        self.warnings: list[Problem] = []
        self.step_ids: set[str] = set()  # build and push steps: their outputs fill deploy-time placeholders
        self.filled: set[int] = set()
        self.variables: set[str] = set()  # `{{ $VAR }}` become `${VAR}`: the manifest reads them at deploy

    def warn(self, path: tuple, message: str, rule: str) -> None:
        self.warnings.append(self.source.problem(path, message, f"import-{rule}", severity="warning"))

    # -- the whole file -------------------------------------------------------------------------------
    def convert(self) -> dict:
        data = self.data
        templates.escape(data)  # a literal `${` stays literal: Prefect never read it as a variable
        if data.get("prefect-version"):
            self.warn(("prefect-version",), "prefect-version is not converted: the Prefect that runs your flows is "
                                            "the one in your image or requirements", "prefect-version")
        for key in [k for k in data if k not in ("name", "prefect-version", "build", "push", "pull", "deployments",
                                                 "definitions")]:
            self.warn((key,), f"top-level '{key}' is not converted; it has no meaning for prefect deploy either "
                              "unless it holds anchors (kept only when something uses them)", "unknown")
        build, push = self.steps(data, "build", ()), self.steps(data, "push", ())
        entries = [e if isinstance(e, dict) else {} for e in (data.get("deployments") or [])]
        for steps in [build, push] + [self.steps(e, k, ("deployments", i)) for i, e in enumerate(entries)
                                      for k in ("build", "push")]:
            for step in steps:
                name, inputs = _step(step)
                if inputs.get("id"):
                    self.step_ids.add(str(inputs["id"]))
                self.step_ids.update(_STEP_OUTPUTS.get(name.rsplit(".", 1)[-1], ()))
        top_image = self.image(build, push, ("build",), ("push",))
        pull = self.steps(data, "pull", ())
        top_code = self.code(pull, ("pull",)) if pull else None
        chosen = self.chosen(entries)
        images = {i: self.own_image(entries[i], i) if "build" in entries[i] else top_image for i in chosen}
        image = self.one_image(images, top_image)
        if self.base_note is not None and chosen:
            self.warn(("deployments", chosen[0], "entrypoint"),
                      f"entrypoints are relative to {self.base_note}, not to prefect.yaml's folder (prefect deploy "
                      "--prefect-file reads them from the folder it runs in); the manifest goes in that folder",
                      "entrypoint-base")
        deployments = [self.deployment(entries[i], i, top_code, image) for i in chosen]
        if not deployments:
            self.warnings.append(self.source.problem(
                ("deployments",), "no deployment here is one prefect deploy --all registers (each needs a name and "
                "an entrypoint); there is nothing to convert", "import-empty", key=True))
        manifest: dict = {"version": 1, "project": slug(data.get("name") or self.root.name)}
        if isinstance(data.get("definitions"), dict):
            manifest["definitions"] = data["definitions"]  # the same objects: aliases below point into it
        if image:
            manifest["image"] = image
        self.hoist(manifest, deployments)
        manifest["deployments"] = deployments
        return manifest

    def steps(self, holder: dict, key: str, at: tuple) -> list:
        """A list of steps; prefect deploy reads nothing else (a string would be read one letter at a time)."""
        steps = holder.get(key) if isinstance(holder, dict) else None
        if steps is None or isinstance(steps, list):
            return steps or []
        self.warn(at + (key,), f"'{key}' is not a list of steps, so prefect deploy cannot run it either; it is not "
                               f"converted: write '{key}:' as a list, one '- step.name: {{inputs}}' per step", "steps")
        return []

    def chosen(self, entries: list[dict]) -> list[int]:
        """The deployments prefect deploy --all registers, in order: named, with an entrypoint, the last of
        each name (an earlier one of the same flow is overwritten on the server)."""
        last: dict[str, int] = {}
        for i, entry in enumerate(entries):
            at = ("deployments", i)
            if entry.get("name") is None:
                self.warn(at if not entry else at + ("name",), "a deployment without a name is skipped by prefect "
                          "deploy ('Discovered unnamed deployment. Skipping...'); it is left out: give it a name",
                          "unnamed")
                continue
            if not entry.get("entrypoint"):
                self.warn(at + ("name",), f"deployment '{entry['name']}' has no entrypoint, which prefect deploy "
                                          "refuses ('An entrypoint must be provided'); it is left out", "entrypoint")
                continue
            name = str(entry["name"])
            if name in last:
                first = last[name]
                line = self.source.where(("deployments", i, "name"))[0]
                same_flow = str(entries[first]["entrypoint"]) == str(entry["entrypoint"])
                why = ("prefect deploy registers both and the second overwrites the first" if same_flow else
                       "prefect deploy registers one per flow, but a manifest's names are unique; rename one "
                       "to keep both")
                self.warn(("deployments", first, "name"), f"deployment '{name}' is declared again on line {line}; "
                          f"the later one is kept ({why})", "duplicate")
            last[name] = i
        return sorted(last.values())

    def own_image(self, entry: dict, index: int) -> dict | None:
        """The image a deployment's own build steps make (prefect deploy runs them instead of the top-level ones)."""
        at = ("deployments", index)
        return self.image(self.steps(entry, "build", at), self.steps(entry, "push", at), at + ("build",),
                          at + ("push",))

    def one_image(self, images: dict[int, dict | None], top_image: dict | None) -> dict | None:
        """The manifest builds one image: the one every deployment's build steps make (their own or the
        top-level ones)."""
        built = [image for image in images.values() if image]
        if not built:
            return None
        image = top_image if top_image in built else built[0]
        for i, other in images.items():
            if other != image:
                where = ("deployments", i, "build") if "build" in self.data["deployments"][i] else ("deployments", i)
                what = "builds another image than" if other else "builds no image, unlike"
                self.warn(where, f"this deployment {what} the manifest's one image ({image.get('repository')}), "
                                 "which is registered for every deployment (the pool uses it if it takes an image)",
                          "steps")
        return image

    def hoist(self, manifest: dict, deployments: list[dict]) -> None:
        """A pool or a code setting every deployment shares is written once, in its layer."""
        environment: dict = {}
        defaults: dict = {}
        for key, layer in (("work_pool", environment), ("work_queue", environment), ("code", defaults)):
            values = [d.get(key) for d in deployments]
            if deployments and all(v is not None and v == values[0] for v in values):
                layer[key] = values[0]
                for d in deployments:
                    del d[key]
        if defaults:
            manifest["defaults"] = defaults
        manifest["environments"] = {self.environment: environment}

    # -- placeholders prefect deploy fills when it deploys ---------------------------------------------
    def fill(self, value, at: tuple, *, env_only: bool = False):
        """`value` as prefect deploy registers it, in the manifest's words (see templates). In place, so an
        anchored mapping or list stays one object; DROPPED when prefect deploy leaves the value out."""
        if isinstance(value, str):
            return self.fill_text(value, at, env_only)
        if not isinstance(value, (dict, list)) or id(value) in self.filled:
            return value
        self.filled.add(id(value))
        if isinstance(value, dict):
            for key in list(value):
                filled = self.fill(value[key], at + (key,), env_only=env_only)
                if filled is DROPPED:
                    del value[key]
                else:
                    value[key] = filled
        else:
            kept = [self.fill(item, at + (i,), env_only=env_only) for i, item in enumerate(value)]
            value[:] = [item for item in kept if item is not DROPPED]
        return value

    def fill_text(self, text: str, at: tuple, env_only: bool = False):
        out = text
        for full, name in templates.placeholders(text):
            kind = templates.kind(name, self.step_ids)
            if kind == "env":
                variable = templates.environment_variable(name)
                if variable:
                    self.variables.add(variable)
                    out = out.replace(full, "${" + variable + "}")
                else:
                    self.warn(at, f"'{full}' is kept as written: the manifest reads environment variables as "
                                  "${NAME}, NAME a letter or _ then letters, digits or _", "template")
            elif env_only or kind == "worker":
                continue
            elif kind == "server":
                when = ("the worker reads it when each run starts" if "job_variables" in at else
                        "Prefect registers it as written")
                self.warn(at, f"'{full}' is read from the Prefect server by prefect deploy when it deploys; the "
                              f"manifest keeps it as written and {when}", "template")
            else:
                what = (f"an output of a build or push step ('{name.split('.', 1)[0]}'), which the manifest does "
                        "not run" if kind == "step" else "a value prefect deploy does not have when it registers "
                        "the deployment (it leaves it out with a warning)")
                self.warn(at, f"'{full}' is {what}; it is left out", "template")
                if full == text:
                    return DROPPED
                out = out.replace(full, "")
        return out

    # -- one deployment -------------------------------------------------------------------------------
    def deployment(self, entry: dict, index: int, top_code: dict | None, image: dict | None) -> dict:
        at = ("deployments", index)
        # a template in job_variables.image: the image prefect deploy built, which flow-register sets itself
        variables = (entry.get("work_pool") or {}).get("job_variables") if isinstance(entry.get("work_pool"),
                                                                                       dict) else None
        built = isinstance(variables, dict) and self.is_built_image(variables.get("image"))
        if built and image:
            variables = dict(variables)
            del variables["image"]
            entry = {**entry, "work_pool": {**entry["work_pool"], "job_variables": variables}}
        for key in [k for k in entry if k not in ("build", "push", "pull", "triggers")]:
            filled = self.fill(entry[key], at + (key,))
            entry = {**entry, key: filled} if filled is not DROPPED else {k: v for k, v in entry.items() if k != key}
        if entry.get("triggers") is not None:
            # prefect deploy fills only environment variables here: an automation's own templates stay
            self.fill(entry["triggers"], at + ("triggers",), env_only=True)
        out: dict = {"name": str(entry.get("name"))}
        out["entrypoint"] = self.entrypoint(entry.get("entrypoint"), at + ("entrypoint",))
        for key in ("description", "version"):
            if entry.get(key) is not None:
                out[key] = str(entry[key])
        if entry.get("tags"):
            out["tags"] = entry["tags"]
        if entry.get("parameters"):
            out["parameters"] = entry["parameters"]
        self.work_pool(entry.get("work_pool"), at + ("work_pool",), out)
        schedules = self.schedules(entry, at)
        if schedules:
            out["schedules"] = schedules
        if entry.get("triggers"):
            out["triggers"] = self.triggers(entry["triggers"], at + ("triggers",))
        if entry.get("sla") is not None:
            out["sla"] = self.slas(entry["sla"], at + ("sla",))
        self.concurrency(entry.get("concurrency_limit"), at + ("concurrency_limit",), out)
        if entry.get("paused") is not None:
            out["paused"] = entry["paused"] if isinstance(entry["paused"], str) else bool(entry["paused"])
        if entry.get("enforce_parameter_schema") is False:
            out["enforce_parameter_schema"] = False
        if "pull" in entry:
            pull = self.steps(entry, "pull", at)
            code = self.code(pull, at + ("pull",)) if pull else None
        else:
            code = top_code
        if code is not None:
            out["code"] = code
        known = {"name"} | fields.PREFECT_YAML_KEYS | _IGNORED  # what each deployment field reads (fields.py)
        for key in [k for k in entry if k not in known and entry[k] is not None]:
            self.warn(at + (key,), f"'{key}' is not converted: the manifest has no such setting", "unknown")
        return out

    def is_built_image(self, value) -> bool:
        """`{{ build-image.image }}` (or the step's unnamed `{{ image }}`): the image prefect deploy built."""
        found = templates.placeholders(value)
        return len(found) == 1 and found[0][0] == value and templates.kind(found[0][1], self.step_ids) == "step"

    def entrypoint(self, entrypoint, at: tuple) -> str:
        text = str(entrypoint or "")
        # Prefect also loads `package.module.function`, without a colon
        path, _, function = text.rpartition(":") if ":" in text else text.rpartition(".")
        if path and not path.endswith(".py") and re.fullmatch(r"[A-Za-z_][\w.]*", path):
            as_file = path.replace(".", "/") + ".py"
            if (self.root / as_file).is_file():
                self.warn(at, f"module path '{path}' written as the file '{as_file}': the manifest names flows by "
                              "file; the registered entrypoint is the file path", "entrypoint")
                return f"{as_file}:{function}"
            self.warn(at, f"module path '{path}' has no file '{as_file}' in {self.root}; write the flow's "
                          "file path", "entrypoint")
        return text

    def work_pool(self, pool, at: tuple, out: dict) -> None:
        if not isinstance(pool, dict) or not pool.get("name"):
            self.warn(at, "no work pool: set work_pool in the manifest (defaults or the environment)", "work-pool")
            return
        name = pool["name"]
        pool_type = self.pool_types.get(name)
        out["work_pool"] = {"name": name, "type": pool_type} if pool_type else name
        if pool.get("work_queue_name"):
            out["work_queue"] = pool["work_queue_name"]
        variables = dict(pool.get("job_variables") or {})
        resources, variables = self.resources(variables, pool_type, name, at + ("job_variables",))
        if resources:
            out["resources"] = resources
        if variables:
            # the same object when nothing was taken out, so an anchored job_variables stays one
            same = variables == pool.get("job_variables")
            out["job_variables"] = pool["job_variables"] if same else variables

    def resources(self, variables: dict, pool_type: str | None, pool: str, at: tuple) -> tuple[dict, dict]:
        """CPU and memory as `resources` when translating them back gives exactly these variables."""
        names = [n for n in ("cpu", "memory", "cpu_request", "cpu_limit", "memory_request", "memory_limit",
                             "mem_limit") if n in variables]
        if not names:
            return {}, variables
        guess = pool_type or _guess_pool_type(variables)
        if guess is None:
            self.warn(at, f"cpu/memory of pool '{pool}' kept as job_variables: its type is unknown; give it with "
                          f"--pool-type {pool}=TYPE to write them as resources", "resources")
            return {}, variables
        for candidate in _resource_candidates(guess, variables):
            translated = res.translate(candidate, guess)
            if not translated.errors and translated.job_variables == {n: variables[n] for n in names}:
                if pool_type is None:
                    self.warn(at, f"cpu/memory written as resources for pool type '{guess}', judged from their values; "
                                  f"say so with --pool-type {pool}={guess} (or edit work_pool.type)", "pool-type")
                return candidate, {k: v for k, v in variables.items() if k not in names}
        self.warn(at, f"cpu/memory kept as job_variables: no resources value translates to exactly them for "
                      f"pool type '{guess}'", "resources")
        return {}, variables

    def schedules(self, entry: dict, at: tuple) -> list:
        # prefect deploy (Prefect 3): `schedules`, else Prefect 2's `schedule` as the one schedule with its own
        # `active`; is_schedule_active is not read at all
        if entry.get("schedules") is not None:
            given, where = entry["schedules"], at + ("schedules",)
        elif isinstance(entry.get("schedule"), dict) and entry["schedule"]:
            given, where = [entry["schedule"]], at + ("schedule",)
        else:
            given, where = [], None
        if entry.get("is_schedule_active") is not None:
            active = [s.get("active", True) for s in given if isinstance(s, dict)]
            if any(a != entry["is_schedule_active"] for a in active):
                self.warn(at + ("is_schedule_active",), "is_schedule_active is not converted: prefect deploy "
                          "(Prefect 3) does not read it; each schedule's own 'active' (default true) decides",
                          "schedule")
        converted = []
        for i, schedule in enumerate(given):
            here = where + (i,) if "schedules" in where else where
            if not isinstance(schedule, dict):
                converted.append(schedule)
                continue
            kept = {k: v for k, v in schedule.items() if k in _SCHEDULE_KEYS and v is not None}
            if "interval" in kept and not isinstance(kept["interval"], (int, float)):
                seconds = templates.duration(kept["interval"])
                if seconds is None:
                    self.warn(here + ("interval",), "interval kept as written; the manifest takes a number of seconds",
                              "schedule")
                else:
                    kept["interval"] = seconds  # as Prefect reads it: `PT10M`, `P1D`, `1:30:00`
            for key in [k for k in schedule if k not in _SCHEDULE_KEYS and schedule[k] is not None]:
                self.warn(here + (key,), f"schedule '{key}' is not converted: the manifest's schedules take "
                                         f"{', '.join(_SCHEDULE_KEYS)}", "schedule")
            converted.append(kept)
        # the same list when nothing changed: an anchored list of schedules stays an alias
        return given if converted == given else converted

    def triggers(self, triggers, at: tuple) -> list:
        if not isinstance(triggers, list):
            return triggers
        converted = []
        for i, trigger in enumerate(triggers):
            if not isinstance(trigger, dict):
                converted.append(trigger)
                continue
            for key in [k for k in trigger if k not in _TRIGGER_KEYS]:
                self.warn(at + (i, key), f"trigger '{key}' is not converted", "trigger")
            kept = {k: v for k, v in trigger.items() if k in _TRIGGER_KEYS}
            if "type" not in kept:  # the type Prefect infers, written out (the manifest asks for it)
                kept = {"type": _trigger_type(trigger), **kept}
            for key in ("within", "schedule_after"):
                if isinstance(kept.get(key), str) and templates.duration(kept[key]) is not None:
                    kept[key] = templates.duration(kept[key])
            converted.append(kept)
        return triggers if converted == triggers else converted

    def slas(self, slas, at: tuple):
        """prefect.yaml's `sla:` (Prefect Cloud's SLAs of the deployment), as the manifest's `sla:`: the same
        fields; durations Prefect reads as timedeltas ('PT10M', '0:10:00') in seconds."""
        if isinstance(slas, dict):  # prefect deploy takes one SLA as well as a list
            slas = [slas]
        if not isinstance(slas, list):
            return slas  # the manifest's schema check says what is wrong
        converted = []
        for i, sla in enumerate(slas):
            if not isinstance(sla, dict):
                converted.append(sla)
                continue
            for key in [k for k in sla if k not in SLA_KEYS]:
                self.warn(at + (i, key), f"SLA '{key}' is not converted: the manifest's SLAs have "
                                         f"{', '.join(SLA_KEYS)}", "sla")
            kept = {k: v for k, v in sla.items() if k in SLA_KEYS}
            for key in ("stale_after", "within"):
                if isinstance(kept.get(key), str) and templates.duration(kept[key]) is not None:
                    kept[key] = templates.duration(kept[key])
            converted.append(kept)
        return converted

    def concurrency(self, limit, at: tuple, out: dict) -> None:
        if isinstance(limit, int):
            out["concurrency_limit"] = limit
        elif isinstance(limit, dict) and isinstance(limit.get("limit"), int):
            known = {k: v for k, v in limit.items() if k in ("limit", "collision_strategy", "grace_period_seconds")}
            out["concurrency_limit"] = known if len(known) > 1 else limit["limit"]
            extra = [k for k in limit if k not in known]
            if extra:
                self.warn(at, f"concurrency {', '.join(extra)} not converted: the manifest takes the limit, "
                              "collision_strategy and grace_period_seconds", "concurrency")

    # -- build/push -> image; pull -> code ------------------------------------------------------------
    def image(self, build: list, push: list, build_at: tuple, push_at: tuple) -> dict | None:
        image = None
        for i, step in enumerate(build):
            name, inputs = _step(step)
            here = build_at + (i, name)
            if name == "prefect_docker.deployments.steps.build_docker_image":
                image = {"repository": self.repository(inputs.get("image_name"), here + ("image_name",))}
                for key, to in (("dockerfile", "dockerfile"), ("buildargs", "build_args"), ("platform", "platform")):
                    if inputs.get(key):
                        image[to] = self.fill(inputs[key], here + (key,), env_only=True)
                if inputs.get("tag"):
                    self.warn(here + ("tag",), "the image tag is not converted: flow-register tags the image by its "
                                               "content (add one with --image-tag)", "image-tag")
                for key in [k for k in inputs if k not in ("id", "requires", "image_name", "tag", "dockerfile",
                                                          "buildargs", "platform")]:
                    self.warn(here + (key,), f"build_docker_image '{key}' is not converted", "image")
            else:
                self.warn(here, f"build step '{name}' is not converted: the manifest's image is built from a "
                                "Dockerfile (run other steps before flow-register in your workflow)", "steps")
        for i, step in enumerate(push):
            name, inputs = _step(step)
            if name == "prefect_docker.deployments.steps.push_docker_image":
                if inputs.get("credentials"):
                    self.warn(push_at + (i, name, "credentials"), "registry credentials are not converted: log in "
                              "to the registry before flow-register runs (or give registry-username/password)",
                              "registry")
            else:
                self.warn(push_at + (i, name), f"push step '{name}' is not converted", "steps")
        return image

    def repository(self, value, at: tuple):
        """The repository the image is pushed to: known before anything is built, so from the environment at
        most; a Prefect variable or block (read from the server by prefect deploy) has no equivalent."""
        if not isinstance(value, str):
            return value
        for full, name in templates.placeholders(value):
            if templates.kind(name, self.step_ids) == "server":
                self.warn(at, f"'{full}' is read from the Prefect server when prefect deploy builds; flow-register "
                              "names the image before it reads anything from a server: write the repository, or "
                              "${VAR} with a variable of the environment flow-register runs in", "image")
        return self.fill_text(value, at, env_only=True)

    def code(self, pull: list, at: tuple) -> dict | None:
        git: dict | None = None
        code: dict = {}
        clone_id = None
        for i, step in enumerate(pull):
            name, inputs = _step(step)
            here = at + (i, name)
            short = name.rsplit(".", 1)[-1]
            if name.startswith(STEPS) and short in ("git_clone", "git_clone_project"):
                clone_id = inputs.get("id")
                git = self.git(inputs, here)
            elif name.startswith(STEPS) and short == "pip_install_requirements":
                directory = _STEP_OUTPUT.match(str(inputs.get("directory") or ""))
                if git is None or (inputs.get("directory") and not (directory and directory.group(1) == clone_id)):
                    self.warn(here, "pip_install_requirements outside a git clone is not converted: install the "
                                    "requirements in the image", "pull")
                    continue
                folder = directory.group(2) if directory else ""
                code["requirements"] = "/".join(p for p in (folder, inputs.get("requirements_file",
                                                                               "requirements.txt")) if p)
                if "stream_output" in inputs:
                    self.warn(here + ("stream_output",), "stream_output is not converted: pip's output goes to the "
                                                         "run's logs", "pull")
            elif name.startswith(STEPS) and short == "run_shell_script" and self.installs_project(inputs, git,
                                                                                                  clone_id):
                code["install"] = self.installs_project(inputs, git, clone_id)
                if re.search(r"\s(-e|--editable)\s", f" {inputs.get('script')} "):
                    self.warn(here + ("script",), "installed as a regular package (pip install PATH), not editable: "
                                                  "a run's clone is not edited", "pull")
            elif name.startswith(STEPS) and short == "set_working_directory":
                directory = str(inputs.get("directory") or "")
                inside = _STEP_OUTPUT.match(directory)
                if git is not None and inside and inside.group(1) == clone_id:
                    code["directory"] = inside.group(2) or "."
                elif git is None and not _TEMPLATE.search(directory):
                    code["directory"] = directory  # where the code is in a prebuilt image
                elif git is not None:
                    self.warn(here, f"working directory '{directory}' is not converted: with code.git, runs start "
                                    "in the manifest's folder of the clone (code.directory)", "pull")
                else:
                    self.warn(here, f"working directory '{directory}' is not converted: nothing fills its template "
                                    "when a run starts; write the folder the code is in (code.directory)", "pull")
            else:
                self.warn(here, f"pull step '{name}' is not converted: code: clones a repository, installs "
                                "requirements and the project itself, and sets the working directory; do other "
                                "setup in the image", "pull")
        if git is not None:
            code = {"git": git, **code}
        return code or None

    @staticmethod
    def installs_project(inputs: dict, git: dict | None, clone_id) -> str | None:
        """The folder a `pip install .` step in the clone installs, relative to the clone."""
        project = _PIP_INSTALL.match(str(inputs.get("script") or ""))
        directory = _STEP_OUTPUT.match(str(inputs.get("directory") or ""))
        if git is None or not project or not directory or directory.group(1) != clone_id:
            return None
        if set(inputs) - {"id", "requires", "script", "directory", "stream_output"}:
            return None
        return posixpath.normpath(posixpath.join(directory.group(2) or ".", project.group(1)))

    def git(self, inputs: dict, at: tuple) -> dict:
        repository = str(inputs.get("repository") or "")
        if _CREDENTIALS_IN_URL.search(repository):
            # e.g. a token a shell step fetched, written into the URL: the manifest names credentials instead
            self.warn(at + ("repository",), "the template in the repository URL's credentials is left out of the "
                                            "URL: name the credentials in code.git.credentials", "git")
            repository = _CREDENTIALS_IN_URL.sub("//", repository)
        if any(templates.kind(name, set()) != "env" for _, name in templates.placeholders(repository)):
            self.warn(at + ("repository",), f"the repository '{repository}' is kept as written: nothing fills its "
                                            "template when a run clones (prefect deploy registers it so too); write "
                                            "the repository's URL", "git")
        git: dict = {"repository": repository}
        ref = inputs.get("commit_sha") or inputs.get("branch")
        if ref:
            git["ref"] = str(ref)
            which = "commit_sha" if inputs.get("commit_sha") else "branch"
            found = templates.placeholders(str(ref))
            if any(templates.kind(name, set()) not in ("env",) for _, name in found):
                self.warn(at + (which,), f"the {which} '{ref}' is kept as written: nothing fills its template when "
                                         f"a run clones (prefect deploy registers it so too); write the {which}", "git")
        else:
            self.warn(at, "no branch: prefect deploy clones the default branch at run time; the manifest clones "
                          "the commit being deployed (set code.git.ref to follow a branch)", "git-ref")
        credentials = inputs.get("credentials") or inputs.get("access_token")
        if credentials:
            which = "credentials" if inputs.get("credentials") else "access_token"
            block, env = _BLOCK.match(str(credentials)), _ENV.match(str(credentials))
            if block:
                git["credentials"] = {"block": f"{block.group(1)}/{block.group(2)}"}
            elif env:
                git["credentials"] = {"token_env": env.group(1)}
            else:  # never repeat the value: it may be a secret written into prefect.yaml
                self.warn(at + (which,), f"{which} is not converted: name a Prefect block or an environment variable "
                                         "in code.git.credentials; a secret never belongs in a manifest", "secret")
        for key in [k for k in inputs if k not in ("id", "requires", "repository", "branch", "commit_sha",
                                                   "credentials", "access_token")]:
            self.warn(at + (key,), f"git_clone '{key}' is not converted", "git")
        return git


def _trigger_type(trigger: dict) -> str:
    """The type Prefect gives a deployment trigger that names none
    (prefect.events.schemas.deployment_triggers.deployment_trigger_discriminator)."""
    if trigger.get("posture") == "Metric":
        return "metric"
    if "triggers" in trigger:
        return "compound" if "require" in trigger else "sequence"
    return "event"


def _step(step) -> tuple[str, dict]:
    if isinstance(step, dict) and len(step) == 1:
        name, inputs = next(iter(step.items()))
        return str(name), inputs if isinstance(inputs, dict) else {}
    return str(step), {}


def _guess_pool_type(variables: dict) -> str | None:
    """A pool type from the shape of its cpu/memory variables; None when they could be several."""
    for pool_type in res.POOL_TYPES:  # a variable only one type's resources become names that type
        own = set(pool_type.variables) - {v for t in res.POOL_TYPES if t is not pool_type for v in t.variables}
        if own & set(variables):
            return pool_type.name
    cpu, memory = variables.get("cpu"), variables.get("memory")
    return next((t.name for t in sorted(res.POOL_TYPES, key=lambda t: t.guess_order) if t.looks_like
                 and t.looks_like(cpu, memory)), None)


def _resource_candidates(pool_type: str, variables: dict) -> list[dict]:
    """The resources that could have produced `variables`, most readable first (each checked by translating)."""
    kind = res.base_type(pool_type)
    cpu = variables.get("cpu_request", variables.get("cpu"))
    memory = variables.get("memory_request", variables.get("memory", variables.get("mem_limit")))
    cpus, memories = [None], [None]
    if cpu is not None:
        vcpu = (cpu / 1024) if kind == "ecs" and isinstance(cpu, (int, float)) else None
        cpus = [c for c in (_number(vcpu), cpu) if c is not None]
        if isinstance(cpu, str) and cpu.endswith("m"):
            cpus.insert(0, _number(float(cpu[:-1]) / 1000))
    if memory is not None:
        memories = [memory]
        docker = re.fullmatch(r"([0-9]+)([kmg])", memory) if isinstance(memory, str) else None
        if docker:  # docker's mem_limit: k, m and g are KiB, MiB and GiB
            memory = f"{docker[1]}{docker[2].upper()}i"
            memories.insert(0, memory)
        try:
            mib = res.parse_memory(memory if not isinstance(memory, float) else f"{memory}G")
        except res.UnitError:
            mib = None
        if mib is not None and mib == mib.to_integral_value():
            mib = int(mib)
            memories[:0] = ([f"{mib // 1024}Gi"] if mib % 1024 == 0 else []) + [f"{mib}Mi"]
        if isinstance(memory, float):
            memories.insert(0, f"{_number(memory)}G")
    return [{k: v for k, v in (("cpu", c), ("memory", m)) if v is not None} for c in cpus for m in memories]


def _number(value):
    if value is None:
        return None
    return int(value) if float(value).is_integer() else float(value)


MAX_NODES = 20_000  # values as written; a prefect.yaml of a hundred deployments has about 3,000
_NOT_A_MANIFEST = {"duplicate-key", "environment-variable", "environment-secret"}  # prefect.yaml has no ${}


def pool_types() -> tuple[str, ...]:
    """Every work pool type a manifest accepts: the declared ones (register/prefect/resources.py: POOL_TYPES)."""
    return res.names()


def read(path: Path) -> str:
    """The text of a prefect.yaml, refused (ValueError) beyond what a real one ever needs."""
    with path.open("rb") as file:
        raw = file.read(MAX_BYTES + 1)  # never more: the size is all the message needs
    if len(raw) > MAX_BYTES:
        size = path.stat().st_size / 1024 / 1024
        raise ValueError(str(Problem(str(path), 1, 1, f"the file is {size:.1f} MiB; a prefect.yaml to import may be at "
                                                      f"most {MAX_BYTES // 1024 // 1024} MiB", "import-file-size")))
    text, problem = decode(raw, str(path))
    if problem is not None:
        raise ValueError(str(problem))
    return text


def count(text: str, file: str) -> None:
    """Refuse (ValueError) a document of more than MAX_NODES values before reading it into positions, which
    takes about 0.1 ms a value; counting libyaml's events takes a hundredth of that."""
    loader = getattr(yaml, "CSafeLoader", yaml.SafeLoader)
    seen = 0
    try:
        for event in yaml.parse(text, Loader=loader):
            if isinstance(event, (yaml.ScalarEvent, yaml.CollectionStartEvent, yaml.AliasEvent)):
                seen += 1
                if seen > MAX_NODES:
                    line, col = event.start_mark.line + 1, event.start_mark.column + 1
                    raise ValueError(str(Problem(file, line, col, f"more than {MAX_NODES} values in one prefect.yaml "
                                                                  "(a real one holds a few thousand); split it or "
                                                                  "import a smaller file", "import-file-size")))
    except yaml.YAMLError:
        return  # a syntax error: parse() says where


def entrypoint_base(prefect_yaml: Path, data: dict, cwd: Path) -> Path:
    """The folder entrypoints are relative to, by prefect deploy's rule: the folder it runs in. That is the
    prefect.yaml's folder, unless the entrypoints are found only from `cwd` (`prefect deploy --prefect-file
    sub/prefect.yaml` run there, as in a monorepo)."""
    folder = prefect_yaml.parent
    files = [str(e["entrypoint"]).rpartition(":")[0] for e in data.get("deployments") or []
             if isinstance(e, dict) and isinstance(e.get("entrypoint"), str) and ":" in e["entrypoint"]]

    def found(base: Path) -> bool:
        return all((base / f).is_file() or (base / (f.replace(".", "/") + ".py")).is_file() for f in files)

    if not files or found(folder) or folder.resolve() == cwd.resolve():
        return folder
    return cwd if found(cwd) else folder


def convert(path: Path, *, environment: str = "prod", pool_types: dict[str, str] | None = None,
            cwd: Path | None = None) -> Conversion:
    """Convert the prefect.yaml at `path`. Raises ValueError for a file that is not a prefect.yaml, or one
    larger, deeper or more aliased than any real one."""
    text = read(path)
    count(text, str(path))
    source = parse(text, str(path))  # bounds nesting and what aliases expand to
    errors = [p for p in source.problems if p.severity == "error" and p.rule not in _NOT_A_MANIFEST]
    if errors or not isinstance(source.data, dict):
        raise ValueError("\n".join(map(str, errors)) or f"{path}: not a prefect.yaml (no mapping at the top)")
    loader = _Loader(text)
    try:
        data = loader.get_single_data()
    finally:
        loader.dispose()
    base = entrypoint_base(path, data, cwd or Path.cwd())
    note = "the current directory" if base != path.parent else None
    importer = _Importer(source, data, base, environment, pool_types or {}, note)
    manifest = importer.convert()
    return Conversion(manifest, sorted(set(importer.warnings)), loader.anchor_of_object, base,
                      sorted(importer.variables))


HEADER = ("# yaml-language-server: $schema=https://raw.githubusercontent.com/org/flow-register/v1/schemas/"
          "manifest.schema.json\n# Converted from {source} by `flow-register import`.\n")


def run(prefect_yaml: str, output: str | None, environment: str, pool_type_flags: list[str],
        environ: Mapping[str, str]) -> int:
    """The `import` command: convert, report what was left out, write, and validate what was written."""
    import sys

    from register.problems import Exit, UsageError
    from register.report.problems import print_problems

    source = Path(prefect_yaml)
    types = {}
    accepted = pool_types()
    for given in pool_type_flags or []:
        name, _, pool_type = given.partition("=")
        if not name or pool_type not in accepted:
            raise UsageError(f"--pool-type '{given}': write POOL=TYPE, TYPE one of {', '.join(accepted)}")
        types[name] = pool_type
    target = Path(output) if output else None
    if target is not None and target.exists():
        raise UsageError(f"{target} exists; remove it or give another -o")
    try:
        conversion = convert(source, environment=environment, pool_types=types)
    except ValueError as error:
        print(error, file=sys.stderr)
        return Exit.INVALID
    if any(p.severity == "error" for p in conversion.warnings):
        print_problems(conversion.warnings, excerpts=False)
        return Exit.INVALID
    text = conversion.text(HEADER.format(source=source.name))
    return write_and_validate(text, target, conversion.root, conversion.variables, conversion.warnings,
                              read_by="prefect deploy", environ=environ)


def write_and_validate(text: str, target: Path | None, root: Path, variables: list[str], warnings: list,
                       *, read_by: str, environ: Mapping[str, str]) -> int:
    """The end of every import: report what was left out, write the manifest (to `target`, or print it), and
    validate what was written; the exit code."""
    import os
    import sys
    import tempfile

    from register.manifest import load_manifest
    from register.problems import Exit, UsageError
    from register.report.problems import print_problems

    if target is not None and target.absolute().parent.resolve() != root.resolve():  # the folder, not a link's aim
        folder = os.path.relpath(root)
        suggested = os.path.normpath(os.path.join(folder, "flows.yaml"))
        raise UsageError(f"write the manifest in {folder} (-o {suggested}): its entrypoints are relative to it")
    print_problems(warnings, excerpts=False)
    if target is not None:
        try:
            files.write_text(target, text, new=True)  # never over a file, nor through a (dangling) link
        except (files.LinkRefused, FileExistsError) as error:
            raise UsageError(f"{target}: {error.strerror if isinstance(error, FileExistsError) else error}; "
                             "give another -o") from None
        written = target
    else:
        print(text, end="")
        with tempfile.NamedTemporaryFile("w", suffix=".yaml", dir=root, delete=False) as file:
            file.write(text)
        written = Path(file.name)
    # `{{ $VAR }}` and environment reads became `${VAR}`: read at deploy time, as the source read them. One not
    # set here is not a mistake in the manifest: what is written on its lines is left to the deploy that has it.
    unset = [v for v in variables if not environ.get(v)]
    try:
        manifest = load_manifest(written, environ=environ)
    finally:
        if target is None:
            written.unlink()
    lines = text.splitlines()
    waiting = {n for n, line in enumerate(lines, start=1) if any("${" + v + "}" in line for v in unset)}
    manifest.problems = [p for p in manifest.problems if p.line not in waiting]
    if unset:
        print(f"note: the manifest reads {', '.join(unset)} from the environment flow-register runs in, as {read_by} "
              "did; not set here, so what uses them was not checked", file=sys.stderr)
    problems = [p for p in manifest.problems if p.severity == "error"]
    if problems:
        print_problems(problems, excerpts=target is not None)
        return Exit.INVALID
    return Exit.OK
