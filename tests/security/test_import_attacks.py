"""`flow-register import` of a hostile prefect.yaml: whoever wrote it cannot make the import run for minutes
or take gigabytes, nor turn its text into a reference to the importer's or the deployer's environment."""

from __future__ import annotations

import json
import os
import subprocess
import time
from pathlib import Path

import pytest

from support.registration import CLI

FLOW = "from prefect import flow\n\n\n@flow\ndef etl():\n    pass\n"


def run(*args: str, cwd: Path, env: dict | None = None, timeout: float = 60) -> subprocess.CompletedProcess:
    return subprocess.run([CLI, *args], cwd=cwd, env={**os.environ, **(env or {})}, capture_output=True, text=True,
                          timeout=timeout)


def repository(tmp_path: Path, prefect_yaml: str) -> Path:
    (tmp_path / "flows").mkdir()
    (tmp_path / "flows" / "etl.py").write_text(FLOW)
    (tmp_path / "prefect.yaml").write_text(prefect_yaml)
    return tmp_path


# A deployment per line: 47 MB is what took 3.4 minutes and 2.4 GB before the import refused to read it
BIG = "deployments:\n" + "- {name: etl, entrypoint: flows/etl.py:etl, work_pool: {name: pool}}\n" * 700_000
# Under 1 MiB but half a million values: reading each with its position takes about 0.1 ms
MANY = "deployments: [" + "0," * 500_000 + "0]\n"
LAUGHS = "a: &a [lol, lol, lol, lol, lol, lol, lol, lol, lol]\n" + "".join(
    f"{chr(98 + i)}: &{chr(98 + i)} [{', '.join(['*' + chr(97 + i)] * 9)}]\n" for i in range(8)) + "deployments: *i\n"
DEEP = "deployments: " + "[" * 10_000 + "]" * 10_000 + "\n"


@pytest.mark.parametrize("text, line_col, message", [
    (BIG, "1:1", "the file is 46.1 MiB; a prefect.yaml to import may be at most 1 MiB [import-file-size]"),
    (MANY, "1:40009", "more than 20000 values in one prefect.yaml (a real one holds a few thousand); split it or "
                      "import a smaller file [import-file-size]"),
    (LAUGHS, "", "aliases expand this document to more than 20000 values; write the repeated parts once [yaml-alias]"),
    (DEEP, "", "nested deeper than 64 levels"),
], ids=["47-mb", "half-a-million-values", "billion-laughs", "nested-10000-deep"])
def test_a_prefect_yaml_too_large_to_be_real_is_refused_in_seconds_and_nothing_is_written(text, line_col, message,
                                                                                         tmp_path):
    root = repository(tmp_path, text)
    started = time.monotonic()
    result = run("import", "-o", "flows.yaml", cwd=root)
    elapsed = time.monotonic() - started
    assert result.returncode == 1, result.stderr[-2000:]
    assert f"prefect.yaml:{line_col}" in result.stderr and message in result.stderr, result.stderr[-2000:]
    assert not (root / "flows.yaml").exists() and result.stdout == ""
    assert elapsed < 30, elapsed  # about 1 s here; before the caps, minutes


LITERALS = """\
name: etl
deployments:
- name: etl
  entrypoint: flows/etl.py:etl
  description: '{description}'
  tags: ['${{REGISTRY_PASSWORD:-none}}']
  work_pool:
    name: pool
    job_variables:
      env: {{TOKEN: '${{PREFECT_API_KEY:-}}'}}
"""


@pytest.mark.parametrize("description", ["costs ${PREFECT_API_KEY:-}", "costs ${HOME} or $${THIS} or $$${THAT}"],
                         ids=["with-a-default", "bare-and-escaped"])
def test_literal_dollar_braces_in_prefect_yaml_stay_literal_and_never_read_the_deployers_environment(description,
                                                                                                   tmp_path):
    """prefect deploy registers `${X:-}` as the text it is; the manifest must too (written `$${`), or a
    prefect.yaml's text would pull the deploying job's secrets into the deployment."""
    root = repository(tmp_path, LITERALS.format(description=description))
    secrets = {"PREFECT_API_KEY": "pnu_secret_value_1234567890", "REGISTRY_PASSWORD": "registry-secret-0987"}
    imported = run("import", "-o", "flows.yaml", cwd=root, env=secrets)
    assert imported.returncode == 0, imported.stderr
    rendered = run("render", "-e", "prod", cwd=root, env=secrets)
    assert rendered.returncode == 0, rendered.stderr
    deployment = json.loads(rendered.stdout)["deployments"][0]
    assert deployment["description"] == description
    assert [t for t in deployment["tags"] if not t.startswith(("managed-by:", "project:", "environment:"))] == [
        "${REGISTRY_PASSWORD:-none}"]
    assert deployment["job_variables"]["env"] == {"TOKEN": "${PREFECT_API_KEY:-}"}
    for secret in secrets.values():
        assert secret not in imported.stdout + imported.stderr + rendered.stdout + rendered.stderr
