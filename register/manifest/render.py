"""The fully resolved deployments of one environment, as the registrar would register them (offline)."""

from __future__ import annotations

from register import code, resources as res
from register.manifest import Manifest, Overrides


def job_variables(deployment, pool_type: str | None) -> dict:
    """Resources translated for `pool_type`, then the raw job_variables (a clash is a manifest error)."""
    translated = res.translate(deployment.resources, pool_type).job_variables if pool_type else {}
    return {**translated, **deployment.job_variables}


def render(manifest: Manifest, environment: str, overrides: Overrides | None = None) -> dict:
    image = manifest.image(environment)
    deployments = manifest.deployments(environment, overrides)
    at = code.checkout(manifest.root) if any(d.code for d in deployments) else code.Checkout()
    out = []
    for deployment in deployments:
        entry = deployment.as_dict()
        entry["job_variables"] = job_variables(deployment, deployment.work_pool_type)
        if deployment.resources and not deployment.work_pool_type:
            entry["resources"] = deployment.resources  # translated at plan time, from the server's pool type
        if steps := code.pull_steps(manifest, deployment, image, at):
            entry["pull_steps"] = steps
        out.append(entry)
    return {"project": manifest.project, "environment": environment, "image": image, "deployments": out}
