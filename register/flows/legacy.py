"""What a flow file written for Prefect 1 or 2 uses, told in Prefect 3's words.

`validate` reads a flow file for a `@flow` function; a Prefect 1 file has none (its flow is a `Flow(...)`
object), and a Prefect 2 deployment script names blocks and classes Prefect 3 no longer has. Saying only
"defines no @flow" leaves the user to find out why; this names the Prefect 3 equivalent of what is there.
"""

from __future__ import annotations

import ast

# module (or module.name) imported -> what it is in Prefect 3
HINTS = (
    ("prefect.Flow", "Prefect 1's `Flow(...)`/`with Flow(...)` is a function decorated with @flow in Prefect 3 "
                     "(from prefect import flow)"),
    ("prefect.run_configs", "Prefect 1's run configs (ECSRun, KubernetesRun, DockerRun, LocalRun) are a work pool "
                            "and the manifest's resources and job_variables"),
    ("prefect.storage", "Prefect 1's flow storage is the manifest's image or code:"),
    ("prefect.deployments.Deployment", "Prefect 2's Deployment.build_from_flow is a deployment of the manifest"),
    ("prefect.infrastructure", "Prefect 2's infrastructure blocks are a work pool and the manifest's resources and "
                               "job_variables"),
    ("prefect_aws.ecs.ECSTask", "Prefect 2's ECSTask is an ECS work pool and the manifest's resources"),
    ("prefect_gcp.cloud_run.CloudRunJob", "Prefect 2's CloudRunJob is a Cloud Run work pool and the manifest's "
                                          "resources"),
)


def hint(tree: ast.Module, file: str) -> str | None:
    """A sentence for a file that uses Prefect 1 or 2 concepts, naming their Prefect 3 equivalents."""
    imported = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom) and node.module:
            imported.add(node.module)
            imported |= {f"{node.module}.{a.name}" for a in node.names}
        elif isinstance(node, ast.Import):
            imported |= {a.name for a in node.names}
        elif isinstance(node, ast.Attribute) and isinstance(node.value, ast.Name) and node.value.id == "prefect":
            imported.add(f"prefect.{node.attr}")
    found = [text for name, text in HINTS
             if any(i == name or i.startswith(name + ".") for i in imported)]
    if not found:
        return None
    return (f"; it is Prefect 1 or 2 code: {'; '.join(found)}. `flow-register import {file}` converts the "
            "deployments it registers")
