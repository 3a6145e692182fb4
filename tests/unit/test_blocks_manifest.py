"""`blocks:` offline: the block types known (from Prefect's, prefect-aws's and prefect-gcp's own classes),
each block resolved per environment, secrets only from the environment and never in what a report shows."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from register.kinds import block
from register.manifest.blocks import catalog
from register.report import formats as report
from support.manifests import with_section as manifest

ROOT = Path(__file__).resolve().parents[2]


def test_the_block_types_are_what_the_installed_packages_classes_say():
    checked = subprocess.run([sys.executable, str(ROOT / "scripts" / "block_types.py"), "--check"],
                             capture_output=True, text=True)
    assert checked.returncode == 0, checked.stderr
    known = catalog()
    assert {"secret", "aws-credentials", "s3-bucket", "gcp-credentials", "gcs-bucket", "webhook"} <= set(known)
    assert {k.package for k in known.values()} == {"prefect", "prefect-aws", "prefect-gcp"}
    assert known["aws-credentials"].secrets == ["aws_secret_access_key"]
    assert known["secret"].secrets == ["value"]
    assert known["gcp-credentials"].secrets == ["service_account_info"]
    assert known["webhook"].secrets == ["headers", "url"]
    assert known["s3-bucket"].secrets == [] and known["s3-bucket"].references == {
        "credentials": ["minio-credentials", "aws-credentials"]}


def test_a_block_takes_its_environment_s_fields_and_a_secret_from_the_environment(tmp_path):
    loaded = manifest(tmp_path, """\
        blocks:
          - type: aws-credentials
            name: aws
            fields: {aws_secret_access_key: "${AWS_SECRET_ACCESS_KEY}", region_name: eu-west-1, profile_name: x}
            environments:
              prod: {fields: {region_name: us-east-1, profile_name: null}}
          - {type: secret, name: tok, fields: {value: "${TOKEN}"}, environments: {dev: {enabled: false}}}
        """, environ={"AWS_SECRET_ACCESS_KEY": "s3cr3t-aws", "TOKEN": "s3cr3t-token"})
    assert loaded.errors() == [] and [p for p in loaded.problems if "looks like a secret" in p.message] == []
    dev = {b.key: b.fields for b in loaded.blocks("dev")}
    assert dev == {"aws-credentials/aws": {"aws_secret_access_key": "s3cr3t-aws", "region_name": "eu-west-1",
                                           "profile_name": "x"}}
    prod = {b.key: b.fields for b in loaded.blocks("prod")}
    assert prod == {"aws-credentials/aws": {"aws_secret_access_key": "s3cr3t-aws", "region_name": "us-east-1"},
                    "secret/tok": {"value": "s3cr3t-token"}}
    assert manifest(tmp_path, "").blocks("dev") is None
    assert manifest(tmp_path, "blocks: []\n").blocks("dev") == []


def test_a_secret_is_never_in_what_the_plan_shows_and_a_change_of_it_is_said_as_secret_changed(tmp_path):
    loaded = manifest(tmp_path, """\
        blocks:
          - {type: aws-credentials, name: aws, fields: {aws_secret_access_key: "${AWS_SECRET_ACCESS_KEY}",
             region_name: eu-west-1}}
        """, environ={"AWS_SECRET_ACCESS_KEY": "s3cr3t-new"})
    want = block.items(loaded.blocks("dev"), "p", "dev")[0]
    have = block._registered({"id": "1", "name": "aws", "block_type": {"slug": "aws-credentials"}, "updated": "t",
                              "data": {"aws_secret_access_key": "s3cr3t-old", "region_name": "eu-west-1"}}, {})
    assert "s3cr3t" not in repr(want) + repr(want.fields) + repr(have) + repr(have.fields)
    changes = block.compare(want, have)
    assert [c.field for c in changes] == ["aws_secret_access_key"]
    assert report.change_lines(changes[0]) == ["aws_secret_access_key: secret changed"]
    assert "s3cr3t" not in repr(changes)
    assert want.fingerprint() == block.items(manifest(tmp_path, """\
        blocks:
          - {type: aws-credentials, name: aws, fields: {aws_secret_access_key: "${AWS_SECRET_ACCESS_KEY}",
             region_name: eu-west-1}}
        """, environ={"AWS_SECRET_ACCESS_KEY": "another"}).blocks("dev"), "p", "dev")[0].fingerprint()
    have.secrets["aws_secret_access_key"] = "s3cr3t-new"
    assert block.compare(want, have) == []


def test_block_mistakes_name_the_valid_choices_and_never_repeat_a_secret(tmp_path):
    loaded = manifest(tmp_path, """\
        blocks:
          - {type: secrets, name: a}
          - {type: secret, name: b, fields: {value: hunter2-literal}}
          - {type: secret, name: c, fields: {value: "${TOKEN:-hunter3-default}"}}
          - {type: s3-bucket, name: d, fields: {bucket_name: b, credentials: {block: gcp-credentials/x}}}
          - {type: webhook, name: e, fields: {url: "${HOOK}", headers: {Authorization: "Bearer ${T}"}}}
          - {type: secret, name: b, fields: {value: "${TOKEN}"}, environments: {staging: {}}}
          - {type: gcp-credentials, name: g, fields: {service_account_info: "${GCP}"}}
          - {type: secret, name: h, fields: {value: "${UNDEFINED_SECRET}"}}
        """, environ={"TOKEN": "t", "HOOK": "https://h", "T": "t", "GCP": "not json", "UNDEFINED_SECRET": ""})
    found = {(p.line, p.rule): p.message for p in loaded.errors()}
    assert "unknown block type 'secrets'; did you mean 'secret'" in found[(7, "block-type")]
    assert found[(8, "block-secret")].startswith("blocks[1].fields.value is a secret field of block type 'secret'")
    assert found[(9, "block-secret")].startswith("blocks[2].fields.value is a secret field")
    assert "with TYPE 'minio-credentials' or 'aws-credentials'" in found[(10, "block-reference")]
    assert found[(11, "block-secret")].startswith("blocks[4].fields.headers.Authorization is a secret field") or \
        found[(11, "block-secret")].startswith("blocks[4].fields.headers is a secret field")
    assert "block 'secret/b' is already declared by blocks[1]" in found[(12, "duplicate-name")]
    assert "'dev' or 'prod'" in found[(12, "unknown-environment")]
    assert "must hold JSON" in found[(13, "block-field")]
    assert "environment variable 'UNDEFINED_SECRET' is empty" in found[(14, "block-secret")]
    text = " ".join(p.message for p in loaded.problems)
    assert "hunter2" not in text and "hunter3" not in text and "not json" not in text
