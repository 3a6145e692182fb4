"""action.yml keeps the contract: DESIGN's inputs and outputs, every input handed to the registrar
through `env:` (never `${{ }}` inside a shell line), the same defaults as entrypoint.py, and a README
whose reference sections are what scripts/reference.py writes from action.yml and the schema."""

from __future__ import annotations

import importlib.util
import re
import subprocess
import sys

import yaml
from conftest import ROOT

ACTION = yaml.safe_load((ROOT / "action.yml").read_text())
spec = importlib.util.spec_from_file_location("entrypoint", ROOT / "entrypoint.py")
entrypoint = importlib.util.module_from_spec(spec)
spec.loader.exec_module(entrypoint)

DESIGN_INPUTS = ["environment", "manifest", "working-directory", "work-pool", "cpu", "memory", "deployments",
                 "dry-run", "prune", "build", "push", "image-tag", "prefect-api-url", "prefect-api-key",
                 "prefect-api-auth-string", "registry-username", "registry-password", "aws-region"]
DESIGN_OUTPUTS = ["image", "plan", "deployments", "created", "updated", "unchanged", "deleted"]


def step(step_id: str) -> dict:
    return next(s for s in ACTION["runs"]["steps"] if s.get("id") == step_id)


def test_inputs_and_outputs_are_designs_plus_the_runtime():
    assert list(ACTION["inputs"]) == DESIGN_INPUTS + ["runtime"]
    assert list(ACTION["outputs"]) == DESIGN_OUTPUTS
    assert {n for n, s in ACTION["inputs"].items() if s.get("required")} == {"environment", "prefect-api-url"}
    for name, output in ACTION["outputs"].items():
        assert output["value"] == f"${{{{ steps.register.outputs.{name} }}}}"


def test_every_input_reaches_the_registrar_through_env_and_no_shell_line_expands_an_expression():
    env = step("register")["env"]
    for name in DESIGN_INPUTS:
        assert env[f"INPUT_{name.upper().replace('-', '_')}"] == f"${{{{ inputs.{name} }}}}", name
    for s in ACTION["runs"]["steps"]:
        assert "${{" not in s.get("run", ""), s["name"]


def test_the_secrets_are_masked_by_the_first_step():
    first = ACTION["runs"]["steps"][0]
    assert first["name"] == "Mask secrets"
    masked = {v for v in first["env"].values()}
    assert masked == {f"${{{{ inputs.{name} }}}}" for name in entrypoint.SECRETS}


def test_defaults_match_the_entrypoints_which_a_docker_action_relies_on():
    for name, spec in ACTION["inputs"].items():
        assert name in entrypoint.INPUTS, name
        default = entrypoint.INPUTS[name]
        assert spec.get("default", None if spec.get("required") else "") == default, name
    assert set(entrypoint.INPUTS) == set(ACTION["inputs"])


def test_marketplace_metadata():
    assert ACTION["name"] and len(ACTION["description"]) <= 125
    assert ACTION["branding"]["icon"] and ACTION["branding"]["color"]


def test_readme_reference_sections_are_generated_from_action_yml_and_the_schema():
    check = subprocess.run([sys.executable, str(ROOT / "scripts" / "reference.py"), "--check"],
                           capture_output=True, text=True)
    assert check.returncode == 0, check.stderr
    readme = (ROOT / "README.md").read_text()
    for name in ACTION["inputs"]:
        assert re.search(rf"^\| `{re.escape(name)}` \|", readme, re.M), name


def test_the_readme_manifest_is_valid(tmp_path):
    from register.manifest import load_manifest

    readme = (ROOT / "README.md").read_text()
    example = re.search(r"A small manifest.*?```yaml\n(.*?)```", readme, re.S).group(1)
    (tmp_path / "flows").mkdir()
    (tmp_path / "flows" / "sales.py").write_text((ROOT / "examples" / "flows" / "sales.py").read_text())
    (tmp_path / "Dockerfile").write_text("FROM prefecthq/prefect:3-python3.11\n")
    (tmp_path / "flows.yaml").write_text(example)
    manifest = load_manifest(tmp_path / "flows.yaml")
    assert manifest.problems == []
    assert [d.name for d in manifest.deployments("prod")] == ["daily-sales-prod"]
