"""`code: {s3: ...}` and `code: {gcs: ...}`: the flow files uploaded by content at deploy, pulled at run time
by prefect-aws's and prefect-gcp's steps.

Against real parts: the session's Prefect server, moto's S3 server (the services' MOTO_URL: a stand-in for
S3, on loopback), gcp-storage-emulator (a stand-in for Cloud Storage, on loopback, with a stand-in token
endpoint for Google's OAuth), and a real Prefect process worker that runs each deployment to Completed, its
pull step loading the credentials block the manifest names. These tests never skip: without the services
(`bash .ci/services up`) they fail, saying how to start them.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import threading
import time
import uuid
from http.server import BaseHTTPRequestHandler, HTTPServer
from pathlib import Path

import boto3
import httpx
import pytest

from devtools.local_server import free_port

from support.registration import Api
from support.services import services_env
from support.worker import BIN, run_to_end

pytestmark = pytest.mark.integration

FLOW = '''\
from pathlib import Path

from prefect import flow

from flows.marker import MARKER  # a module of the project: the run imports what was pulled


@flow
def hello(expected: str):
    """Fails unless the run has the deployed files."""
    assert MARKER == expected == Path("marker.txt").read_text().strip(), (MARKER, expected)
    assert not Path(".env").exists(), "a credentials file was uploaded"
'''

MANIFEST = """\
version: 1
project: {project}
defaults:
  work_pool: {{name: {pool}, type: process}}
  code:
    s3: {{bucket: {bucket}, folder: sales-etl, credentials: {{block: aws-credentials/{block}}}}}
environments:
  dev: {{}}
deployments:
  - name: hello-{project}
    entrypoint: flows/hello.py:hello
    parameters: {{expected: v1}}
"""

FAKE_KEY = "AKIAFAKEFAKEFAKEFAKE"
DEPLOYER_SECRET = "deployer-secret-9x7Qz"


@pytest.fixture
def moto():
    url = services_env().get("MOTO_URL")
    assert url, "no MOTO_URL in the services' env: run `bash .ci/services up`"
    return url


def s3(moto_url: str):
    return boto3.client("s3", endpoint_url=moto_url, region_name="us-east-1", aws_access_key_id="testing",
                        aws_secret_access_key="testing")


def objects(moto_url: str, bucket: str) -> dict[str, str]:
    """key -> ETag and LastModified: a rewritten object shows."""
    listed = s3(moto_url).list_objects_v2(Bucket=bucket).get("Contents", [])
    return {o["Key"]: f"{o['ETag']} {o['LastModified'].isoformat()}" for o in listed}


@pytest.fixture
def stored_project(tmp_path, prefect_server, moto):
    """A project with code in a fresh bucket of moto's, a process pool, and the aws-credentials block runs
    use (its endpoint moto's). Returns (folder, env, bucket, block name, pool). The block's client `config`
    is `{}`: prefect-aws 0.5.13's pull_from_s3 fails on the default (None) with "Config() argument after **
    must be a mapping" once `aws_client_parameters` is set."""
    tag = uuid.uuid4().hex[:10]
    bucket, block, pool = f"flows-{tag}", f"moto-{tag}", f"s3-process-{tag}"
    s3(moto).create_bucket(Bucket=bucket)
    Api(prefect_server.api_url).create_pool(pool, "process")
    root = tmp_path / "project"
    (root / "flows").mkdir(parents=True)
    (root / "flows" / "__init__.py").write_text("")
    (root / "flows" / "hello.py").write_text(FLOW)
    (root / "flows" / "marker.py").write_text('MARKER = "v1"\n')
    (root / "marker.txt").write_text("v1\n")
    (root / ".env").write_text(f"AWS_ACCESS_KEY_ID={FAKE_KEY}\n")  # never uploaded
    (root / "flows.yaml").write_text(MANIFEST.format(project=f"s3-{tag}", pool=pool, bucket=bucket, block=block))
    env = {k: v for k, v in os.environ.items() if not k.startswith(("PREFECT_", "GITHUB_", "AWS_"))}
    env.update({"PREFECT_API_URL": prefect_server.api_url, "PREFECT_HOME": str(tmp_path / "prefect-home"),
                "PREFECT_SERVER_EPHEMERAL_ENABLED": "false",
                # the deployer's own credentials: boto3 reads them, and the endpoint, from the environment
                "AWS_ENDPOINT_URL": moto, "AWS_ACCESS_KEY_ID": "testing", "AWS_SECRET_ACCESS_KEY": DEPLOYER_SECRET,
                "AWS_DEFAULT_REGION": "us-east-1"})
    saved = subprocess.run(
        [sys.executable, "-c", "import sys; from prefect_aws import AwsCredentials, AwsClientParameters; "
         "AwsCredentials(aws_access_key_id='testing', aws_secret_access_key='testing', region_name='us-east-1', "
         "aws_client_parameters=AwsClientParameters(endpoint_url=sys.argv[2], config={})).save(sys.argv[1])", block, moto],
        env=env, capture_output=True, text=True, timeout=300)
    assert saved.returncode == 0, saved.stderr[-3000:]
    return root, env, bucket, block, pool


def flow_register(root: Path, env: dict, *args: str) -> subprocess.CompletedProcess:
    return subprocess.run([str(BIN / "flow-register"), *args], cwd=root, env=env, capture_output=True, text=True,
                          timeout=600)


def test_code_uploaded_by_content_once_and_run_to_completed_from_the_bucket(stored_project, prefect_server, moto,
                                                                              tmp_path):
    root, env, bucket, block, pool = stored_project

    planned = flow_register(root, env, "plan", "-e", "dev")
    assert planned.returncode == 0, planned.stdout + planned.stderr
    assert f"s3://{bucket}/sales-etl/ct-" in planned.stdout and "would upload 4 files: dry run" in planned.stdout, \
        planned.stdout
    assert objects(moto, bucket) == {}, "a plan uploaded"

    deployed = flow_register(root, env, "deploy", "-e", "dev", "--output", "json")
    assert deployed.returncode == 0, deployed.stdout + deployed.stderr
    report = json.loads(deployed.stdout)
    [upload] = report["code"]
    assert upload["uploaded"] == 4 and upload["present"] is False, upload
    prefix = upload["url"].removeprefix(f"s3://{bucket}/")
    stored = objects(moto, bucket)
    assert sorted(stored) == sorted([f"{prefix}flows/__init__.py", f"{prefix}flows/hello.py",
                                     f"{prefix}flows/marker.py", f"{prefix}marker.txt",
                                     f"sales-etl/.flow-register/{prefix.split('/')[1]}"]), stored
    body = b"".join(s3(moto).get_object(Bucket=bucket, Key=k)["Body"].read() for k in stored)
    assert FAKE_KEY.encode() not in body and b"flows.yaml" not in body

    again = flow_register(root, env, "deploy", "-e", "dev")
    assert again.returncode == 0, again.stdout + again.stderr
    assert "already uploaded: nothing to upload" in again.stdout, again.stdout
    assert objects(moto, bucket) == stored, "an unchanged upload was written again"

    [registered] = report["deployments"]
    api = Api(prefect_server.api_url)
    deployment = api.deployment(registered["id"])
    assert deployment["pull_steps"] == [{"prefect_aws.deployments.steps.pull_from_s3": {
        "requires": "prefect-aws", "bucket": bucket, "folder": prefix,
        "credentials": "{{ prefect.blocks.aws-credentials." + block + " }}"}}]
    assert deployment["version"] == prefix.split("/")[1]  # named by the content, as an image's tag is

    worker_env = {k: v for k, v in env.items() if not k.startswith("AWS_")}  # the block alone reaches moto
    state, shown = run_to_end(prefect_server, registered["id"], pool, worker_env, tmp_path / "worker.log",
                              kind="process")
    assert state["type"] == "COMPLETED", shown


def test_changed_code_goes_to_a_new_prefix_and_moves_the_version(stored_project, moto):
    root, env, bucket, _, _ = stored_project
    first = json.loads(flow_register(root, env, "deploy", "-e", "dev", "--output", "json").stdout)
    (root / "marker.txt").write_text("v2\n")
    second = flow_register(root, env, "deploy", "-e", "dev", "--output", "json")
    assert second.returncode == 0, second.stdout + second.stderr
    report = json.loads(second.stdout)
    assert report["code"][0]["url"] != first["code"][0]["url"] and report["code"][0]["uploaded"] == 4
    assert report["deployments"][0]["action"] == "update" and "version" in report["deployments"][0]["changes"]
    assert "pull_steps" in report["deployments"][0]["changes"]


def test_an_upload_that_fails_writes_no_deployment(stored_project, moto, prefect_server):
    root, env, bucket, _, _ = stored_project
    s3(moto).delete_bucket(Bucket=bucket)
    failed = flow_register(root, env, "deploy", "-e", "dev", "--output", "json")
    assert failed.returncode == 5, failed.stdout + failed.stderr
    assert "no deployment was written" in failed.stdout + failed.stderr
    assert "NoSuchBucket" in failed.stdout + failed.stderr
    assert DEPLOYER_SECRET not in failed.stdout + failed.stderr  # the deployer's key is never shown
    project = (root / "flows.yaml").read_text().split("project: ", 1)[1].split("\n", 1)[0]
    assert not [name for name in Api(prefect_server.api_url).deployments() if project in name]


# -- GCS: gcp-storage-emulator (PyPI) stands in for Cloud Storage, a loopback token endpoint for Google's OAuth

GCS_MANIFEST = """\
version: 1
project: {project}
defaults:
  work_pool: {{name: {pool}, type: process}}
  code:
    gcs: {{bucket: {bucket}, folder: sales-etl, credentials: {{block: gcp-credentials/{block}}}}}
environments:
  dev: {{}}
deployments:
  - name: hello-{project}
    entrypoint: flows/hello.py:hello
    parameters: {{expected: v1}}
"""


class _Token(BaseHTTPRequestHandler):
    """Google's OAuth token endpoint, stood in for: any signed assertion gets a token (the emulator checks none)."""

    def do_POST(self):  # noqa: N802
        self.rfile.read(int(self.headers.get("Content-Length", 0)))
        body = json.dumps({"access_token": "stand-in", "expires_in": 3600, "token_type": "Bearer"}).encode()
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args):
        pass


@pytest.fixture
def gcs(tmp_path):
    """gcp-storage-emulator on loopback with one bucket, and a token endpoint; yields (its URL, the bucket,
    the token URL)."""
    port, bucket = free_port(), f"flows_{uuid.uuid4().hex[:10]}"
    emulator = subprocess.Popen([str(BIN / "gcp-storage-emulator"), "start", "--host", "127.0.0.1", "--port", str(port),
                                 "--default-bucket", bucket, "--in-memory", "-q"],
                                stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True)
    token = HTTPServer(("127.0.0.1", 0), _Token)
    threading.Thread(target=token.serve_forever, daemon=True).start()
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            try:
                if httpx.get(f"{url}/storage/v1/b/{bucket}", timeout=2).status_code == 200:
                    break
            except httpx.TransportError:
                time.sleep(0.3)
        yield url, bucket, f"http://127.0.0.1:{token.server_port}/token"
    finally:
        token.shutdown()
        os.killpg(emulator.pid, signal.SIGTERM)
        emulator.wait(timeout=30)


def gcs_objects(url: str, bucket: str) -> dict[str, str]:
    items = httpx.get(f"{url}/storage/v1/b/{bucket}/o", timeout=30).json().get("items", [])
    return {i["name"]: f"{i.get('md5Hash')} {i.get('updated')}" for i in items}


def test_code_in_gcs_uploaded_once_and_run_to_completed(gcs, prefect_server, tmp_path):
    url, bucket, token_uri = gcs
    tag = uuid.uuid4().hex[:10]
    block, pool = f"emulated-{tag}", f"gcs-process-{tag}"
    Api(prefect_server.api_url).create_pool(pool, "process")
    root = tmp_path / "project"
    (root / "flows").mkdir(parents=True)
    (root / "flows" / "__init__.py").write_text("")
    (root / "flows" / "hello.py").write_text(FLOW)
    (root / "flows" / "marker.py").write_text('MARKER = "v1"\n')
    (root / "marker.txt").write_text("v1\n")
    (root / "flows.yaml").write_text(GCS_MANIFEST.format(project=f"gcs-{tag}", pool=pool, bucket=bucket, block=block))
    env = {k: v for k, v in os.environ.items() if not k.startswith(("PREFECT_", "GITHUB_", "GOOGLE_"))}
    env.update({"PREFECT_API_URL": prefect_server.api_url, "PREFECT_HOME": str(tmp_path / "prefect-home"),
                "PREFECT_SERVER_EPHEMERAL_ENABLED": "false", "STORAGE_EMULATOR_HOST": url})
    # The run's credentials: a service account of its own (a throwaway key), its tokens from the stand-in.
    saved = subprocess.run(
        [sys.executable, "-c", "import sys; from cryptography.hazmat.primitives import serialization as s; "
         "from cryptography.hazmat.primitives.asymmetric import rsa; from prefect_gcp import GcpCredentials; "
         "key = rsa.generate_private_key(public_exponent=65537, key_size=2048).private_bytes("
         "s.Encoding.PEM, s.PrivateFormat.PKCS8, s.NoEncryption()).decode(); "
         "GcpCredentials(service_account_info={'type': 'service_account', 'project_id': 'flows', "
         "'private_key_id': '1', 'private_key': key, 'client_email': 'runs@flows.iam.gserviceaccount.com', "
         "'client_id': '1', 'token_uri': sys.argv[2]}).save(sys.argv[1])", block, token_uri],
        env=env, capture_output=True, text=True, timeout=300)
    assert saved.returncode == 0, saved.stderr[-3000:]

    deployed = flow_register(root, env, "deploy", "-e", "dev", "--output", "json")
    assert deployed.returncode == 0, deployed.stdout + deployed.stderr
    report = json.loads(deployed.stdout)
    assert report["code"][0]["uploaded"] == 4, report["code"]
    prefix = report["code"][0]["url"].removeprefix(f"gs://{bucket}/")
    stored = gcs_objects(url, bucket)
    assert sorted(k for k in stored if k.startswith(prefix)) == [
        f"{prefix}flows/__init__.py", f"{prefix}flows/hello.py", f"{prefix}flows/marker.py", f"{prefix}marker.txt"]

    again = flow_register(root, env, "deploy", "-e", "dev")
    assert again.returncode == 0 and "already uploaded: nothing to upload" in again.stdout, again.stdout + again.stderr
    assert gcs_objects(url, bucket) == stored

    deployment = Api(prefect_server.api_url).deployment(report["deployments"][0]["id"])
    assert deployment["pull_steps"] == [{"prefect_gcp.deployments.steps.pull_from_gcs": {
        "requires": "prefect-gcp", "bucket": bucket, "folder": prefix,
        "credentials": "{{ prefect.blocks.gcp-credentials." + block + " }}"}}]
    state, shown = run_to_end(prefect_server, report["deployments"][0]["id"], pool, env, tmp_path / "worker.log",
                              kind="process")
    assert state["type"] == "COMPLETED", shown
