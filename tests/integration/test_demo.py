"""The demo (`python -m devtools.demo`, the README's first command): a server of its own, the example's pools,
every environment deployed; a second run finds everything unchanged and writes nothing."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import pytest

from support.registration import client_env

TOP = Path(__file__).resolve().parents[2]  # the repository's top, where the README's command runs

pytestmark = pytest.mark.integration


def test_demo_deploys_the_example_and_a_second_run_changes_nothing(tmp_path):
    from devtools.local_server import free_port, running

    home = tmp_path / "demo"
    env = client_env(None, tmp_path / "client-home", FLOW_REGISTER_DEMO_HOME=str(home))
    port = free_port()

    def demo(*args: str) -> subprocess.CompletedProcess:
        return subprocess.run([sys.executable, "-m", "devtools.demo", "--port", str(port), *args], env=env, cwd=TOP,
                              capture_output=True, text=True, timeout=300)

    try:
        first = demo()
        assert first.returncode == 0, first.stdout + first.stderr
        assert "Starting a local Prefect server" in first.stderr
        assert ("Created work pools from the server's bundled templates: dev-docker, prod-aci, prod-cloudrun, "
                "prod-ecs, test-k8s") in first.stderr
        # dev, test (renamed: it shares this one server with dev) and prod: 4 + 4 + 3 deployments
        assert len(re.findall(r"^  create ", first.stdout, re.M)) == 11, first.stdout
        assert "Environment 'test' registers the same names as an earlier one" in first.stderr
        for pool in ("dev-docker", "test-k8s", "prod-ecs", "prod-cloudrun", "prod-aci"):
            assert pool in first.stdout
        assert "Image: localhost:5000/sales-etl:ct-" in first.stdout
        assert f"the UI:            http://127.0.0.1:{port}   (Deployments" in first.stdout
        assert (home / "prefect.db").exists()

        second = demo()
        assert second.returncode == 0, second.stdout + second.stderr
        assert "The demo server is already running" in second.stderr
        assert "create" not in second.stdout and "update" not in second.stdout
        assert len(re.findall(r"^  unchanged ", second.stdout, re.M)) == 11
        assert second.stdout.count("no write made (4 requests: 4 reads, 0 writes)") == 3
    finally:
        stopped = demo("--stop")
    assert stopped.returncode == 0 and "Stopped the demo server" in stopped.stderr
    assert running(home) is None
