"""A template that names a Prefect block or variable is checked against the server at plan time: a
missing one is an error at its line and nothing is written; once it exists, the deploy goes through."""

from __future__ import annotations

import pytest

pytestmark = pytest.mark.integration


def test_a_missing_block_or_variable_is_found_before_any_write(project, api):
    name = project.name
    extract = project.manifest["deployments"][0]
    extract["parameters"] = {"region": f"{{{{ prefect.variables.region_{name.replace('-', '_')} }}}}"}
    extract["job_variables"] = {"env": {"TOKEN": f"{{{{ prefect.blocks.secret.token-{name} }}}}"}}
    project.write()

    refused = project.cli("deploy", "-e", "dev")
    assert refused.code == 1, refused
    lines = project.root.joinpath("flows.yaml").read_text().splitlines()
    for needle, rule in ((f"block 'secret/token-{name}' does not exist", "block-missing"),
                         (f"variable 'region_{name.replace('-', '_')}' does not exist", "variable-missing")):
        problem = next(line for line in refused.err.splitlines() if needle in line)
        assert problem.endswith(f"[{rule}]") and "would fail when it starts" in problem
        line = int(problem.split(":")[1])
        assert ("TOKEN" if rule == "block-missing" else "region") in lines[line - 1]
    assert api.deployments(f"project:{name}") == {}

    # A Secret block, made through the API as the UI makes it (the server registers the type at start)
    block_type = api.http.get("/block_types/slug/secret").json()
    schema = api.post("/block_schemas/filter", {"block_types": {"slug": {"any_": ["secret"]}}})[0]
    api.post("/block_documents/", {"name": f"token-{name}", "data": {"value": "s3cr3t-value"},
                                   "block_type_id": block_type["id"], "block_schema_id": schema["id"]})
    api.post("/variables/", {"name": f"region_{name.replace('-', '_')}", "value": "eu"})
    done = project.deploy()
    assert done.code == 0, done
    assert "s3cr3t-value" not in done.out + done.err


def test_a_missing_block_every_deployment_inherits_is_one_problem_at_its_line(project, api):
    name = project.name
    project.manifest["defaults"]["job_variables"] = {"env": {"TOKEN": f"{{{{ prefect.blocks.secret.shared-{name} }}}}"}}
    project.write()
    refused = project.plan()
    assert refused.code == 1, refused
    found = [line for line in refused.err.splitlines() if f"block 'secret/shared-{name}' does not exist" in line]
    assert len(found) == 1, refused.err
    assert f"so runs of 'extract-{name}' and 'weekly-{name}' would fail when they start" in found[0]
    line = int(found[0].split(":")[1])
    assert "TOKEN" in project.root.joinpath("flows.yaml").read_text().splitlines()[line - 1]  # in defaults
    assert api.deployments(f"project:{name}") == {}
