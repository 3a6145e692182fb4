"""The work pools a deployment goes into, checked before anything is written.

Each pool is read once. A deployment's pool must exist; its type on the server must be the type the
manifest declares (when it declares one); resources are translated for the server's type; every
translated variable must be declared by the pool's base job template; and the final job variables
are validated against that template's JSON Schema the way the server will, but locally and all at once.
"""

from __future__ import annotations

import difflib
from dataclasses import dataclass, field
from typing import Callable

from jsonschema.exceptions import best_match

from register.manifest import Deployment, Manifest
from register.manifest.checks import ProblemReport, report_resources
from register.problems import Problem, one_of

@dataclass
class PoolCheck:
    types: dict[str, str] = field(default_factory=dict)  # deployment name -> the pool's type on the server
    job_variables: dict[str, dict] = field(default_factory=dict)  # deployment name -> job variables, image aside
    takes_image: dict[str, bool] = field(default_factory=dict)  # deployment name -> template declares 'image'
    problems: list[Problem] = field(default_factory=list)

    def errors(self) -> list[Problem]:
        return [p for p in self.problems if p.severity == "error"]


def _template_variables(pool: dict) -> dict:
    return ((pool.get("base_job_template") or {}).get("variables") or {}).get("properties") or {}


def check(manifest: Manifest, environment: str, deployments: list[Deployment], pools: dict[str, dict], *,
          image: str | None, pool_names: Callable[[], list[str]], server: str) -> PoolCheck:
    """Check every deployment against its pool. `image` stands in for the image reference (the schema
    check needs a value); `pool_names` lists the server's pools, asked only when one is missing."""
    out = PoolCheck()
    report = ProblemReport(manifest)
    for d in deployments:
        pool = pools.get(d.work_pool)
        if pool is None:
            existing = pool_names()
            choices = f"it has {one_of(existing)}" if existing else "it has no work pools"
            report.at(d.origin("work_pool"), f"work pool '{d.work_pool}' does not exist on {server}; {choices}",
                      "work-pool-missing")
            continue
        kind = pool["type"]
        out.types[d.name] = kind
        if d.work_pool_type and d.work_pool_type != kind:
            report.at(d.origin("work_pool", "type"),
                      f"work pool '{d.work_pool}' is of type '{kind}' on the server, but the manifest declares type "
                      f"'{d.work_pool_type}'; declare '{kind}' or register into a pool of type '{d.work_pool_type}'",
                      "work-pool-type")
            continue
        variables = _template_variables(pool)
        translation = report_resources(report, d, environment, kind)
        if translation.errors:
            continue
        on = f"on {kind} pool '{d.work_pool}'"
        missing = False
        for variable in translation.job_variables:
            if variable not in variables:
                source = "cpu" if "cpu" in variable else "memory"
                report.at(d.origin("resources", source),
                          f"resources.{source} becomes job variable '{variable}' {on}, but the pool's base job "
                          f"template declares no variable '{variable}'; add it to the template (and use it in the "
                          f"job configuration) or remove resources.{source}", "work-pool-variable")
                missing = True
        for variable in d.job_variables:
            if variable not in variables:
                close = difflib.get_close_matches(variable, list(variables), n=1)
                hint = f"did you mean '{close[0]}'?" if close else f"it declares {one_of(sorted(variables))}"
                report.at(d.origin("job_variables", variable),
                          f"job variable '{variable}' is not declared by the base job template of {kind} pool "
                          f"'{d.work_pool}', so workers ignore it; {hint}", "work-pool-variable", severity="warning",
                          key=True)
        job_variables = {**translation.job_variables, **d.job_variables}
        out.job_variables[d.name] = job_variables
        out.takes_image[d.name] = "image" in variables
        if missing:
            continue
        candidate = {"image": image, **job_variables} if image and "image" in variables else job_variables
        for path, message in _schema_errors(candidate, pool):
            report.at(_origin_of(d, manifest, environment, path[0], translation.job_variables),
                      f"work pool '{d.work_pool}' ({kind}) rejects job variable '{'.'.join(map(str, path))}': "
                      f"{message}", "job-variables-schema")
    out.problems = sorted(report.problems.values())
    return out


def _schema_errors(job_variables: dict, pool: dict) -> list[tuple[tuple, str]]:
    """What the server would refuse with a 422, found here: Prefect's own validator, required keys ignored."""
    schema = (pool.get("base_job_template") or {}).get("variables")
    if not schema or not job_variables:
        return []  # nothing to check: skip importing the validator (0.1 s of a warm run)
    from prefect.utilities.schema_tools.validation import validate

    errors = validate(job_variables, schema, raise_on_error=False, preprocess=True, ignore_required=True)
    out = []
    for error in errors:
        path = tuple(error.absolute_path)
        if not path:
            continue
        # Prefect makes optional variables `anyOf: [<the type>, null]`; say what the type wants.
        branches = [e for e in error.context or [] if e.validator_value != "null"]
        if error.validator == "anyOf" and branches:
            error = best_match(branches)
            path = tuple(error.absolute_path) or path
        out.append((path, error.message))
    return sorted(set(out), key=str)


def _origin_of(d: Deployment, manifest: Manifest, environment: str, variable: str, translated: dict) -> tuple:
    if variable in d.job_variables:
        return d.origin("job_variables", variable)
    if variable in translated:
        return d.origin("resources", "cpu" if "cpu" in variable else "memory")
    return manifest.image_origin(environment, "repository")
