"""A loaded manifest: its data with positions, its problems, and one environment's resolved deployments."""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from functools import cached_property
from pathlib import Path

from register.flows import FlowNotFound, read_flow
from register.manifest.blocks import Block, resolve_blocks
from register.manifest.resolve import Deployment, Overrides, Variable, environment_names, resolve, resolve_variables
from register.manifest.source import Source
from register.manifest.webhooks import Webhook, resolve_webhooks
from register.problems import Problem


@dataclass
class Manifest:
    path: Path
    source: Source
    problems: list[Problem] = field(default_factory=list)
    dropped: set[tuple] = field(default_factory=set)  # paths the schema rejected (reported there)
    usable: dict | None = None  # the data less what the schema rejected (see schema.usable_part)

    @property
    def data(self) -> dict:
        return self.source.data

    @property
    def root(self) -> Path:
        """Entrypoints, the Dockerfile and the build context are relative to the manifest's folder."""
        return self.path.parent

    @cached_property
    def repository(self) -> Path:
        """The top of the git work tree holding the manifest, else the manifest's folder: every path in the
        manifest must resolve inside it (the image and a clone hold nothing else)."""
        folder = self.root.resolve()
        return next((p for p in (folder, *folder.parents) if (p / ".git").exists()), folder)

    def outside(self, relative: str) -> str | None:
        """Why `relative` (a path in the manifest) leaves the repository, or None when it stays inside."""
        if "\0" in relative:  # no file system takes it (and os.path would raise)
            return "is no path: it holds a NUL character"
        written = self.root / relative
        if not written.resolve().is_relative_to(self.repository):
            if Path(relative).is_absolute():
                return "is an absolute path outside the repository"
            if (self.root.resolve() / relative).resolve(strict=False) != Path(os.path.normpath(
                    self.root.resolve() / relative)):
                return "leads outside the repository through a symbolic link"
            return "is outside the repository"
        return None

    @property
    def project(self) -> str:
        return self.data["project"]

    @property
    def environments(self) -> list[str]:
        return environment_names(self.data)

    def errors(self) -> list[Problem]:
        return [p for p in self.problems if p.severity == "error"]

    def image(self, environment: str) -> dict | None:
        """The image settings of `environment`: the top-level `image` with the environment's over it."""
        base = self.data.get("image")
        override = (self.data["environments"].get(environment) or {}).get("image")
        if base is None and override is None:
            return None
        merged = {**(base or {}), **{k: v for k, v in (override or {}).items() if v is not None}}
        merged.setdefault("dockerfile", "Dockerfile")
        merged.setdefault("context", ".")
        if "workdir" not in merged:  # where the Dockerfile puts the code: its last WORKDIR, when it says
            from register.image.inspect import default_workdir
            merged["workdir"] = default_workdir(self.root, merged["dockerfile"]) or f"/opt/prefect/{self.project}"
        merged.setdefault("build_args", {})
        return merged

    def image_origin(self, environment: str, key: str) -> tuple:
        """Where `environment`'s image setting `key` was written: its override, or the top-level `image`."""
        override = ((self.data.get("environments") or {}).get(environment) or {}).get("image") or {}
        return ("environments", environment, "image", key) if key in override else ("image", key)

    def deployments(self, environment: str, overrides: Overrides | None = None) -> list[Deployment]:
        """The resolved deployments of `environment`, with their flow names and descriptions from source."""
        resolved = resolve(self.data, environment, overrides, self.source.nulls)
        for deployment in resolved:
            self._from_source(deployment)
        return resolved

    def variables(self, environment: str) -> list[Variable] | None:
        """The variables of `environment`; None when the manifest has no `variables:` (it manages none)."""
        return resolve_variables(self.usable if self.usable is not None else self.data, environment)

    def webhooks(self, environment: str) -> list[Webhook] | None:
        """The Cloud webhooks of `environment`; None when the manifest has no `webhooks:` (it manages none)."""
        return resolve_webhooks(self.usable if self.usable is not None else self.data, environment)
    def blocks(self, environment: str) -> list[Block] | None:
        """The block documents of `environment`; None when the manifest has no `blocks:` (it manages none)."""
        return resolve_blocks(self.usable if self.usable is not None else self.data, environment)

    def _from_source(self, deployment: Deployment) -> None:
        facts = read_flow(self.root, deployment.entrypoint)
        deployment.flow = facts.name
        if deployment.description is None:
            deployment.description = facts.description

    def checkable(self, environment: str, overrides: Overrides | None = None) -> list[Deployment]:
        """On a manifest with mistakes, the deployments that can still be checked against the server: those of
        the part the schema accepted, in a declared environment, with a work pool and a flow that can be read."""
        if self.usable is None or environment not in environment_names(self.usable):
            return []
        checkable = []
        for deployment in resolve(self.usable, environment, overrides, self.source.nulls):
            if not deployment.work_pool or self.outside(deployment.entrypoint.rsplit(":", 1)[0]):
                continue
            try:
                self._from_source(deployment)
            except FlowNotFound:
                continue
            checkable.append(deployment)
        return checkable
