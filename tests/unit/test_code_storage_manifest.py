"""`code: {s3: ...}` / `code: {gcs: ...}`, offline: the pull steps a run gets, the content prefix that names
them, and what `validate` refuses (bucket names, a missing credentials block, a secret instead of a block)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from register.cli import main

FLOW = (Path(__file__).parent / "manifests" / "flows" / "etl.py").read_text()

MANIFEST = """\
version: 1
project: etl
defaults:
  work_pool: {name: pool, type: process}
  code:
    s3:
      bucket: acme-flows
      folder: sales-etl
      credentials: {block: aws-credentials/prod}
environments:
  dev: {}
  gcp:
    code:
      s3: null
      gcs: {bucket: acme_flows, folder: teams/sales, credentials: {block: gcp-credentials/prod}}
      requirements: requirements.txt
deployments:
  - name: nightly
    entrypoint: flows/etl.py:nightly
    parameters: {region: eu}
"""


def project(tmp_path: Path, manifest: str = MANIFEST) -> Path:
    (tmp_path / "flows").mkdir(exist_ok=True)
    (tmp_path / "flows" / "etl.py").write_text(FLOW)
    (tmp_path / "requirements.txt").write_text("httpx\n")
    (tmp_path / "flows.yaml").write_text(manifest)
    return tmp_path / "flows.yaml"


def render(capsys, manifest: Path, environment: str) -> dict:
    code = main(["render", "-f", str(manifest), "-e", environment])
    out, err = capsys.readouterr()
    assert code == 0, err
    return json.loads(out)["deployments"][0]


def test_s3_and_gcs_pull_steps_name_the_block_and_the_content_prefix(tmp_path, capsys):
    manifest = project(tmp_path)
    dev = render(capsys, manifest, "dev")
    version = dev["version"]
    assert version.startswith("ct-")
    assert dev["pull_steps"] == [{"prefect_aws.deployments.steps.pull_from_s3": {
        "requires": "prefect-aws", "bucket": "acme-flows", "folder": f"sales-etl/{version}/",
        "credentials": "{{ prefect.blocks.aws-credentials.prod }}"}}]
    gcp = render(capsys, manifest, "gcp")
    assert gcp["pull_steps"] == [
        {"prefect_gcp.deployments.steps.pull_from_gcs": {
            "id": "pull-code", "requires": "prefect-gcp", "bucket": "acme_flows", "folder": f"teams/sales/{version}/",
            "credentials": "{{ prefect.blocks.gcp-credentials.prod }}"}},
        {"prefect.deployments.steps.pip_install_requirements": {"directory": "{{ pull-code.directory }}",
                                                                "requirements_file": "requirements.txt"}}]


def test_the_prefix_follows_the_flow_files_not_the_manifest_or_credentials(tmp_path, capsys):
    manifest = project(tmp_path)
    first = render(capsys, manifest, "dev")["version"]
    manifest.write_text(MANIFEST.replace("parameters: {region: eu}", "parameters: {region: us}"))
    (tmp_path / ".env").write_text("AWS_SECRET_ACCESS_KEY=x\n")
    assert render(capsys, manifest, "dev")["version"] == first
    (tmp_path / "flows" / "etl.py").write_text(FLOW + "\n# changed\n")
    assert render(capsys, manifest, "dev")["version"] != first


@pytest.mark.parametrize(("bucket", "said"), [
    ("s3://acme-flows", "'s3://acme-flows' is not a bucket name: write the bucket alone"),
    ("Acme_Flows", "'Acme_Flows' is not a valid s3 bucket name: 3 to 63 lowercase letters"),
    ("ab", "'ab' is not a valid s3 bucket name"),
    ("acme..flows", "'acme..flows' is not a valid s3 bucket name"),
    ("192.168.1.1", "'192.168.1.1' is not a valid s3 bucket name"),
])
def test_a_bad_bucket_name_is_an_error_at_its_line(tmp_path, capsys, bucket, said):
    manifest = project(tmp_path, MANIFEST.replace("bucket: acme-flows", f"bucket: '{bucket}'"))
    assert main(["validate", "-f", str(manifest)]) == 1
    err = capsys.readouterr().err
    assert f"{manifest}:7:15: error: {said}" in err and "[code-bucket]" in err


def test_a_gcs_bucket_name_follows_googles_rules(tmp_path, capsys):
    manifest = project(tmp_path, MANIFEST.replace("gcs: {bucket: acme_flows", "gcs: {bucket: google-flows"))
    assert main(["validate", "-f", str(manifest)]) == 1
    assert "'google-flows' is not a valid gcs bucket name" in capsys.readouterr().err


def test_credentials_must_name_a_block_of_the_steps_type(tmp_path, capsys):
    manifest = project(tmp_path, MANIFEST.replace("      credentials: {block: aws-credentials/prod}\n", ""))
    assert main(["validate", "-f", str(manifest)]) == 1
    err = capsys.readouterr().err
    assert f"{manifest}:7:7: error: code.s3 names no credentials block: runs pull the code with a Prefect block, " \
           "credentials: {block: aws-credentials/NAME}" in err
    manifest = project(tmp_path, MANIFEST.replace("{block: gcp-credentials/prod}", "{block: aws-credentials/prod}"))
    assert main(["validate", "-f", str(manifest)]) == 1
    assert "pull_from_gcs takes credentials from a block of type gcp-credentials, not 'aws-credentials'" \
        in capsys.readouterr().err


def test_a_key_written_into_the_manifest_is_refused_and_never_printed(tmp_path, capsys):
    secret = "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY"
    manifest = project(tmp_path, MANIFEST.replace("{block: aws-credentials/prod}",
                                                  f"{{aws_secret_access_key: {secret}}}"))
    assert main(["validate", "-f", str(manifest)]) == 1
    err = capsys.readouterr().err
    assert "defaults.code.s3.credentials" in err and secret not in err


def test_git_and_a_bucket_at_once_is_an_error(tmp_path, capsys):
    manifest = project(tmp_path, MANIFEST.replace("    parameters: {region: eu}\n", "    parameters: {region: eu}\n"
                                                  "    code: {git: {repository: 'https://github.com/acme/f.git', "
                                                  "ref: main}}\n"))
    assert main(["validate", "-f", str(manifest)]) == 1
    assert "code of deployment 'nightly' comes from git and s3; give one" in capsys.readouterr().err
