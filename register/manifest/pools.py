"""The work pools a deployment goes into, checked at plan time before anything is written.

A deployment's pool must exist; its type on the server must be the type the manifest declares (when it
declares one); resources are translated for the server's type; every translated variable must be
declared by the pool's base job template; and the job variables `desired` builds are validated against
that template's JSON Schema the way the server will, but locally and all at once. Problems go into the
same report as the offline checks, worded the same.
"""

from __future__ import annotations

import difflib
from typing import Callable

from register.prefect import models
from register.prefect.resources import Pool, job_variables
from register.manifest.checks import ProblemReport, report_resources
from register.manifest.resolve import Deployment
from register.problems import one_of


def check(report: ProblemReport, environment: str, deployments: list[Deployment], pools: dict[str, Pool], *,
          image: str | None, pool_names: Callable[[], list[str]], server: str) -> None:
    """Check every deployment against its pool. `image` stands in for the image reference (the schema
    check needs a value); `pool_names` lists the server's pools, asked only when one is missing."""
    for d in deployments:
        pool = pools.get(d.work_pool)
        if pool is None:
            existing = pool_names()
            choices = f"it has {one_of(existing)}" if existing else "it has no work pools"
            report.at(d.origin("work_pool"), f"work pool '{d.work_pool}' does not exist on {server}; {choices}",
                      "work-pool-missing")
            continue
        kind = pool.type
        if d.work_pool_type and d.work_pool_type != kind:
            report.at(d.origin("work_pool", "type"),
                      f"work pool '{d.work_pool}' is of type '{kind}' on the server, but the manifest declares type "
                      f"'{d.work_pool_type}'; declare '{kind}' or register into a pool of type '{d.work_pool_type}'",
                      "work-pool-type")
            continue
        translation = report_resources(report, d, environment, kind, pool.variables or {})
        if translation.errors:
            continue
        declared = pool.declared
        on = f"on {kind} pool '{d.work_pool}'"
        missing = False
        for variable in translation.job_variables:
            if variable not in declared:
                source = "cpu" if "cpu" in variable else "memory"
                report.at(d.origin("resources", source),
                          f"resources.{source} becomes job variable '{variable}' {on}, but the pool's base job "
                          f"template declares no variable '{variable}'; add it to the template (and use it in the "
                          f"job configuration) or remove resources.{source}", "work-pool-variable")
                missing = True
        for variable in d.job_variables:
            if variable not in declared:
                close = difflib.get_close_matches(variable, list(declared), n=1)
                hint = f"did you mean '{close[0]}'?" if close else f"it declares {one_of(sorted(declared))}"
                report.at(d.origin("job_variables", variable),
                          f"job variable '{variable}' is not declared by the base job template of {kind} pool "
                          f"'{d.work_pool}', so workers ignore it; {hint}", "work-pool-variable", severity="warning",
                          key=True)
        if missing:
            continue
        for path, message in models.job_variable_problems(job_variables(d, pool, image), pool.variables):
            report.at(_origin_of(d, report, environment, path[0], translation.job_variables),
                      f"work pool '{d.work_pool}' ({kind}) rejects job variable '{'.'.join(map(str, path))}': "
                      f"{message}", "job-variables-schema")


def _origin_of(d: Deployment, report: ProblemReport, environment: str, variable: str, translated: dict) -> tuple:
    if variable in d.job_variables:
        return d.origin("job_variables", variable)
    if variable in translated:
        return d.origin("resources", "cpu" if "cpu" in variable else "memory")
    return report.manifest.image_origin(environment, "repository")
