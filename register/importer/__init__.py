"""`flow-register import`: a prefect.yaml turned into a flow manifest.

Each prefect.yaml deployment becomes a manifest deployment of one environment: its work pool and
queue, job variables (CPU and memory as `resources` when they translate back exactly), parameters,
schedules, triggers, tags, concurrency, version and description; `build` steps become `image:`, `pull`
steps `code:`. YAML anchors stay anchors under the manifest's `definitions`. What has no equivalent is
left out and reported at its line as a warning, never silently dropped.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path

import yaml

from register import resources as res
from register.manifest.source import Source, parse
from register.problems import Problem

STEPS = ("prefect.deployments.steps.", "prefect.projects.steps.")  # Prefect 3 and Prefect 2's names
_BLOCK = re.compile(r"^\{\{\s*prefect\.blocks\.([a-z0-9-]+)\.([^\s}]+)\s*\}\}$")
_ENV = re.compile(r"^\{\{\s*\$([A-Za-z_][A-Za-z0-9_]*)\s*\}\}$")
_STEP_OUTPUT = re.compile(r"^\{\{\s*([A-Za-z0-9_-]+)\.directory\s*\}\}/?(.*)$")
_TEMPLATE = re.compile(r"\{\{.*?\}\}")
_FULL_SHA = re.compile(r"^[0-9a-f]{40}$")
_SCHEDULE_KEYS = ("cron", "interval", "rrule", "timezone", "anchor_date", "day_or", "active", "parameters", "slug")
_TRIGGER_KEYS = ("type", "name", "enabled", "expect", "match", "match_related", "after", "for_each", "posture",
                 "threshold", "within", "parameters", "job_variables", "description", "metric", "triggers",
                 "require", "schedule_after")
# What a prefect.yaml deployment may say that needs no conversion (prefect deploy fills it in itself)
_IGNORED = {"flow_name", "build", "push", "pull", "schedule", "is_schedule_active"}


@dataclass
class Conversion:
    manifest: dict
    warnings: list[Problem] = field(default_factory=list)
    anchors: dict[int, str] = field(default_factory=dict)  # id(object) -> anchor name, for the dump

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
    def __init__(self, source: Source, data: dict, root: Path, environment: str, pool_types: dict[str, str]):
        self.source = source
        self.data = data
        self.root = root
        self.environment = environment
        self.pool_types = pool_types
        self.warnings: list[Problem] = []

    def warn(self, path: tuple, message: str, rule: str) -> None:
        self.warnings.append(self.source.problem(path, message, f"import-{rule}", severity="warning"))

    # -- the whole file -------------------------------------------------------------------------------
    def convert(self) -> dict:
        data = self.data
        if data.get("prefect-version"):
            self.warn(("prefect-version",), "prefect-version is not converted: the Prefect that runs your flows is "
                                            "the one in your image or requirements", "prefect-version")
        for key in [k for k in data if k not in ("name", "prefect-version", "build", "push", "pull", "deployments",
                                                 "definitions")]:
            self.warn((key,), f"top-level '{key}' is not converted; it has no meaning for prefect deploy either "
                              "unless it holds anchors (kept only when something uses them)", "unknown")
        image = self.image(data.get("build"), data.get("push"), ("build",), ("push",))
        top_code = self.code(data.get("pull"), ("pull",)) if data.get("pull") else None
        deployments = []
        for index, entry in enumerate(data.get("deployments") or []):
            if isinstance(entry, dict):
                deployments.append(self.deployment(entry, index, top_code, image))
        manifest: dict = {"version": 1, "project": slug(data.get("name") or self.root.name)}
        if isinstance(data.get("definitions"), dict):
            manifest["definitions"] = data["definitions"]  # the same objects: aliases below point into it
        if image:
            manifest["image"] = image
        self.hoist(manifest, deployments)
        manifest["deployments"] = deployments
        return manifest

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

    # -- one deployment -------------------------------------------------------------------------------
    def deployment(self, entry: dict, index: int, top_code: dict | None, image: dict | None) -> dict:
        at = ("deployments", index)
        out: dict = {"name": str(entry.get("name"))}
        out["entrypoint"] = self.entrypoint(entry.get("entrypoint"), at + ("entrypoint",))
        for key in ("description", "version"):
            if entry.get(key) is not None:
                out[key] = str(entry[key])
        if entry.get("tags"):
            out["tags"] = entry["tags"]
        if entry.get("parameters"):
            out["parameters"] = entry["parameters"]
        self.work_pool(entry.get("work_pool"), at + ("work_pool",), out, image)
        schedules = self.schedules(entry, at)
        if schedules:
            out["schedules"] = schedules
        if entry.get("triggers"):
            out["triggers"] = self.triggers(entry["triggers"], at + ("triggers",))
        self.concurrency(entry.get("concurrency_limit"), at + ("concurrency_limit",), out)
        if entry.get("paused") is not None:
            out["paused"] = bool(entry["paused"])
        if entry.get("enforce_parameter_schema") is False:
            out["enforce_parameter_schema"] = False
        if "pull" in entry:
            code = self.code(entry["pull"], at + ("pull",)) if entry["pull"] else None
        else:
            code = top_code
        if code is not None:
            out["code"] = code
        for key in ("build", "push"):
            if entry.get(key):
                self.warn(at + (key,), f"a deployment's own {key} steps are not converted: the manifest builds one "
                                       "image for every deployment (the top-level build)", "steps")
        known = {"name", "entrypoint", "description", "version", "tags", "parameters", "work_pool", "schedules",
                 "triggers", "concurrency_limit", "paused", "enforce_parameter_schema"} | _IGNORED
        for key in [k for k in entry if k not in known and entry[k] is not None]:
            self.warn(at + (key,), f"'{key}' is not converted: the manifest has no such setting", "unknown")
        return out

    def entrypoint(self, entrypoint, at: tuple) -> str:
        text = str(entrypoint or "")
        path, _, function = text.rpartition(":")
        if path and not path.endswith(".py") and re.fullmatch(r"[A-Za-z_][\w.]*", path):
            as_file = path.replace(".", "/") + ".py"
            if (self.root / as_file).is_file():
                self.warn(at, f"module path '{path}' written as the file '{as_file}': the manifest names flows by "
                              "file; the registered entrypoint is the file path", "entrypoint")
                return f"{as_file}:{function}"
            self.warn(at, f"module path '{path}' has no file '{as_file}' next to prefect.yaml; write the flow's "
                          "file path", "entrypoint")
        return text

    def work_pool(self, pool, at: tuple, out: dict, image: dict | None) -> None:
        if not isinstance(pool, dict) or not pool.get("name"):
            self.warn(at, "no work pool: set work_pool in the manifest (defaults or the environment)", "work-pool")
            return
        name = self.templated(pool["name"], at + ("name",))
        pool_type = self.pool_types.get(name)
        out["work_pool"] = {"name": name, "type": pool_type} if pool_type else name
        if pool.get("work_queue_name"):
            out["work_queue"] = pool["work_queue_name"]
        variables = dict(pool.get("job_variables") or {})
        if isinstance(variables.get("image"), str) and _TEMPLATE.search(variables["image"]) and image:
            del variables["image"]  # the image the build step made: flow-register fills in its own
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
        if entry.get("schedules") is not None:
            given, where = entry["schedules"], at + ("schedules",)
        elif entry.get("schedule"):  # Prefect 2's single schedule, with is_schedule_active beside it
            given, where = [dict(entry["schedule"], active=entry.get("is_schedule_active", True))], at + ("schedule",)
        else:
            return []
        converted = []
        for i, schedule in enumerate(given):
            here = where + (i,) if "schedules" in where else where
            kept = {k: v for k, v in schedule.items() if k in _SCHEDULE_KEYS and v is not None}
            if "interval" in kept and not isinstance(kept["interval"], (int, float)):
                self.warn(here + ("interval",), "interval kept as written; the manifest takes a number of seconds",
                          "schedule")
            for key in [k for k in schedule if k not in _SCHEDULE_KEYS and schedule[k] is not None]:
                if key == "active" or (key == "is_schedule_active"):
                    continue
                self.warn(here + (key,), f"schedule '{key}' is not converted: the manifest's schedules take "
                                         f"{', '.join(_SCHEDULE_KEYS)}", "schedule")
            if kept.get("active") is True and "schedules" not in where:
                del kept["active"]  # the default; say nothing a reader must wonder about
            converted.append(kept)
        # the same list when nothing changed: an anchored list of schedules stays an alias
        return given if converted == given else converted

    def triggers(self, triggers: list, at: tuple) -> list:
        converted = []
        for i, trigger in enumerate(triggers):
            for key in [k for k in trigger if k not in _TRIGGER_KEYS]:
                self.warn(at + (i, key), f"trigger '{key}' is not converted", "trigger")
            converted.append({k: v for k, v in trigger.items() if k in _TRIGGER_KEYS})
        return triggers if converted == triggers else converted

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

    def templated(self, value, at: tuple):
        if isinstance(value, str) and _TEMPLATE.search(value):
            self.warn(at, f"'{value}' is a template prefect deploy fills in when it runs; it is kept as written",
                      "template")
        return value

    # -- build/push -> image; pull -> code ------------------------------------------------------------
    def image(self, build, push, build_at: tuple, push_at: tuple) -> dict | None:
        image = None
        for i, step in enumerate(build or []):
            name, inputs = _step(step)
            here = build_at + (i, name)
            if name == "prefect_docker.deployments.steps.build_docker_image":
                image = {"repository": self.templated(inputs.get("image_name"), here + ("image_name",))}
                if inputs.get("dockerfile"):
                    image["dockerfile"] = inputs["dockerfile"]
                if inputs.get("buildargs"):
                    image["build_args"] = inputs["buildargs"]
                if inputs.get("platform"):
                    image["platform"] = inputs["platform"]
                if inputs.get("tag"):
                    self.warn(here + ("tag",), "the image tag is not converted: flow-register tags the image by its "
                                               "content (add one with --image-tag)", "image-tag")
                for key in [k for k in inputs if k not in ("id", "requires", "image_name", "tag", "dockerfile",
                                                          "buildargs", "platform")]:
                    self.warn(here + (key,), f"build_docker_image '{key}' is not converted", "image")
            else:
                self.warn(here, f"build step '{name}' is not converted: the manifest's image is built from a "
                                "Dockerfile (run other steps before flow-register in your workflow)", "steps")
        for i, step in enumerate(push or []):
            name, inputs = _step(step)
            if name == "prefect_docker.deployments.steps.push_docker_image":
                if inputs.get("credentials"):
                    self.warn(push_at + (i, name, "credentials"), "registry credentials are not converted: log in "
                              "to the registry before flow-register runs (or give registry-username/password)",
                              "registry")
            else:
                self.warn(push_at + (i, name), f"push step '{name}' is not converted", "steps")
        return image

    def code(self, pull: list, at: tuple) -> dict | None:
        git: dict | None = None
        code: dict = {}
        clone_id = None
        for i, step in enumerate(pull or []):
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
            elif name.startswith(STEPS) and short == "set_working_directory":
                directory = str(inputs.get("directory") or "")
                inside = _STEP_OUTPUT.match(directory)
                if git is not None and inside and inside.group(1) == clone_id:
                    code["directory"] = inside.group(2) or "."
                elif git is None and not _TEMPLATE.search(directory):
                    code["directory"] = directory  # where the code is in a prebuilt image
                else:
                    self.warn(here, f"working directory '{directory}' is not converted: with code.git, runs start "
                                    "in the manifest's folder of the clone (code.directory)", "pull")
            else:
                self.warn(here, f"pull step '{name}' is not converted: code: clones a repository, installs "
                                "requirements and sets the working directory; do other setup in the image", "pull")
        if git is not None:
            code = {"git": git, **code}
        return code or None

    def git(self, inputs: dict, at: tuple) -> dict:
        repository = str(inputs.get("repository") or "")
        if _TEMPLATE.search(repository):
            # e.g. a token a shell step fetched, written into the URL: the manifest names credentials instead
            self.warn(at + ("repository",), "a template in the repository URL is not converted: the URL is kept "
                                            "without it; name the credentials in code.git.credentials", "git")
            repository = re.sub(r"//[^/@]*\{\{.*?\}\}[^/@]*@", "//", repository)
        git: dict = {"repository": repository}
        ref = inputs.get("commit_sha") or inputs.get("branch")
        if ref:
            git["ref"] = str(ref)
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


def _step(step) -> tuple[str, dict]:
    if isinstance(step, dict) and len(step) == 1:
        name, inputs = next(iter(step.items()))
        return str(name), inputs if isinstance(inputs, dict) else {}
    return str(step), {}


def _guess_pool_type(variables: dict) -> str | None:
    """A pool type from the shape of its cpu/memory variables; None when they could be several."""
    if any(k in variables for k in ("cpu_request", "cpu_limit", "memory_request", "memory_limit")):
        return "kubernetes"
    if "mem_limit" in variables:
        return "docker"
    cpu, memory = variables.get("cpu"), variables.get("memory")
    if isinstance(cpu, str) or isinstance(memory, str):
        return "cloud-run-v2"
    if isinstance(cpu, int) and cpu >= 128 and (memory is None or isinstance(memory, int)):
        return "ecs"  # CPU units
    if isinstance(cpu, float) or isinstance(memory, float):
        return "azure-container-instance"
    return None


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


def convert(path: Path, *, environment: str = "prod", pool_types: dict[str, str] | None = None) -> Conversion:
    """Convert the prefect.yaml at `path`. Raises ValueError for a file that is not a prefect.yaml."""
    text = path.read_text(encoding="utf-8")
    source = parse(text, str(path))
    errors = [p for p in source.problems if p.severity == "error" and p.rule != "duplicate-key"]
    if errors or not isinstance(source.data, dict):
        raise ValueError("\n".join(map(str, errors)) or f"{path}: not a prefect.yaml (no mapping at the top)")
    loader = _Loader(text)
    try:
        data = loader.get_single_data()
    finally:
        loader.dispose()
    importer = _Importer(source, data, path.parent, environment, pool_types or {})
    manifest = importer.convert()
    return Conversion(manifest, sorted(importer.warnings), loader.anchor_of_object)


HEADER = ("# yaml-language-server: $schema=https://raw.githubusercontent.com/org/flow-register/v1/schemas/"
          "manifest.schema.json\n# Converted from {source} by `flow-register import`.\n")


def run(prefect_yaml: str, output: str | None, environment: str, pool_types: list[str]) -> int:
    """The `import` command: convert, report what was left out, write, and validate what was written."""
    import sys
    import tempfile

    from register.manifest import load_manifest
    from register.problems import Exit, UsageError
    from register.report.problems import print_problems

    source = Path(prefect_yaml)
    types = {}
    for given in pool_types or []:
        name, _, pool_type = given.partition("=")
        if not name or pool_type not in res.SUPPORTED + ("process",):
            raise UsageError(f"--pool-type '{given}': write POOL=TYPE, TYPE one of {', '.join(res.SUPPORTED)}")
        types[name] = pool_type
    target = Path(output) if output else None
    if target is not None and target.resolve().parent != source.resolve().parent:
        raise UsageError(f"write the manifest next to {source} (its entrypoints are relative to that folder)")
    if target is not None and target.exists():
        raise UsageError(f"{target} exists; remove it or give another -o")
    try:
        conversion = convert(source, environment=environment, pool_types=types)
    except ValueError as error:
        print(error, file=sys.stderr)
        return Exit.INVALID
    text = conversion.text(HEADER.format(source=source.name))
    print_problems(conversion.warnings, excerpts=False)
    if target is not None:
        target.write_text(text, encoding="utf-8")
        written = target
    else:
        print(text, end="")
        with tempfile.NamedTemporaryFile("w", suffix=".yaml", dir=source.parent, delete=False) as file:
            file.write(text)
        written = Path(file.name)
    try:
        manifest = load_manifest(written)
    finally:
        if target is None:
            written.unlink()
    problems = [p for p in manifest.problems if p.severity == "error"]
    if problems:
        print_problems(problems, excerpts=target is not None)
        return Exit.INVALID
    return Exit.OK
