"""A manifest with mistakes is still checked against the server, unless a mistake sits where a deployment's
name is made: the server is never asked about made-up names (it would answer with other projects'
deployments). Decided by where the mistake is, whatever its rule is called."""

from __future__ import annotations

import textwrap

import pytest

from register.commands.deploy import DeployOptions, load
from register.manifest import Overrides
from register.problems import Invalid
from register.report.reporters import Reporter
from register.settings import Settings

FLOW = "from prefect import flow\n\n@flow\ndef f():\n    pass\n"


def loaded(tmp_path, manifest: str):
    (tmp_path / "flows").mkdir(exist_ok=True)
    (tmp_path / "flows" / "f.py").write_text(FLOW)
    (tmp_path / "flows.yaml").write_text(textwrap.dedent(manifest))
    options = DeployOptions(str(tmp_path / "flows.yaml"), "dev", Overrides())
    return load(options, Settings(), Reporter())


def test_a_mistake_elsewhere_leaves_the_names_known_and_the_deployments_checkable(tmp_path):
    found = loaded(tmp_path, """\
        version: 1
        project: p
        defaults: {work_pool: {name: pool, type: docker}, name_template: "{name}-{environment}"}
        environments: {dev: {}}
        deployments:
          - {name: a, entrypoint: flows/f.py:f, environments: {staging: {}}}
        """)
    assert found.broken and [d.name for d in found.deployments] == ["a-dev"]


@pytest.mark.parametrize("template", ["{name}-{branch}", "{name}/x"])
def test_a_mistake_in_how_names_are_made_refuses_before_the_server_is_asked(tmp_path, template):
    with pytest.raises(Invalid) as refused:
        loaded(tmp_path, f"""\
            version: 1
            project: p
            defaults: {{work_pool: {{name: pool, type: docker}}, name_template: "{template}"}}
            environments: {{dev: {{}}}}
            deployments:
              - {{name: a, entrypoint: flows/f.py:f}}
            """)
    assert [p.line for p in refused.value.problems if p.severity == "error"] == [3]
