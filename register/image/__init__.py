"""The image stage: content tag -> exists in registry? -> build -> push -> digest. (Being written: issue 4.)"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass
class Image:
    reference: str | None = None  # what deployments run: repository@sha256:... (or repository:tag in a dry run)
    content_tag: str | None = None  # hash of what goes into the image; the deployments' default version
    built: bool = False
    pushed: bool = False


def prepare(manifest, environment: str, *, build: str = "auto", push: bool = True, image_tag: str | None = None,
            dry_run: bool = False) -> Image:
    """The image for `environment`'s deployments; Image() when the manifest has no image."""
    return Image()
