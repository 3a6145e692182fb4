"""`code:`: the pull steps a run gets, as `prefect deploy` registers them for the same intent."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

import pytest

from register.cli import main

HERE = Path(__file__).parent / "manifests"
STEP = "prefect.deployments.steps."
FLOW = (HERE / "flows" / "etl.py").read_text()


def repository(tmp_path: Path, manifest: str, folder: str = "pipelines") -> tuple[Path, str]:
    """A git checkout whose `folder` holds the manifest and a flow; returns (manifest, HEAD)."""
    root = tmp_path / folder
    (root / "flows").mkdir(parents=True)
    (root / "flows" / "etl.py").write_text(FLOW)
    (root / "requirements.txt").write_text("")
    (root / "flows.yaml").write_text(manifest)
    (root / "Dockerfile").write_text("FROM prefecthq/prefect:3-python3.11\n")  # render tags the image by content
    git = ["git", "-C", str(tmp_path), "-c", "user.name=t", "-c", "user.email=t@t"]
    subprocess.run([*git, "init", "-q"], check=True)
    subprocess.run([*git, "add", "."], check=True)
    subprocess.run([*git, "commit", "-qm", "flows"], check=True)
    head = subprocess.run([*git, "rev-parse", "HEAD"], check=True, capture_output=True, text=True).stdout.strip()
    return root / "flows.yaml", head


def render(capsys, manifest: Path, environment: str) -> dict:
    code = main(["render", "-f", str(manifest), "-e", environment])
    out, err = capsys.readouterr()
    assert code == 0, err
    return {d["name"]: d.get("pull_steps") for d in json.loads(out)["deployments"]}


MANIFEST = """\
version: 1
project: etl
image: {repository: registry.example/etl}
defaults:
  work_pool: pool
  code:
    git:
      repository: https://github.com/acme/flows.git
      credentials: {block: github-credentials/acme}
    requirements: requirements.txt
environments:
  dev: {}
  staging:
    code: {git: {ref: develop, credentials: {token_env: GITHUB_TOKEN}}}
  prod:
    code: null
deployments:
  - name: nightly
    entrypoint: flows/etl.py:nightly
    parameters: {region: eu}
  - name: pinned
    entrypoint: flows/etl.py:nightly
    parameters: {region: eu}
    code: {git: {repository: https://github.com/acme/flows.git, ref: 0123456789abcdef0123456789abcdef01234567,
                 credentials: {block: secret/flows-token}}, requirements: null, directory: ""}
"""


def test_clone_at_the_commit_being_deployed_with_requirements_and_the_manifests_folder(tmp_path, capsys):
    manifest, head = repository(tmp_path, MANIFEST)
    steps = render(capsys, manifest, "dev")
    assert steps["nightly"] == [
        {STEP + "git_clone": {"id": "clone-step", "repository": "https://github.com/acme/flows.git",
                              "commit_sha": head,
                              "credentials": "{{ prefect.blocks.github-credentials.acme }}"}},
        {STEP + "pip_install_requirements": {"directory": "{{ clone-step.directory }}",
                                             "requirements_file": "pipelines/requirements.txt"}},
        {STEP + "set_working_directory": {"directory": "{{ clone-step.directory }}/pipelines"}},
    ]
    # a full SHA is a commit, a Secret block is an access token, no requirements, the repository's top
    assert steps["pinned"] == [
        {STEP + "git_clone": {"repository": "https://github.com/acme/flows.git",
                              "commit_sha": "0123456789abcdef0123456789abcdef01234567",
                              "access_token": "{{ prefect.blocks.secret.flows-token }}"}}]


def test_per_environment_a_branch_with_a_token_variable_or_the_images_workdir(tmp_path, capsys):
    manifest, _ = repository(tmp_path, MANIFEST)
    staging = render(capsys, manifest, "staging")["nightly"]
    # credentials replace as a whole: the variable, not the variable and the block
    assert staging[0] == {STEP + "git_clone": {"id": "clone-step", "repository": "https://github.com/acme/flows.git",
                                               "branch": "develop", "access_token": "{{ $GITHUB_TOKEN }}"}}
    assert render(capsys, manifest, "prod")["nightly"] == [
        {STEP + "set_working_directory": {"directory": "/opt/prefect/etl"}}]


def test_no_commit_to_clone_outside_a_checkout_is_an_error_at_the_setting(tmp_path, capsys):
    (tmp_path / "flows").mkdir()
    (tmp_path / "flows" / "etl.py").write_text(FLOW)
    (tmp_path / "Dockerfile").write_text("FROM prefecthq/prefect:3-python3.11\n")
    (tmp_path / "flows.yaml").write_text(MANIFEST.replace("    requirements: requirements.txt\n", ""))
    assert main(["render", "-f", str(tmp_path / "flows.yaml"), "-e", "dev"]) == 1
    err = capsys.readouterr().err
    assert f"{tmp_path / 'flows.yaml'}:8:7: error: code.git has no ref and the manifest's folder is not a git " \
           "checkout" in err


def test_a_repository_must_be_named_in_some_layer(tmp_path, capsys):
    manifest, _ = repository(tmp_path, MANIFEST.replace("      repository: https://github.com/acme/flows.git\n", ""))
    assert main(["validate", "-f", str(manifest)]) == 1
    assert "flows.yaml:8:7: error: deployment 'nightly' clones no repository" in capsys.readouterr().err


@pytest.mark.parametrize("secret", ["{token: ghp_abcdefghijklmnopqrstuvwxyz0123}", "ghp_abcdefghijklmnopqrstuvwxyz0123"])
def test_a_secret_in_the_manifest_is_refused_and_never_printed(tmp_path, capsys, secret):
    manifest, _ = repository(tmp_path, MANIFEST.replace("{block: github-credentials/acme}", secret))
    assert main(["validate", "-f", str(manifest)]) == 1
    err = capsys.readouterr().err
    assert "defaults.code.git.credentials must name a Prefect block" in err
    assert "ghp_" not in err


def test_code_in_a_prebuilt_image_is_a_directory_without_git(tmp_path, capsys):
    manifest, _ = repository(tmp_path, MANIFEST.replace("    code: null\n", "    code: {git: null, requirements: null, "
                                                                         "directory: /srv/flows}\n"))
    assert render(capsys, manifest, "prod")["nightly"] == [
        {STEP + "set_working_directory": {"directory": "/srv/flows"}}]


@pytest.mark.parametrize("origin", ["https://github.com/acme/other.git", "git@github.com:acme/other.git"])
def test_another_repository_without_a_ref_is_refused_its_commit_is_not_there(tmp_path, capsys, origin):
    """Without a ref a clone is pinned to the commit being deployed: this checkout's, which another repository
    does not have. The same repository written another way (ssh, no .git, other case) is the same."""
    manifest, _ = repository(tmp_path, MANIFEST)
    subprocess.run(["git", "-C", str(tmp_path), "remote", "add", "origin", origin], check=True)
    assert main(["validate", "-f", str(manifest)]) == 1
    err = capsys.readouterr().err
    assert [line for line in err.splitlines() if "[code-ref]" in line] == [
        f"{manifest}:8:19: error: code.git clones github.com/acme/flows, not this checkout's repository "
        "(github.com/acme/other), and has no ref: the commit being deployed is not there; set ref (a branch, a tag "
        "or a full commit SHA of that repository) [code-ref]"]

    subprocess.run(["git", "-C", str(tmp_path), "remote", "set-url", "origin", "git@GitHub.com:acme/flows"], check=True)
    assert main(["validate", "-f", str(manifest)]) == 0, capsys.readouterr().err
