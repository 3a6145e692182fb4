"""The ECR path against moto's server: login token, repository creation, tag lookup, retag, errors.

Docker is stood in for (it cannot log in to a fake ECR host); its `push` writes the tag into moto's
ECR, so the stage reads the digest back through ECR's API exactly as it does from the real one.
"""

from __future__ import annotations

import base64
import json
from pathlib import Path

import boto3
import pytest
from moto.server import ThreadedMotoServer

import register.image as image_stage
from support import stages
from devtools.local_server import free_port
from register.manifest import load_manifest
from register.problems import Invalid
from support.examples import example_copy
from support.fake_docker import fake_docker  # noqa: F401  (a fixture)

pytestmark = pytest.mark.integration

ACCOUNT, REGION = "123456789012", "eu-west-1"
HOST = f"{ACCOUNT}.dkr.ecr.{REGION}.amazonaws.com"
REPOSITORY = f"{HOST}/sales-etl"


@pytest.fixture(scope="module")
def moto_url():
    port = free_port()
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=port, verbose=False)
    server.start()
    yield f"http://127.0.0.1:{port}"
    server.stop()


@pytest.fixture
def ecr(moto_url, monkeypatch, fake_docker):  # noqa: F811
    import urllib.request

    urllib.request.urlopen(urllib.request.Request(f"{moto_url}/moto-api/reset", method="POST")).read()
    monkeypatch.setenv("AWS_ENDPOINT_URL_ECR", moto_url)  # boto3 reads it itself
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "testing")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "testing")
    monkeypatch.delenv("AWS_PROFILE", raising=False)
    monkeypatch.setenv("AWS_REGION", "us-east-2")  # the host's region wins: the registry lives there
    monkeypatch.setenv("FAKE_DOCKER_ECR", "1")
    return boto3.client("ecr", region_name=REGION, endpoint_url=moto_url)


@pytest.fixture
def manifest_path(tmp_path) -> Path:
    return example_copy(tmp_path, REPOSITORY)


def create_repository_in(path: Path) -> None:
    path.write_text(path.read_text().replace("  context: .\n", "  context: .\n  create_repository: true\n"))


def push_to_moto(ecr, tag: str) -> str:
    manifest = {"schemaVersion": 2, "mediaType": "application/vnd.docker.distribution.manifest.v2+json",
                "config": {"mediaType": "application/vnd.docker.container.image.v1+json", "size": 7,
                           "digest": "sha256:" + "d" * 64}, "layers": []}
    image = ecr.put_image(repositoryName="sales-etl", imageTag=tag, imageManifest=json.dumps(manifest))
    return image["image"]["imageId"]["imageDigest"]


def tags_in_moto(ecr) -> set[str]:
    images = ecr.describe_images(repositoryName="sales-etl")["imageDetails"]
    return {t for image in images for t in image.get("imageTags", [])}


def test_a_first_deploy_creates_the_repository_logs_in_builds_pushes_and_pins_the_digest(
        ecr, manifest_path, fake_docker, monkeypatch, capsys):  # noqa: F811
    monkeypatch.setenv("GITHUB_ACTIONS", "true")
    create_repository_in(manifest_path)
    image = stages.prepare(load_manifest(manifest_path), "dev")

    assert ecr.describe_repositories()["repositories"][0]["repositoryName"] == "sales-etl"
    assert tags_in_moto(ecr) == {image.content_tag}
    digest = ecr.describe_images(repositoryName="sales-etl")["imageDetails"][0]["imageDigest"]
    assert image.reference == f"{REPOSITORY}@{digest}"
    assert (image.built, image.pushed) == (True, True)

    [login] = [c for c in fake_docker.calls if c["argv"][:1] == ["login"]]
    assert login["argv"] == ["login", HOST, "--username", "AWS", "--password-stdin"]
    password = login["stdin"].strip()
    assert password
    out, err = capsys.readouterr()
    assert f"::add-mask::{password}" in err.splitlines()  # on stderr: stdout may be JSON
    assert password not in out + err.replace(f"::add-mask::{password}", "")
    assert password not in json.dumps(fake_docker.commands())


def test_an_unchanged_deploy_neither_builds_nor_pushes(ecr, manifest_path, fake_docker):  # noqa: F811
    create_repository_in(manifest_path)
    first = stages.prepare(load_manifest(manifest_path), "dev")
    calls = len(fake_docker.calls)
    again = stages.prepare(load_manifest(manifest_path), "dev")
    assert again.reference == first.reference
    assert (again.built, again.pushed, again.exists) == (False, False, True)
    assert len(fake_docker.calls) == calls  # not even a login


def test_a_missing_repository_without_create_repository_is_an_error_before_any_build(
        ecr, manifest_path, fake_docker):  # noqa: F811
    with pytest.raises(Invalid) as invalid:
        stages.prepare(load_manifest(manifest_path), "dev")
    [problem] = invalid.value.problems
    assert problem.rule == "image-repository-missing"
    assert "image.create_repository: true" in problem.message and problem.line == 6
    assert not [c for c in fake_docker.commands() if c[:1] in (["build"], ["push"], ["login"])]


def test_a_dry_run_creates_nothing(ecr, manifest_path, fake_docker, capsys):  # noqa: F811
    create_repository_in(manifest_path)
    image = stages.prepare(load_manifest(manifest_path), "dev", dry_run=True)
    assert image.reference == f"{REPOSITORY}:{image.content_tag}"
    assert ecr.describe_repositories()["repositories"] == []
    assert fake_docker.calls == []
    assert "it would be created" in capsys.readouterr().err


def test_a_tag_pushed_earlier_is_found_by_ecrs_api(ecr, manifest_path, fake_docker):  # noqa: F811
    ecr.create_repository(repositoryName="sales-etl")
    tag = stages.prepare(load_manifest(manifest_path), "dev", dry_run=True).content_tag
    digest = push_to_moto(ecr, tag)
    image = stages.prepare(load_manifest(manifest_path), "dev", build="never")
    assert image.reference == f"{REPOSITORY}@{digest}" and image.exists
    assert fake_docker.calls == []


def test_an_extra_tag_is_added_by_ecr_itself(ecr, manifest_path, fake_docker):  # noqa: F811
    ecr.create_repository(repositoryName="sales-etl")
    tag = stages.prepare(load_manifest(manifest_path), "dev", dry_run=True).content_tag
    digest = push_to_moto(ecr, tag)
    # The environment's deployments already run it (as deploy reads the server): reused, tagged in ECR.
    image = stages.prepare(load_manifest(manifest_path), "dev", image_tag="v1.4.0",
                                recorded=[f"{REPOSITORY}@{digest}"])
    assert tags_in_moto(ecr) == {tag, "v1.4.0"}
    assert image.tags == ["v1.4.0"] and not image.pushed
    assert fake_docker.calls == []


def test_the_login_token_is_ecrs_own(ecr):
    from register.image import registries

    registry = stages.registry(registries.Repository.parse(REPOSITORY))
    credentials = registry.credentials()
    token = ecr.get_authorization_token()["authorizationData"][0]["authorizationToken"]
    assert credentials.username == "AWS"
    assert base64.b64decode(token).decode().startswith("AWS:")
    assert credentials.source == f"ECR GetAuthorizationToken ({REGION})"


def test_missing_aws_credentials_are_one_clear_line(ecr, manifest_path, monkeypatch, tmp_path):
    for name in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", str(tmp_path / "none"))
    monkeypatch.setenv("AWS_CONFIG_FILE", str(tmp_path / "none"))
    monkeypatch.setenv("AWS_EC2_METADATA_DISABLED", "true")
    with pytest.raises(image_stage.ImageError, match=r"ECR \(eu-west-1\) could not look up tag ct-\w+: "
                                                     "Unable to locate credentials"):
        stages.prepare(load_manifest(manifest_path), "dev")
