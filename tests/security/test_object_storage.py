"""Code uploaded to object storage (`code: {s3: ...}`): who writes the project's files cannot make the deploy
upload a credential, a file outside the project through a symbolic link, or anything at all on a plan.

Against moto's S3 server (the services' MOTO_URL, a stand-in for S3 on loopback); what is asserted is what
lands in the bucket.
"""

from __future__ import annotations

import os
import uuid
from pathlib import Path

import boto3
import pytest

from register.code import upload
from register.cli import main
from register.manifest import load_manifest
from support import stages
from support.services import services_env

SECRET = "AKIA-PLANTED-SECRET-0042"

MANIFEST = """\
version: 1
project: etl
defaults:
  work_pool: {{name: pool, type: process}}
  code:
    s3: {{bucket: {bucket}, folder: etl, credentials: {{block: aws-credentials/prod}}}}
environments:
  dev: {{}}
deployments:
  - name: hello
    entrypoint: flows/hello.py:hello
"""


@pytest.fixture
def bucket(monkeypatch):
    url = services_env().get("MOTO_URL")
    assert url, "no MOTO_URL in the services' env: run `bash .ci/services up`"
    for name, value in {"AWS_ENDPOINT_URL": url, "AWS_ACCESS_KEY_ID": "testing", "AWS_SECRET_ACCESS_KEY": "testing",
                        "AWS_DEFAULT_REGION": "us-east-1"}.items():
        monkeypatch.setenv(name, value)
    name = f"attack-{uuid.uuid4().hex[:10]}"
    client = boto3.client("s3")
    client.create_bucket(Bucket=name)
    return client, name


def stored(client, bucket: str) -> dict[str, bytes]:
    keys = [o["Key"] for o in client.list_objects_v2(Bucket=bucket).get("Contents", [])]
    return {k: client.get_object(Bucket=bucket, Key=k)["Body"].read() for k in keys}


def attacked_project(tmp_path: Path, bucket: str) -> Path:
    """Flow code plus every way a credential can sit in a checkout, and links out of it."""
    root, outside = tmp_path / "repo", tmp_path / "outside"
    (root / "flows").mkdir(parents=True)
    outside.mkdir()
    (outside / "credentials").write_text(f"aws_secret_access_key = {SECRET}\n")
    (root / "flows" / "hello.py").write_text("from prefect import flow\n\n@flow\ndef hello():\n    pass\n")
    (root / ".env").write_text(f"AWS_SECRET_ACCESS_KEY={SECRET}\n")
    (root / ".aws").mkdir()
    (root / ".aws" / "credentials").write_text(SECRET)
    (root / "gha-creds-0123456789abcdef.json").write_text(f'{{"private_key": "{SECRET}"}}')
    (root / ".git").mkdir()
    (root / ".git" / "config").write_text(f"[http]\n\textraheader = AUTHORIZATION: basic {SECRET}\n")
    (root / "deploy.pem").write_text(SECRET)
    os.symlink(outside / "credentials", root / "flows" / "settings.txt")  # a file link out of the project
    os.symlink(outside, root / "flows" / "shared")  # a folder link out of it
    (root / "flows.yaml").write_text(MANIFEST.format(bucket=bucket))
    return root / "flows.yaml"


def test_no_credential_file_or_link_out_of_the_project_reaches_the_bucket(tmp_path, bucket):
    client, name = bucket
    manifest = load_manifest(str(attacked_project(tmp_path, name)), "dev")
    assert not manifest.errors(), manifest.problems
    [done] = upload.prepare(upload.uploads_for(manifest, manifest.deployments("dev")), dry_run=False,
                            settings=stages.settings())
    objects = stored(client, name)
    assert sorted(k.rsplit("/", 1)[-1] for k in objects) == [done.prefix, "hello.py"], sorted(objects)
    assert all(SECRET.encode() not in body for body in objects.values())


def test_a_plan_uploads_nothing(tmp_path, bucket, capsys):
    client, name = bucket
    manifest = load_manifest(str(attacked_project(tmp_path, name)), "dev")
    [planned] = upload.prepare(upload.uploads_for(manifest, manifest.deployments("dev")), dry_run=True,
                               settings=stages.settings())
    assert planned.present is False and planned.uploaded == 0
    assert "would upload 1 file: dry run" in planned.line(dry_run=True)
    assert stored(client, name) == {}


def test_a_secret_in_place_of_the_block_is_refused_and_not_echoed(tmp_path, capsys):
    manifest = tmp_path / "flows.yaml"
    (tmp_path / "flows").mkdir()
    (tmp_path / "flows" / "hello.py").write_text("from prefect import flow\n\n@flow\ndef hello():\n    pass\n")
    manifest.write_text(MANIFEST.format(bucket="acme-flows").replace(
        "{block: aws-credentials/prod}", f"{{aws_access_key_id: AKIAEXAMPLE, aws_secret_access_key: {SECRET}}}"))
    assert main(["validate", "-f", str(manifest)]) == 1
    out, err = capsys.readouterr()
    assert "defaults.code.s3.credentials" in err and SECRET not in out + err
