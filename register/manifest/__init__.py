"""The flow manifest: load it with positions, check it, resolve one environment's deployments.

    manifest = load_manifest("flows.yaml")        # never raises for a bad manifest
    manifest.problems                              # every problem found, offline
    manifest.deployments("dev", Overrides(...))    # resolved, with flow names filled in
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path

from register.manifest import checks, schema
from register.manifest.document import Manifest
from register.manifest.resolve import Deployment, Overrides
from register.manifest.source import load

__all__ = ["Manifest", "Deployment", "Overrides", "load_manifest"]


def load_manifest(path: str | Path, environment: str | None = None,
                  overrides: Overrides | None = None, environ: Mapping[str, str] | None = None, *,
                  parameters: bool = True) -> Manifest:
    """Load and check a manifest offline. `environment` (if given) must be declared; the overrides
    are checked as they apply to it. `environ`: the variables `${NAME}` in the manifest may use (none
    when not given; the command line passes its environment). `parameters=False`: see checks.check."""
    path = Path(path)
    source = load(path, environ)
    manifest = Manifest(path=path, source=source, problems=list(source.problems))
    if source.data is None:
        return manifest  # a document that did not parse cannot be checked further
    found = schema.errors(source.data)
    manifest.problems += checks.unset_variables(source, environment)
    # a value already reported while reading (a NaN, an unset variable) is not reported again by the schema
    read = {(p.line, p.col) for p in source.problems if p.severity == "error"}
    read |= {at for uses in source.unset.values() for _, at in uses}
    manifest.problems += [p for error in found for p in schema.problems_of(error, source) if (p.line, p.col) not in read]
    data = manifest.usable = schema.usable_part(source.data, found, manifest.dropped) if found else source.data
    if isinstance(data, dict):
        try:
            manifest.problems += [p for p in checks.check(manifest, environment, overrides, data=data, parameters=parameters)
                                  if (p.line, p.col) not in read or p.file != source.file]
        except (KeyError, TypeError, AttributeError, ValueError):
            if not found:
                raise  # on a schema-valid manifest a crash is a bug, not a user's problem
    manifest.problems = sorted(set(manifest.problems))
    return manifest
