"""The launcher alone (register/action/launcher.py): run by the runner's own python3 before any venv,
it picks the runtime, says in one error what stops it, and starts the registrar's container with the
environment a step would see. No Docker engine needed here: the container's command is checked as argv."""

from __future__ import annotations

import os
import socket
import subprocess

import pytest
from support.action_repos import ROOT

from register.action import launcher
from register.report import github


@pytest.fixture(autouse=True)
def fresh_commands(monkeypatch):
    monkeypatch.setattr(github, "_resume", None)
    monkeypatch.setattr(github, "_masked", set())


@pytest.fixture
def engine(tmp_path):
    """A unix socket that accepts connections, where a Docker engine's would be."""
    path = tmp_path / "docker.sock"
    server = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    server.bind(str(path))
    server.listen(8)
    yield str(path)
    server.close()


def test_it_runs_on_the_standard_library_alone():
    """As on a runner: the system's python3, outside this project's venv, imports it and what it imports."""
    python = "/usr/bin/python3"
    if not os.path.exists(python):
        pytest.skip("no system python3 here")
    code = ("import sys, register.action.launcher as l; "
            "print(sorted(m.split('.')[0] for m in sys.modules if m.split('.')[0] in ('yaml', 'prefect', 'httpx')))")
    out = subprocess.run([python, "-I", "-c", "import sys; sys.path.insert(0, '.'); " + code], cwd=ROOT,
                         capture_output=True, text=True)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "[]"


def test_the_runtime_names_where_it_was_set(capsys):
    assert launcher.runtime_of({}) == ("image", "")
    assert launcher.runtime_of({"FLOW_REGISTER_RUNTIME": "source"}) == ("source", "FLOW_REGISTER_RUNTIME")
    assert launcher.runtime_of({"INPUT_RUNTIME": "dockerfile", "FLOW_REGISTER_RUNTIME": "source"}) == \
        ("dockerfile", "input 'runtime'")
    assert launcher.main({"FLOW_REGISTER_RUNTIME": "Source", "GITHUB_ACTIONS": "true"}) == 1
    assert capsys.readouterr().out.splitlines() == [
        "::error title=flow-register%3A runtime::FLOW_REGISTER_RUNTIME must be 'image', 'dockerfile' or 'source'; "
        "got 'Source'"]
    assert launcher.main({"INPUT_RUNTIME": "docker"}) == 1
    assert "input 'runtime' must be 'image', 'dockerfile' or 'source'; got 'docker'" in capsys.readouterr().out


def test_no_docker_engine_is_one_error_that_names_runtime_source(tmp_path, capsys):
    assert launcher.main({"DOCKER_HOST": f"unix://{tmp_path}/none.sock", "GITHUB_WORKSPACE": str(tmp_path)}) == 1
    (line,) = capsys.readouterr().out.splitlines()
    assert line.startswith("::error title=flow-register%3A runtime::no Docker engine on this runner (nothing "
                           f"answers at unix://{tmp_path}/none.sock")
    assert "runtime 'image' (the default); set `runtime: source` to run it on the runner without Docker" in line
    assert launcher.main({"DOCKER_HOST": "tcp://10.0.0.1:2375"}) == 1
    assert "is not a unix socket that the registrar container can mount; set `runtime: source`" in \
        capsys.readouterr().out
    assert launcher.main({"RUNNER_OS": "macOS", "INPUT_RUNTIME": "dockerfile"}) == 1
    assert "this runner is macOS; set `runtime: source`" in capsys.readouterr().out


def test_the_container_sees_the_runner_as_a_step_does(tmp_path, engine, monkeypatch):
    workspace, temp, files = tmp_path / "work", tmp_path / "temp", tmp_path / "files"
    for folder in (workspace, temp, files):
        folder.mkdir()
    bundle = tmp_path / "corp-ca.pem"
    bundle.write_text("-----BEGIN CERTIFICATE-----\n")
    environ = {"GITHUB_WORKSPACE": str(workspace), "RUNNER_TEMP": str(temp),
               "GITHUB_OUTPUT": str(files / "output"), "GITHUB_STEP_SUMMARY": str(files / "summary"),
               "GITHUB_EVENT_PATH": str(temp / "event.json"), "SSL_CERT_FILE": str(bundle),
               "ACTIONS_CACHE_URL": "https://cache.example/", "ACTIONS_RUNTIME_TOKEN": "tok",
               "ACTIONS_ID_TOKEN_REQUEST_URL": "https://oidc.example/", "INPUT_ENVIRONMENT": "dev",
               "AWS_ACCESS_KEY_ID": "AKIA", "CI": "true", "PATH": "/usr/bin", "HOME": str(tmp_path / "home"),
               "PYTHONPATH": "/elsewhere", "LD_LIBRARY_PATH": "/lib/host", "DOCKER_HOST": f"unix://{engine}",
               "LANG": "C.UTF-8", "UV_CACHE_DIR": "/cache", "DATABASE_URL": "set by the job, named in flows.yaml",
               "BASH_FUNC_f%%": "() { :; }"}
    argv = launcher.docker_run("registrar:v1", environ, engine)
    assert argv[:2] == ["docker", "run"] and argv[-1] == "registrar:v1"
    volumes = [argv[i + 1] for i, a in enumerate(argv) if a == "--volume"]
    assert volumes == [f"{engine}:/var/run/docker.sock", f"{workspace}:{workspace}", f"{temp}:{temp}",
                       f"{files}:{files}", f"{bundle}:{bundle}:ro"]  # the event file is in RUNNER_TEMP already
    passed = [argv[i + 1] for i, a in enumerate(argv) if a == "--env"]
    assert set(passed) == {"DOCKER_HOST=unix:///var/run/docker.sock", "HOME=/tmp", "ACTIONS_CACHE_URL",
                           "ACTIONS_ID_TOKEN_REQUEST_URL", "ACTIONS_RUNTIME_TOKEN", "AWS_ACCESS_KEY_ID", "CI",
                           "GITHUB_EVENT_PATH", "GITHUB_OUTPUT", "GITHUB_STEP_SUMMARY", "GITHUB_WORKSPACE",
                           "INPUT_ENVIRONMENT", "RUNNER_TEMP", "SSL_CERT_FILE", "DATABASE_URL"}
    assert "tok" not in argv  # values come from the environment, never the command line
    assert argv[argv.index("--workdir") + 1] == str(workspace)
