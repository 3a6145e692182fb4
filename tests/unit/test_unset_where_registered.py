"""A `${VAR}` is needed only where what holds it is registered: dev's job has no value for the secret of a block
(or a variable, a webhook, a deployment) that only prod registers, and GitHub gives an undefined secret as an
empty string. Where it is registered, unset or empty is still the error it was."""

from __future__ import annotations

import pytest

from register.cli import main

MANIFEST = """\
version: 1
project: payments
environments:
  dev: {work_pool: {name: dev-docker, type: docker}}
  prod: {work_pool: {name: prod-ecs, type: ecs}}
variables:
  - name: push_role
    value: "${PROD_ROLE}"
    environments: {dev: {enabled: false}}
blocks:
  - type: aws-credentials
    name: push-pool
    fields: {region_name: eu-west-1, aws_access_key_id: AKIAEXAMPLE, aws_secret_access_key: "${PUSH_SECRET_KEY}"}
    environments: {dev: {enabled: false}}
  - type: secret
    name: prod-api-key
    enabled: false
    environments: {prod: {enabled: true}}
    fields: {value: "${PROD_API_KEY}"}
deployments:
  - name: reconcile
    entrypoint: flows/payments.py:reconcile
    description: "${PROD_NOTE}"
    environments: {dev: {enabled: false}}
"""
PROD_ONLY = ("PROD_ROLE", "PUSH_SECRET_KEY", "PROD_API_KEY", "PROD_NOTE")


@pytest.fixture
def repo(tmp_path, monkeypatch):
    (tmp_path / "flows").mkdir()
    (tmp_path / "flows" / "payments.py").write_text("from prefect import flow\n\n\n@flow\ndef reconcile():\n    pass\n")
    (tmp_path / "flows.yaml").write_text(MANIFEST)
    monkeypatch.chdir(tmp_path)
    for name in PROD_ONLY:
        monkeypatch.delenv(name, raising=False)
    return tmp_path


def validate(capsys, *args: str) -> tuple[int, str]:
    code = main(["validate", *args])
    return code, capsys.readouterr().err


def test_dev_needs_none_of_the_values_only_prod_registers(repo, capsys):
    code, err = validate(capsys, "-e", "dev")
    assert code == 0, err
    for name in PROD_ONLY:
        assert f"environment variable '{name}' is not set and has no default, but only 'prod' uses it" in err, err
    assert ": error:" not in err and "0 errors, 4 warnings" in err, err


def test_dev_takes_an_empty_secret_of_a_block_only_prod_registers(repo, capsys, monkeypatch):
    for name in PROD_ONLY:
        monkeypatch.setenv(name, "")  # GitHub: a secret the job's environment does not define
    code, err = validate(capsys, "-e", "dev")
    assert (code, err) == (0, ""), err


def test_prod_still_needs_them_and_says_only_prod(repo, capsys, monkeypatch):
    code, err = validate(capsys, "-e", "prod")
    assert code == 1
    for name in PROD_ONLY:
        assert f"environment variable '{name}' is not set and has no default (used on line" in err, err
    assert "by environment 'prod');" in err and "'dev' and 'prod'" not in err
    for name in PROD_ONLY:
        monkeypatch.setenv(name, "")
    code, err = validate(capsys, "-e", "prod")
    assert code == 1
    assert "blocks[0].fields.aws_secret_access_key is a secret field of block type 'aws-credentials', and " \
           "environment variable 'PUSH_SECRET_KEY' is empty" in err, err
    assert "blocks[1].fields.value is a secret field of block type 'secret', and environment variable " \
           "'PROD_API_KEY' is empty" in err, err
