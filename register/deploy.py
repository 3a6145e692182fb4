"""plan and deploy: manifest -> image -> plan -> apply -> report. (Being written: issue 3.)"""

from __future__ import annotations

from dataclasses import dataclass

from register.manifest import Overrides


@dataclass
class DeployOptions:
    manifest: str
    environment: str
    overrides: Overrides
    dry_run: bool = False
    prune: bool = False
    output: str = "text"  # text | json
    build: str = "auto"  # auto | always | never
    push: bool = True
    image_tag: str | None = None


def run(options: DeployOptions) -> int:
    raise NotImplementedError("deploy is being written (issue 3)")
