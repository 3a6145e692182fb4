"""Checks that need more than the schema: names, environments, flows in source, parameters,
schedules, triggers and resources. Each resolved value is checked once per environment and reported
where it was written, so an error inherited from `defaults` points at `defaults`.
"""

from __future__ import annotations

import json

import re

import jsonschema

from register import code

from register.prefect import models
from register.prefect import resources as res
from register.prefect.fields import SLA_KEYS
from register.flows import FlowNotFound, Schemas, read_flow
from register.manifest import blocks, schema, webhooks
from register.manifest.document import Manifest
from register.manifest.resolve import (BANNED_CHARACTERS, COMMAND_LINE, PLACEHOLDERS, Deployment, Overrides,
                                       environment_names, resolve)
from register.problems import Problem, one_of


class ProblemReport:
    """Collects problems at manifest positions (or at a command-line flag), each once even when many
    deployments or environments share the spot. The plan-time pool checks use it too."""

    def __init__(self, manifest: Manifest):
        self.manifest = manifest
        self.problems: dict[tuple, Problem] = {}
        self.found: dict[str, object] = {}  # what a check learnt once for the whole manifest

    def at(self, path: tuple, message: str, rule: str, *, key: bool = False, severity: str = "error") -> None:
        if path and path[0] == COMMAND_LINE:  # (COMMAND_LINE, how the user wrote the override, ...)
            problem = Problem(path[1], 0, 0, message, rule, severity)
        else:
            problem = self.manifest.source.problem(path, message, rule, key=key, severity=severity)
        self.problems.setdefault((problem.file, problem.line, problem.col, problem.message), problem)


def check(manifest: Manifest, environment: str | None = None, overrides: Overrides | None = None, *,
          data: dict | None = None, parameters: bool = True) -> list[Problem]:
    """`data`: the manifest's data, or the part of it the schema accepted (see schema.usable_part).
    `parameters=False` leaves the checks that need flow schemas (parameter values, what a flow's signature
    hides) to `check_parameters`, which can take the schemas from the server."""
    report = ProblemReport(manifest)
    data = manifest.data if data is None else data
    declared = environment_names(data)
    _names_and_environments(report, data, declared)
    _variables(report, data, declared)
    webhooks.check(report, data, declared)
    blocks.check(report, data, declared, manifest.source, checked=[environment] if environment else declared)
    _image(report, manifest, data)
    code.check_secrets(report, manifest.data)
    if environment is not None and environment not in declared:
        report.problems[("env",)] = Problem((overrides or Overrides()).label("environment"), 0, 0,
                                            f"environment '{environment}' is not declared; "
                                            f"the manifest declares {one_of(declared)}", "environment")
        return list(report.problems.values())
    if overrides and overrides.only is not None:
        names = [d["name"] for d in data["deployments"] if d]
        for unknown in [n for n in overrides.only if n not in names]:
            report.problems[("only", unknown)] = Problem(
                overrides.label("only"), 0, 0, f"no deployment named '{unknown}'; the manifest has {one_of(names)}",
                "only")
    _paths(report, manifest, data)
    flows = _flows(report, manifest, data, Schemas() if parameters else None)
    _unused_pools(report, data, environment, overrides)
    for env in [environment] if environment else declared:
        deployments = resolve(data, env, overrides, manifest.source.nulls)
        _collisions(report, data, env, deployments)
        _registered_names(report, env, deployments)
        for deployment in deployments:
            _deployment(report, manifest, env, deployment, flows)
            _schedule_slugs(report, deployment)
    return list(report.problems.values())


MAX_VARIABLE_VALUE = 5000  # prefect.types.MAX_VARIABLE_VALUE_LENGTH: the server refuses a longer value (as JSON)


def _variables(report: ProblemReport, data: dict, declared: list[str]) -> None:
    """What the schema cannot say of `variables`: names unique, environments declared, values the server takes."""
    seen: dict[str, int] = {}
    for index, entry in enumerate(data.get("variables") or []):
        if not isinstance(entry, dict):
            continue
        name = entry["name"]
        if name in seen:
            report.at(("variables", index, "name"), f"variable name '{name}' is already used by variables[{seen[name]}]; "
                                                    "names must be unique", "duplicate-name")
        seen.setdefault(name, index)
        values = [(("variables", index, "value"), entry.get("value"))]
        for env, override in (entry.get("environments") or {}).items():
            if env not in declared:
                report.at(("variables", index, "environments", env),
                          f"environment '{env}' is not declared; declared environments are {one_of(declared)}",
                          "unknown-environment", key=True)
            if isinstance(override, dict) and "value" in override:
                values.append((("variables", index, "environments", env, "value"), override["value"]))
        for path, value in values:
            size = len(json.dumps(value, default=str))
            if size > MAX_VARIABLE_VALUE:
                report.at(path, f"variable '{name}': the value is {size} characters as JSON; the Prefect server takes "
                                f"at most {MAX_VARIABLE_VALUE}", "variable-value")


ENTRIES = ("deployments", "variables", "blocks", "webhooks")  # lists whose entries say where they are registered


def registered_in(entry, environment: str) -> bool:
    """Whether a deployment, variable, block or webhook of the manifest is registered in `environment`
    (`enabled: false`, for all or in that environment, leaves it out there)."""
    if not isinstance(entry, dict):
        return True
    override = (entry.get("environments") or {}).get(environment)
    override = override if isinstance(override, dict) else {}
    return override.get("enabled", entry.get("enabled", True)) is not False


def _environments_using(path: tuple, declared: list[str], data: dict | None = None) -> list[str]:
    """The environments a value written at `path` is part of: its own environment's, or all of them (an
    `x-` block is used only where an alias repeats it, and each alias is a path of its own); of an entry of
    `deployments`, `variables`, `blocks` or `webhooks`, only those it is registered in."""
    if path[:1] == ("environments",) and len(path) > 1:
        return [path[1]]
    if path and isinstance(path[0], str) and path[0].startswith("x-"):
        return []
    if path[:1] and path[0] in ENTRIES and len(path) > 1 and isinstance(path[1], int):
        using = [path[3]] if len(path) > 3 and path[2] == "environments" else list(declared)
        entries = (data or {}).get(path[0])
        entry = entries[path[1]] if isinstance(entries, list) and path[1] < len(entries) else None
        return [e for e in using if registered_in(entry, e)]
    return list(declared)


def unset_variables(source, environment: str | None) -> list[Problem]:
    """One problem per unset `${NAME}`, listing every line that uses it: an error where an environment being
    checked (`environment`, or every one) uses it, else a warning (each environment's job sets its own)."""
    data = source.data if isinstance(source.data, dict) else {}
    declared = environment_names(data) if data else []
    checked = [environment] if environment else declared
    problems = []
    for name, uses in source.unset.items():
        users = [e for e in declared if any(e in _environments_using(path, declared, data) for path, _ in uses)]
        lines = sorted({line for _, (line, _) in uses})
        on = f"line{'s' if len(lines) > 1 else ''} {_and(lines, quote=False)}"
        mine = [at for path, at in uses if set(checked) & set(_environments_using(path, declared, data))]
        fix = f"set it, or give a default: ${{{name}:-value}}"
        if mine:
            by = f"environment{'s' if len(users) > 1 else ''} {_and(users)}"
            message, severity = f"is not set and has no default (used on {on}, by {by}); {fix}", "error"
        elif users:
            message = (f"is not set and has no default, but only {_and(users)} use{'s' if len(users) == 1 else ''} "
                       f"it (on {on}), not '{environment}': set it when checking {_and(users)}, or give a default: "
                       f"${{{name}:-value}}")
            severity = "warning"
        else:
            message, severity = f"is not set, but no environment uses it (on {on})", "warning"
        line, col = min(mine or [at for _, at in uses])
        problems.append(Problem(source.file, line, col, f"environment variable '{name}' {message}",
                                "environment-variable", severity))
    return problems


def _and(items, quote: bool = True) -> str:
    """'a', 'b' and 'c'."""
    shown = [f"'{i}'" if quote else str(i) for i in items]
    return ", ".join(shown[:-1]) + " and " + shown[-1] if len(shown) > 1 else "".join(shown)


def _names_and_environments(report: ProblemReport, data: dict, declared: list[str]) -> None:
    seen: dict[str, int] = {}
    for index, entry in enumerate(data["deployments"]):
        if entry is None:
            continue
        name = entry["name"]
        if name in seen:
            report.at(("deployments", index, "name"), f"deployment name '{name}' is already used by "
                                                      f"deployments[{seen[name]}]; names must be unique", "duplicate-name")
        seen.setdefault(name, index)
        for env in entry.get("environments") or {}:
            if env not in declared:
                report.at(("deployments", index, "environments", env),
                          f"environment '{env}' is not declared; declared environments are {one_of(declared)}",
                          "unknown-environment", key=True)
    templates = [(("defaults", "name_template"), (data.get("defaults") or {}).get("name_template"))]
    templates += [(("environments", env, "name_template"), (spec or {}).get("name_template"))
                  for env, spec in data["environments"].items()]
    for path, template in templates:
        for placeholder in re.findall(r"{([^{}]*)}", template or ""):
            if placeholder not in PLACEHOLDERS:
                report.at(path, f"unknown placeholder '{{{placeholder}}}' in name_template; "
                                f"use {one_of('{' + p + '}' for p in PLACEHOLDERS)}", "name-template")


def _collisions(report: ProblemReport, data: dict, env: str, deployments: list[Deployment]) -> None:
    seen: dict[str, Deployment] = {}
    for deployment in deployments:
        first = seen.setdefault(deployment.name, deployment)
        if first is not deployment and first.manifest_name != deployment.manifest_name:
            report.at(("deployments", deployment.index, "name"),
                      f"in environment '{env}', '{deployment.manifest_name}' and '{first.manifest_name}' are both "
                      f"registered as '{deployment.name}'; make name_template include {{name}}", "name-collision")


def _rejected(manifest: Manifest, env: str, d: Deployment, key: str) -> bool:
    """Whether the schema rejected `key` (or a part holding it) in a layer of `d`: its absence from the
    resolved deployment follows from that problem and is not another one."""
    layers = [("defaults",), ("environments", env), ("deployments", d.index), ("deployments", d.index, "environments", env)]
    return any(layer[:len(gone)] == gone or (layer + (key,))[:len(gone)] == gone
               for layer in layers for gone in manifest.dropped if gone)


def _registered_names(report: ProblemReport, env: str, deployments: list[Deployment]) -> None:
    """The server refuses a deployment or work queue name with one of Prefect's banned characters;
    name_template's text can put one in after the schema checked each name."""
    for d in deployments:
        banned = sorted({c for c in d.name if c in BANNED_CHARACTERS})
        if banned or not d.name.strip():
            what = f"contains {one_of(banned)}" if banned else "is empty"
            report.at(d.origin("name_template"), f"in environment '{env}', deployment '{d.manifest_name}' would be "
                                                 f"registered as '{d.name}', which {what}; Prefect refuses names with "
                                                 f"{one_of(BANNED_CHARACTERS)}", "name-template")
        banned = sorted({c for c in d.work_queue or "" if c in BANNED_CHARACTERS})
        if banned:  # a queue the server would have to create, and cannot
            report.at(d.origin("work_queue"), f"work queue '{d.work_queue}' contains {one_of(banned)}; Prefect refuses "
                                              f"queue names with {one_of(BANNED_CHARACTERS)}", "work-queue")


def _schedule_slugs(report: ProblemReport, d: Deployment) -> None:
    """Two schedules of one deployment with one slug: the server answers 409 on every deploy."""
    first: dict[str, int] = {}
    for i, schedule in enumerate(d.schedules):
        slug = (schedule or {}).get("slug")
        if slug is None:
            continue
        if slug in first:
            report.at(d.origin("schedules", i, "slug"), f"schedule slug '{slug}' is already used by schedules[{first[slug]}] "
                                                        f"of deployment '{d.manifest_name}'; slugs must be unique "
                                                        "within a deployment", "schedule-slug")
        first.setdefault(slug, i)


def _image(report: ProblemReport, manifest: Manifest, data: dict) -> None:
    from register.image import value_problems  # the image stage's own rule, told at validate
    specs = [(("image",), data.get("image"))] + [
        (("environments", env, "image"), (spec or {}).get("image")) for env, spec in data["environments"].items()]
    for path, spec in specs:
        if not spec:
            continue
        _repository(report, path, spec.get("repository"))
        for pool, repository in (spec.get("repositories") or {}).items():
            _repository(report, path + ("repositories", pool), repository, key=())
        dockerfile = spec.get("dockerfile")
        if dockerfile and dockerfile != "auto" and not manifest.outside(dockerfile) and \
                not (manifest.root / dockerfile).is_file():
            report.at(path + ("dockerfile",), f"Dockerfile '{dockerfile}' does not exist; give its path relative to "
                                              "the manifest, or 'auto' to generate one", "image-dockerfile")
        if "base" in spec and dockerfile not in (None, "auto") and spec.get("dockerfile", "Dockerfile") != "auto":
            report.at(path + ("base",), "'base' only applies with dockerfile: auto; set the base image in your "
                                        "Dockerfile's FROM line instead", "image-base")
        context = spec.get("context")
        if context and not manifest.outside(context) and not (manifest.root / context).is_dir():
            report.at(path + ("context",), f"build context '{context}' is not a folder", "image-context")
        # Text that reaches a generated Dockerfile or Docker's arguments: one line, in its own grammar. A layer
        # is checked with the dockerfile it ends up with (the top-level one's, when an environment's leaves it).
        merged = {**(data.get("image") or {}), **spec} if path != ("image",) else dict(spec)
        merged.setdefault("dockerfile", "Dockerfile")
        for where, why in value_problems({k: v for k, v in merged.items() if k in spec or k == "dockerfile"}):
            if where[0] in spec:
                report.at(path + where, why, "image-value", key=why.startswith("build argument name"))


_REGISTRY_HOST = re.compile(r"[A-Za-z0-9]([A-Za-z0-9.-]*[A-Za-z0-9])?(:[0-9]+)?|\[[0-9A-Fa-f:]+\](:[0-9]+)?")


def _unused_pools(report: ProblemReport, data: dict, environment: str | None, overrides) -> None:
    """A work pool in `image.repositories` that no deployment of the environments it applies to runs on: a
    typo, or a pool renamed, would otherwise leave that pool's deployments on the default repository."""
    top = (data.get("image") or {}).get("repositories") or {}
    for env in [environment] if environment else environment_names(data):
        own = ((data["environments"].get(env) or {}).get("image") or {}).get("repositories")
        pools = own if own is not None else top
        path = ("environments", env, "image", "repositories") if own is not None else ("image", "repositories")
        if not pools:
            continue
        used = {d.work_pool for d in resolve(data, env, overrides, report.manifest.source.nulls) if d.work_pool}
        for pool in pools:
            if pool not in used:
                report.at(path + (pool,), f"no deployment of environment '{env}' runs on work pool '{pool}', so "
                                          f"nothing pulls from its repository; its deployments use "
                                          f"{one_of(sorted(used)) if used else 'no work pool'}",
                          "image-repositories-pool", key=True, severity="warning")


def _repository(report: ProblemReport, path: tuple, repository, key: tuple = ("repository",)) -> None:
    """The repository as deploy reads it, so that what validates can be built and pushed."""
    from register.image.registries import Repository

    if not isinstance(repository, str) or any(ord(c) < 32 or ord(c) == 127 for c in repository):
        return  # a control character: told once, by the image stage's rule (image-value)
    try:
        host = Repository.parse(repository).host
        if not _REGISTRY_HOST.fullmatch(host):
            raise ValueError(f"'{repository}' names the registry '{host}', which is not a host name (with an "
                             "optional :port)")
    except ValueError as error:
        template = ("; a Prefect template is filled by Prefect after flow-register has named, built and pushed the "
                    "image: write the repository, or ${VAR} for a variable of the environment flow-register runs in"
                    if "{{" in repository else "")
        report.at(path + key, f"image repository {error}{template}", "image-repository")


def _paths(report: ProblemReport, manifest: Manifest, data: dict) -> None:
    """Entrypoints, Dockerfiles, build contexts and requirements resolve inside the repository, symbolic
    links followed: a file outside it is in neither the image nor a clone, and is never read."""
    written = [(("deployments", i, "entrypoint"), "entrypoint file", entry["entrypoint"].rsplit(":", 1)[0])
               for i, entry in enumerate(data["deployments"]) if entry]
    images = [(("image",), data.get("image"))]
    images += [(("environments", env, "image"), (spec or {}).get("image")) for env, spec in data["environments"].items()]
    for path, image in images:
        if (image or {}).get("dockerfile") != "auto":
            written.append((path + ("dockerfile",), "Dockerfile", (image or {}).get("dockerfile")))
        written.append((path + ("context",), "build context", (image or {}).get("context")))
    layers = [(("defaults",), data.get("defaults"))]
    layers += [(("environments", env), spec) for env, spec in data["environments"].items()]
    for i, entry in enumerate(data["deployments"]):
        layers += [(("deployments", i), entry)] if entry else []
        layers += [(("deployments", i, "environments", env), spec)
                   for env, spec in ((entry or {}).get("environments") or {}).items()]
    for path, layer in layers:
        written.append((path + ("code", "requirements"), "requirements file",
                        ((layer or {}).get("code") or {}).get("requirements")))
    for path, what, value in written:
        if isinstance(value, str) and (reason := manifest.outside(value)):
            report.at(path, f"{what} '{value}' {reason}; the image and a clone hold only the repository's files: "
                            "move it inside the repository", "path-outside")


def _flows(report: ProblemReport, manifest: Manifest, data: dict, schemas: Schemas | None) -> dict[str, tuple | None]:
    """Each entrypoint's (facts, schema; None without `schemas`), or None when the entrypoint is broken
    (reported)."""
    flows: dict[str, tuple | None] = {}
    for index, entry in enumerate(data["deployments"]):
        if entry is None:
            continue
        entrypoint = entry["entrypoint"]
        if entrypoint in flows or manifest.outside(entrypoint.rsplit(":", 1)[0]):
            continue  # a file outside the repository is never read (see _paths)
        try:
            flows[entrypoint] = (read_flow(manifest.root, entrypoint),
                                 _schema(report, manifest, entrypoint, schemas) if schemas else None)
        except FlowNotFound as error:
            report.at(("deployments", index, "entrypoint"), str(error), error.rule)
            flows[entrypoint] = None
    return flows


def _schema(report: ProblemReport, manifest: Manifest, entrypoint: str, schemas: Schemas) -> dict:
    found = schemas.of(manifest.root, entrypoint)
    for warning in found.warnings:  # at the parameter in the flow's file
        report.problems.setdefault((warning.file, warning.line, warning.col, warning.message), warning)
    return found.schema


def check_parameters(manifest: Manifest, environment: str, deployments: list[Deployment],
                     schemas: Schemas) -> list[Problem]:
    """The checks `check(..., parameters=False)` left out, on a manifest it found no error in: each
    deployment's parameters against its flow's schema, and the warnings the flows' signatures give."""
    report = ProblemReport(manifest)
    flows: dict[str, tuple] = {}
    for d in deployments:
        if d.entrypoint not in flows:
            flows[d.entrypoint] = (read_flow(manifest.root, d.entrypoint),
                                   _schema(report, manifest, d.entrypoint, schemas))
        _parameters(report, d, *flows[d.entrypoint], env=environment)
    return sorted(report.problems.values())


# Prefect Cloud's SLA kinds, by the fields that make each (Prefect's client: TimeToCompletionSla, FrequencySla,
# LatenessSla; the Terraform provider adds freshness): the first whose fields are all given is the kind.
SLA_KINDS = {"time to completion": ("duration",), "frequency": ("stale_after",),
             "freshness": ("within", "expected_event"), "lateness": ("within",)}
_SLA_OWN = set(SLA_KEYS) - {"name", "severity", "enabled"}  # SLA_KEYS: what an SLA says (register/prefect/fields.py)


def _slas(report: ProblemReport, d: Deployment) -> None:
    """Each SLA is one kind, and names one SLA of the deployment (Cloud matches them by name)."""
    seen: set[str] = set()
    for i, sla in enumerate(d.slas or []):
        if not isinstance(sla, dict) or not isinstance(sla.get("name"), str):
            continue  # the schema says what is wrong
        if sla["name"] in seen:
            report.at(d.origin("sla", i, "name"), f"SLA '{sla['name']}' is named twice in deployment "
                                                 f"'{d.manifest_name}'; Prefect Cloud matches SLAs by name: give each "
                                                 "its own", "sla-name")
        seen.add(sla["name"])
        given = {k for k in _SLA_OWN if sla.get(k) is not None}
        kind = next((k for k, needs in SLA_KINDS.items() if set(needs) <= given), None)
        extra = given - set(SLA_KINDS[kind]) - ({"resource_match"} if kind == "freshness" else set()) if kind else set()
        if kind is None or extra:
            kinds = "; ".join(f"{k}: {' and '.join(v)}" for k, v in SLA_KINDS.items())
            what = f"mixes {kind} with {', '.join(sorted(extra))}" if kind else "says no kind"
            report.at(d.origin("sla", i), f"SLA '{sla['name']}' {what}; an SLA is one kind, by its fields "
                                          f"({kinds}; resource_match only with freshness)", "sla-kind")


def _deployment(report: ProblemReport, manifest: Manifest, env: str, d: Deployment, flows: dict) -> None:
    if not d.work_pool and not _rejected(report.manifest, env, d, "work_pool"):
        report.at(("deployments", d.index, "name"),
                  f"deployment '{d.manifest_name}' has no work_pool in environment '{env}'; set one in defaults, "
                  f"environments.{env} or the deployment", "work-pool")
    if d.resources or d.job_variables or res.code_problem(d.work_pool_type, d.code):
        report_resources(report, d, env, d.work_pool_type)
    flow = flows.get(d.entrypoint)
    if flow is not None and flow[1] is not None:
        _parameters(report, d, *flow, env=env)
    if isinstance(d.concurrency_limit, int) and d.concurrency_limit > models.MAX_CONCURRENCY_LIMIT:
        report.at(d.origin("concurrency_limit", "limit"),
                  f"concurrency_limit {models.shown(d.concurrency_limit)} is more than the server stores: give a whole number from 1 "
                  f"to {models.MAX_CONCURRENCY_LIMIT} (its database column holds 32 bits)", "range")
    for i, schedule in enumerate(d.schedules):
        if schedule:  # None: rejected by the schema, reported there
            _schedule(report, d.origin("schedules", i), schedule)
    for i, trigger in enumerate(d.triggers):
        if trigger:
            _trigger(report, d.origin("triggers", i), trigger)
    _slas(report, d)
    if "image" in d.job_variables and manifest.image(env) is not None and \
            not (d.code and (d.code.get("directory") or d.code.get("git") or code.storage(d.code))):
        # An error, not a warning: the run would start in the built image's workdir inside another image,
        # where the code checked here is not. Saying where the code is in that image (or cloning it) is
        # how a manifest says it means another image.
        report.at(d.origin("job_variables", "image"),
                  "job_variables.image replaces the image flow-register builds, so runs would not run the code "
                  "checked and built here; remove it, or, to run another image on purpose, say where the code is in "
                  "it (code.directory), clone it (code.git) or pull it from a bucket (code.s3, code.gcs)",
                  "job-variables-image")
    if d.code:
        code.check(report, manifest.root, d)


def report_resources(report: ProblemReport, d: Deployment, environment: str, pool_type: str | None,
                     template_variables: dict | None = None):
    """Translate `d`'s resources for `pool_type` (the manifest's offline, the server's at plan time) and
    report what the platform refuses, worded the same either way so a repeat is one problem.
    `template_variables`: the pool's base job template's (at plan time), which can say where ECS runs."""
    launch = res.ecs_launch(d.job_variables, template_variables)
    translation = res.translate(d.resources, pool_type, launch)
    # Units are wrong everywhere alike; a platform limit is wrong for this environment's pool.
    context = f"environment '{environment}', {pool_type} pool '{d.work_pool}': " if pool_type else ""
    for field, message, rule in translation.errors:
        report.at(d.origin("resources", field), message if rule == "resources-unit" else context + message, rule)
    for field, message, rule in translation.warnings:
        report.at(d.origin("resources", field), context + message, rule, severity="warning")
    if pool_type:
        for variable in sorted(res.variables_for(pool_type, d.resources) & set(d.job_variables)):
            source = "resources.cpu" if "cpu" in variable else "resources.memory"
            report.at(d.origin("job_variables", variable), f"job_variables.{variable} is also set by {source}; "
                                                           "set it in one place", "job-variables-clash", key=True)
        _raw_resources(report, d, context, pool_type, launch)
        if problem := res.code_problem(pool_type, d.code):
            report.at(d.origin("work_pool"), context + problem, "managed-code")
    return translation


def _raw_resources(report: ProblemReport, d: Deployment, context: str, pool_type: str, launch: res.Launch) -> None:
    """Raw `cpu` and `memory` job variables get the platform's limits too, unless `resources` sets them."""
    raw = {k: v for k, v in d.job_variables.items() if k not in res.variables_for(pool_type, d.resources)}
    checked = res.check_job_variables(raw, pool_type, d.resources, launch)
    for variable, message, rule in checked.errors:
        report.at(d.origin("job_variables", variable), f"{context}job_variables.{variable}: {message}", rule)
    for variable, message, rule in checked.warnings:
        report.at(d.origin("job_variables", variable), f"{context}job_variables.{variable}: {message}", rule,
                  severity="warning")


def _parameters(report: ProblemReport, d: Deployment, facts, schema: dict, env: str = "") -> None:
    properties = {k: v for k, v in schema.get("properties", {}).items() if k not in facts.var_names}
    given = [(("parameters",), d.parameters)]  # the deployment's, each schedule's and each trigger's
    given += [(("schedules", i, "parameters"), s.get("parameters") or {}) for i, s in enumerate(d.schedules) if s]
    given += [(("triggers", i, "parameters"), t.get("parameters") or {}) for i, t in enumerate(d.triggers) if t]
    for at, parameters in given:
        for name, value in parameters.items():
            where = d.origin(*at, name)
            if name not in properties:
                if not facts.takes_any_keyword:
                    choices = f"it takes {one_of(properties)}" if properties else "it takes no parameters"
                    report.at(where, f"flow '{facts.name}' has no parameter '{name}'; {choices}",
                              "parameter-unknown", key=True)
                continue
            if at[0] == "triggers" and isinstance(value, (str, dict)):
                continue  # trigger parameters may be templates of the event ({{ event.payload... }})
            definitions = schema.get("definitions", {})
            validator = jsonschema.Draft202012Validator({**properties[name], "definitions": definitions,
                                                         "$defs": definitions})
            error = jsonschema.exceptions.best_match(validator.iter_errors(value))
            if error is not None:
                # with enforce_parameter_schema: false the server takes any value; the flow may still cope
                report.at(where, f"parameter '{name}' {_expected(error)}", "parameter-type",
                          severity="error" if d.enforce_parameter_schema else "warning")
    active = [s for s in d.schedules if s and s.get("active", True)]
    for name in [n for n in schema.get("required", []) if n not in facts.var_names]:
        if active and name not in d.parameters and not _rejected(report.manifest, env, d, "parameters") and not all(name in (s.get("parameters") or {}) for s in active):
            report.at(d.origin("schedules"), f"deployment '{d.name}' runs on a schedule but the flow's required "
                                             f"parameter '{name}' has no value; set parameters.{name}",
                      "parameter-required")


def _expected(error: jsonschema.ValidationError) -> str:
    """'must be a whole number or null; got the string 'ten'' from a parameter's schema error."""
    branches = error.schema.get("anyOf") or error.schema.get("oneOf") if isinstance(error.schema, dict) else None
    types = [b.get("type") for b in branches or [error.schema] if isinstance(b, dict)]
    if error.validator in ("type", "anyOf", "oneOf") and all(isinstance(t, str) for t in types) and types:
        names = " or ".join(dict.fromkeys(schema.TYPE_NAMES.get(t, t) for t in types))
        where = "" if not error.relative_path else \
            f" at {'.'.join(map(str, error.relative_path))}"
        return f"must be {names}{where}; got {schema.describe(error.instance)}"
    return f"is invalid: {error.message}"


def _schedule(report: ProblemReport, path: tuple, schedule: dict) -> None:
    for field, message in models.schedule_problems(schedule):
        report.at(path + (field,), message, f"schedule-{field.replace('_', '-')}")


def _trigger(report: ProblemReport, path: tuple, trigger: dict) -> None:
    for loc, message in models.trigger_problems(trigger):
        name = ".".join(map(str, loc)) or "trigger"
        report.at(path + loc, f"trigger rejected by Prefect: {name}: {message}", "trigger")
