"""End to end: code delivered at run time. A deployment with `code: git` and no `image:` is registered
by `flow-register deploy` into a Docker work pool; a real Prefect Docker worker runs it, from a base image
that does not contain the code, cloning a real git server on loopback (`git daemon`) at the commit that
was deployed, not the branch's newer head.

These tests never skip: without the services (`bash .ci/services up`) they fail, saying how to start them.
"""

from __future__ import annotations

import os
import signal
import subprocess
from pathlib import Path

import pytest

from devtools.local_server import free_port
from support.services import services_env
from support.worker import BIN, api, create_docker_pool, run_to_end

pytestmark = pytest.mark.e2e

POOL = "git-code-docker"
RUNTIME = "flow-register-test/prefect-git:e2e"  # the test base image plus git: it has no flow code
STEP = "prefect.deployments.steps."

FLOW = '''\
from pathlib import Path

from prefect import flow

from flows.marker import MARKER  # a module of the repository: the run imports from the clone


@flow
def hello(expected: str):
    """Fails unless the run has the code of the commit that was deployed."""
    assert MARKER == expected == Path("marker.txt").read_text().strip(), (MARKER, expected)
'''

MANIFEST = """\
version: 1
project: git-code
defaults:
  work_pool: {{name: {pool}, type: docker}}
  job_variables: {{image: {image}}}
  code:
    git: {{repository: "git://127.0.0.1:{port}/flows.git"}}
    requirements: requirements.txt
environments:
  dev: {{}}
deployments:
  - name: hello-from-git
    entrypoint: flows/hello.py:hello
    parameters: {{expected: v1}}
"""


def git(root: Path, *args: str) -> str:
    return subprocess.run(["git", "-C", str(root), "-c", "user.name=t", "-c", "user.email=t@t", *args],
                          check=True, capture_output=True, text=True).stdout.strip()


@pytest.fixture(scope="module")
def runtime_image(tmp_path_factory) -> str:
    """BASE_IMAGE with git from Debian's packages (Prefect's image has none); containers reach the
    package mirror on the host's network, trusting the host's CA bundle."""
    env = {**os.environ, **services_env()}
    if subprocess.run(["docker", "image", "inspect", RUNTIME], env=env, capture_output=True).returncode == 0:
        return RUNTIME
    context = tmp_path_factory.mktemp("runtime-image")
    (context / "ca-certificates.crt").write_bytes(Path("/etc/ssl/certs/ca-certificates.crt").read_bytes())
    (context / "Dockerfile").write_text(
        f"FROM {env['BASE_IMAGE']}\n"
        "COPY ca-certificates.crt /etc/ssl/certs/ca-certificates.crt\n"
        "RUN printf 'Acquire::Check-Valid-Until \"false\";\\n' > /etc/apt/apt.conf.d/99check"
        " && apt-get update -qq && apt-get install -y -qq --no-install-recommends git"
        " && rm -rf /var/lib/apt/lists/*\n")
    built = subprocess.run(["docker", "build", "--network", "host", "-t", RUNTIME, str(context)],
                           env={**env, "DOCKER_BUILDKIT": "0"}, capture_output=True, text=True, timeout=600)
    assert built.returncode == 0, built.stdout[-3000:] + built.stderr[-3000:]
    return RUNTIME


@pytest.fixture
def git_server(tmp_path):
    """A bare repository served by `git daemon` on loopback; yields (its folder, its port)."""
    served = tmp_path / "served"
    served.mkdir()
    port = free_port()
    daemon = subprocess.Popen(["git", "daemon", "--reuseaddr", "--export-all", "--enable=upload-pack",
                               f"--base-path={served}", "--listen=127.0.0.1", f"--port={port}", str(served)],
                              stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True)
    try:
        yield served, port
    finally:
        os.killpg(daemon.pid, signal.SIGTERM)
        daemon.wait(timeout=30)


def test_a_run_clones_the_deployed_commit_into_an_image_without_the_code(runtime_image, git_server, prefect_server,
                                                                         tmp_path):
    served, port = git_server
    checkout = tmp_path / "checkout"
    root = checkout / "pipelines"  # the manifest in a folder of the repository: runs start there
    (root / "flows").mkdir(parents=True)
    (root / "flows" / "__init__.py").write_text("")
    (root / "flows" / "hello.py").write_text(FLOW)
    (root / "flows" / "marker.py").write_text('MARKER = "v1"\n')
    (root / "marker.txt").write_text("v1\n")
    (root / "requirements.txt").write_text("# nothing to install; pip still runs\n")
    (root / "flows.yaml").write_text(MANIFEST.format(pool=POOL, image=runtime_image, port=port))
    git(checkout, "init", "-q", "-b", "main")
    git(checkout, "add", ".")
    git(checkout, "commit", "-qm", "v1")
    deployed = git(checkout, "rev-parse", "HEAD")
    bare = served / "flows.git"
    subprocess.run(["git", "clone", "-q", "--bare", str(checkout), str(bare)], check=True)
    git(bare, "config", "uploadpack.allowAnySHA1InWant", "true")
    git(bare, "config", "uploadpack.allowFilter", "true")

    create_docker_pool(prefect_server, POOL)
    env = {k: v for k, v in os.environ.items() if not k.startswith(("PREFECT_", "GITHUB_"))}
    env.update(services_env())
    env.update({"PREFECT_API_URL": prefect_server.api_url, "PREFECT_HOME": str(tmp_path / "prefect-home")})
    result = subprocess.run([str(BIN / "flow-register"), "deploy", "-e", "dev"], cwd=root, env=env,
                            capture_output=True, text=True, timeout=600)
    assert result.returncode == 0, result.stdout + result.stderr

    deployment = api(prefect_server, "GET", "/deployments/name/hello/hello-from-git")
    repository = f"git://127.0.0.1:{port}/flows.git"
    assert deployment["pull_steps"] == [
        {STEP + "git_clone": {"id": "clone-step", "repository": repository, "commit_sha": deployed}},
        {STEP + "pip_install_requirements": {"directory": "{{ clone-step.directory }}",
                                             "requirements_file": "pipelines/requirements.txt"}},
        {STEP + "set_working_directory": {"directory": "{{ clone-step.directory }}/pipelines"}},
    ]

    # The branch moves on after the deploy: the run must still get the commit that was deployed.
    (root / "flows" / "marker.py").write_text('MARKER = "v2"\n')
    (root / "marker.txt").write_text("v2\n")
    git(checkout, "commit", "-qam", "v2")
    git(checkout, "push", "-q", str(bare), "main")

    state, shown = run_to_end(prefect_server, deployment["id"], POOL, env, tmp_path / "worker.log", timeout=600)
    assert state and state["type"] == "COMPLETED", f"flow run ended {state}:\n{shown}"
