"""A small manifest written to a folder and loaded, for the offline tests of a section besides deployments."""

from __future__ import annotations

import textwrap

from register.manifest import load_manifest

# A pull request's manifest whose one flow file is the attacker's (the flow-source attack tests fill it in).
HOSTILE = """\
version: 1
project: hostile
defaults: {work_pool: {name: hostile-pool, type: docker}}
environments: {dev: {}}
deployments:
  - {name: hostile, entrypoint: flows/flow.py:hostile}
"""

FLOW = "from prefect import flow\n\n@flow\ndef f():\n    pass\n"


def with_section(tmp_path, section: str, environ=None):
    """Project p, environments dev and prod, one deployment `a` in a Docker pool, and `section` (YAML, as
    indented in the test) after them; loaded with `environ` as the caller's environment."""
    (tmp_path / "flows").mkdir(exist_ok=True)
    (tmp_path / "flows" / "f.py").write_text(FLOW)
    (tmp_path / "flows.yaml").write_text(textwrap.dedent("""\
        version: 1
        project: p
        defaults: {work_pool: {name: pool, type: docker}}
        environments: {dev: {}, prod: {}}
        deployments: [{name: a, entrypoint: flows/f.py:f}]
        """) + textwrap.dedent(section))
    return load_manifest(tmp_path / "flows.yaml", environ=environ or {})
