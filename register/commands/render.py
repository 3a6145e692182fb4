"""`render`: one environment's deployments exactly as `deploy` would register them, offline.

The pools are taken to be of the types the manifest declares (with their default templates), and the
image is `repository:content-tag` computed from the files; `deploy` sends the same, with the image
pinned by digest and the pools' types read from the server.
"""

from __future__ import annotations

from register.engine import desired as desired_state
from register.image import offline
from register.manifest import Manifest, Overrides
from register.manifest.resolve import ownership_tags
from register.kinds.deployment import settle
from register.settings import Settings


def render(manifest: Manifest, environment: str, overrides: Overrides | None = None, *, settings: Settings) -> dict:
    """`settings`: the run's, for the commit being deployed (GitHub's context, git's variables)."""
    image = offline(manifest, environment)
    deployments = manifest.deployments(environment, overrides)
    states = desired_state.for_environment(manifest, environment, deployments, image=image, github=settings.github,
                                           environ=settings.environ,
                                           owner=ownership_tags(manifest.project, environment),
                                           pool=lambda d: desired_state.Pool(d.work_pool, d.work_pool_type))
    out = []
    for d, state in zip(deployments, states):
        state, _ = settle(state, None)  # as a first deploy writes it: unpaused, schedules on unless set
        entry = {"name": state.name, "flow": state.flow, "work_pool_type": d.work_pool_type, **state.fields,
                 "triggers": [t.automation for t in state.triggers]}
        if d.resources and not d.work_pool_type:
            entry["resources"] = d.resources  # translated at plan time, from the server's pool type
        out.append(entry)
    return {"project": manifest.project, "environment": environment,
            "image": {"reference": image.reference, "content_tag": image.content_tag} if image else None,
            "deployments": out}
