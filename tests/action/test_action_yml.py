"""action.yml keeps the contract: DESIGN's inputs and outputs and the ones added since, every input
handed to the launcher through `env:` (never `${{ }}` inside a shell line), its shell no more than
starting the launcher, and a README whose reference sections are what scripts/reference.py writes
from action.yml and the schema."""

from __future__ import annotations

import re
import subprocess
import sys

import yaml
from support.action_repos import ROOT

from register.action.masking import SECRET_INPUTS

ACTION = yaml.safe_load((ROOT / "action.yml").read_text())

DESIGN_INPUTS = ["environment", "manifest", "working-directory", "work-pool", "cpu", "memory", "deployments",
                 "dry-run", "prune", "build", "push", "image-tag", "prefect-api-url", "prefect-api-key",
                 "prefect-api-auth-string", "registry-username", "registry-password", "aws-region"]
ADDED_INPUTS = ["comment", "github-token", "preview", "preview-active", "destroy", "concurrency", "lock-wait",
                "smoke", "smoke-timeout", "runtime", "registry-host", "changed-since", "prefect-account-id",
                "prefect-workspace-id", "rollback", "requests-per-minute"]
DESIGN_OUTPUTS = ["image", "plan", "deployments", "created", "updated", "unchanged", "deleted"]


def test_inputs_and_outputs_are_designs_plus_the_added_ones():
    assert list(ACTION["inputs"]) == DESIGN_INPUTS + ADDED_INPUTS
    assert list(ACTION["outputs"]) == DESIGN_OUTPUTS + ["changes", "changed", "images"]
    assert {n for n, s in ACTION["inputs"].items() if s.get("required")} == {"environment"}
    for name, output in ACTION["outputs"].items():
        assert output["value"] == f"${{{{ steps.register.outputs.{name} }}}}"


def test_one_step_hands_every_input_to_the_launcher_through_env():
    (step,) = ACTION["runs"]["steps"]
    assert step["id"] == "register"
    assert step["env"] == {f"INPUT_{name.upper().replace('-', '_')}": f"${{{{ inputs.{name} }}}}"
                           for name in ACTION["inputs"]}
    assert step["run"].strip() == "exec python3 -m register.action.launcher"
    assert step["working-directory"] == "${{ github.action_path }}"


def test_the_secret_inputs_are_the_ones_masked():
    said = {n for n, s in ACTION["inputs"].items() if "Masked in the log." in s["description"]}
    assert said == set(SECRET_INPUTS)


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
