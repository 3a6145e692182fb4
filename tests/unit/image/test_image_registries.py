"""Registries: the kind by host, credentials per kind, masking, and the tag lookup over the HTTP API."""

from __future__ import annotations

import base64
import json

import httpx
import pytest

from register.image import docker, registries
from register.report import github
from register.image.registries import Repository, RegistryError
from support import stages


@pytest.fixture(autouse=True)
def _clean_env(monkeypatch, tmp_path):
    for name in ("REGISTRY_USERNAME", "REGISTRY_PASSWORD", "GITHUB_ACTIONS"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("REGISTRY_HOST", "ghcr.io")  # where the workflow author's credentials are for
    monkeypatch.setenv("DOCKER_CONFIG", str(tmp_path / "docker-config"))


@pytest.mark.parametrize("text, kind, host, path", [
    ("123456789012.dkr.ecr.eu-west-1.amazonaws.com/sales-etl", "ecr", "123456789012.dkr.ecr.eu-west-1.amazonaws.com",
     "sales-etl"),
    ("europe-west1-docker.pkg.dev/acme/flows/sales-etl", "gcp", "europe-west1-docker.pkg.dev", "acme/flows/sales-etl"),
    ("eu.gcr.io/acme/sales-etl", "gcp", "eu.gcr.io", "acme/sales-etl"),
    ("gcr.io/acme/sales-etl", "gcp", "gcr.io", "acme/sales-etl"),
    ("ghcr.io/acme/sales-etl", "registry", "ghcr.io", "acme/sales-etl"),
    ("localhost:5000/sales-etl", "registry", "localhost:5000", "sales-etl"),
    ("acme/sales-etl", "registry", "docker.io", "acme/sales-etl"),
    ("python", "registry", "docker.io", "library/python"),
])
def test_the_registry_kind_follows_the_host(text, kind, host, path):
    repository = Repository.parse(text)
    assert (repository.host, repository.path) == (host, path)
    assert stages.registry(repository).kind == kind


def test_the_ecr_region_and_account_come_from_the_host():
    registry = stages.registry(Repository.parse("123456789012.dkr.ecr.ap-south-2.amazonaws.com/team/flows"))
    assert (registry.account, registry.region) == ("123456789012", "ap-south-2")


@pytest.mark.parametrize("text, says", [
    ("localhost:5000/sales-etl:v1", "has a tag"),
    ("localhost:5000/sales-etl@sha256:" + "0" * 64, "names a digest"),
    ("localhost:5000/Sales", "lowercase"),
])
def test_a_repository_is_only_a_repository(text, says):
    with pytest.raises(ValueError, match=says):
        Repository.parse(text)


@pytest.mark.parametrize("host, loopback", [("localhost:5000", True), ("127.0.0.1:38441", True),
                                            ("[::1]:5000", True), ("registry.local:5000", False), ("ghcr.io", False)])
def test_loopback_registries_are_spoken_to_in_plain_http(host, loopback):
    assert registries.is_loopback(host) is loopback


def test_explicit_credentials_need_both_halves(monkeypatch):
    monkeypatch.setenv("REGISTRY_USERNAME", "ci")
    with pytest.raises(RegistryError, match="REGISTRY_PASSWORD is not set"):
        registries.explicit_credentials(stages.settings().environ, github.mask)


def test_explicit_credentials_are_masked_under_github_actions(monkeypatch, capsys):
    monkeypatch.setenv("GITHUB_ACTIONS", "true")
    monkeypatch.setenv("REGISTRY_USERNAME", "ci")
    monkeypatch.setenv("REGISTRY_PASSWORD", "hunter2-pw")
    credentials = stages.registry(Repository.parse("ghcr.io/acme/flows")).credentials()
    assert (credentials.username, credentials.password) == ("ci", "hunter2-pw")
    assert "::add-mask::hunter2-pw" in capsys.readouterr().err
    assert "hunter2-pw" not in repr(credentials)


def test_explicit_credentials_are_only_for_the_host_the_workflow_names(monkeypatch):
    monkeypatch.setenv("REGISTRY_USERNAME", "ci")
    monkeypatch.setenv("REGISTRY_PASSWORD", "pw")
    assert stages.registry(Repository.parse("ghcr.io/acme/flows")).credentials().password == "pw"
    assert stages.registry(Repository.parse("evil.example/acme/flows")).credentials() is None
    assert stages.registry(Repository.parse("ghcr.io.evil.example/acme/flows")).credentials() is None
    monkeypatch.setenv("REGISTRY_HOST", "docker.io")
    assert stages.registry(Repository.parse("acme/flows")).credentials().password == "pw"
    monkeypatch.delenv("REGISTRY_HOST")
    with pytest.raises(RegistryError, match="set REGISTRY_HOST"):
        stages.registry(Repository.parse("ghcr.io/acme/flows")).credentials()


@pytest.mark.parametrize("repository, realm, allowed", [
    ("ghcr.io/a/b", "https://ghcr.io/token", True),
    ("acme/flows", "https://auth.docker.io/token", True),
    ("registry.gitlab.com/a/b", "https://gitlab.com/jwt/auth", True),
    ("ghcr.io/a/b", "http://ghcr.io/token", False),
    ("ghcr.io/a/b", "https://evil.example/token", False),
    ("ghcr.io/a/b", "https://ghcr.io.evil.example/token", False),
    ("127.0.0.1:5000/a", "http://127.0.0.1:5000/token", True),
    ("127.0.0.1:5000/a", "http://127.0.0.1:6000/token", False),
    ("127.0.0.1:5000/a", "http://10.0.0.1/token", False),
])
def test_a_token_realm_gets_credentials_only_over_https_on_the_registrys_domain(repository, realm, allowed):
    assert stages.registry(Repository.parse(repository)).realm_may_have(realm) is allowed


def test_gcp_uses_an_access_token_of_the_default_credentials(monkeypatch, capsys):
    import google.auth

    class Creds:
        token = None

        def refresh(self, request):
            self.token = "ya29.secret-token"

    seen = {}

    def default(scopes=None):
        seen["scopes"] = scopes
        return Creds(), "acme"

    monkeypatch.setattr(google.auth, "default", default)
    monkeypatch.setenv("GITHUB_ACTIONS", "true")
    credentials = stages.registry(Repository.parse("europe-west1-docker.pkg.dev/acme/flows/x")).credentials()
    assert (credentials.username, credentials.password) == ("oauth2accesstoken", "ya29.secret-token")
    assert seen["scopes"] == ["https://www.googleapis.com/auth/cloud-platform"]
    assert "::add-mask::ya29.secret-token" in capsys.readouterr().err


def test_gcp_without_credentials_says_how_to_get_them(monkeypatch):
    import google.auth
    import google.auth.exceptions

    def default(scopes=None):
        raise google.auth.exceptions.DefaultCredentialsError("Your default credentials were not found.")

    monkeypatch.setattr(google.auth, "default", default)
    with pytest.raises(RegistryError, match="google-github-actions/auth"):
        stages.registry(Repository.parse("europe-west1-docker.pkg.dev/acme/flows/x")).credentials()


def test_docker_login_gets_the_password_on_stdin_never_in_argv(fake_docker):
    with docker.private_config(stages.settings().environ):
        docker.login("127.0.0.1:5000", "ci", "ci-secret-pw")
    [call] = fake_docker.calls
    assert call["argv"] == ["login", "127.0.0.1:5000", "--username", "ci", "--password-stdin"]
    assert "ci-secret-pw" not in json.dumps(call["argv"])
    assert call["stdin"].strip() == "ci-secret-pw"


def test_what_docker_login_stored_is_found(tmp_path, monkeypatch):
    config = tmp_path / "docker-config"
    config.mkdir()
    auth = base64.b64encode(b"ci:stored-pw").decode()
    (config / "config.json").write_text(json.dumps({"auths": {"ghcr.io": {"auth": auth}}}))
    found = registries.docker_config_credentials(stages.settings().environ, github.mask, "ghcr.io")
    assert (found.username, found.password) == ("ci", "stored-pw")
    assert registries.docker_config_credentials(stages.settings().environ, github.mask, "quay.io") is None


def _registry_with(handler, text="ghcr.io/acme/flows") -> registries.Registry:
    registry = stages.registry(Repository.parse(text))
    registry._client = httpx.Client(transport=httpx.MockTransport(handler))
    return registry


def test_a_tag_is_looked_up_with_one_head_after_the_token_dance(monkeypatch):
    monkeypatch.setenv("REGISTRY_USERNAME", "ci")
    monkeypatch.setenv("REGISTRY_PASSWORD", "pw")
    requests = []

    def handler(request: httpx.Request) -> httpx.Response:
        requests.append(request)
        if request.url.path == "/token":
            assert request.headers["Authorization"] == "Basic " + base64.b64encode(b"ci:pw").decode()
            assert request.url.params["scope"] == "repository:acme/flows:pull"
            return httpx.Response(200, json={"token": "t0k"})
        if request.headers.get("Authorization") != "Bearer t0k":
            return httpx.Response(401, headers={
                "WWW-Authenticate": 'Bearer realm="https://ghcr.io/token",service="ghcr.io"'})
        assert "application/vnd.oci.image.index.v1+json" in request.headers["Accept"]
        if request.url.path.endswith("/manifests/ct-1"):
            return httpx.Response(200, headers={"Docker-Content-Digest": "sha256:" + "a" * 64})
        return httpx.Response(404)

    registry = _registry_with(handler)
    assert registry.digest("ct-1") == "sha256:" + "a" * 64
    assert str(requests[0].url) == "https://ghcr.io/v2/acme/flows/manifests/ct-1"
    assert requests[0].method == "HEAD"
    assert registry.digest("ct-2") is None  # the token is reused: one request
    assert len(requests) == 4


def test_a_refusal_says_how_to_give_credentials_and_holds_no_secret(monkeypatch):
    def handler(request):
        return httpx.Response(401, headers={"WWW-Authenticate": 'Basic realm="r"'})

    with pytest.raises(RegistryError, match="REGISTRY_USERNAME and REGISTRY_PASSWORD"):
        _registry_with(handler).digest("ct-1")
    monkeypatch.setenv("REGISTRY_USERNAME", "ci")
    monkeypatch.setenv("REGISTRY_PASSWORD", "wrong-pw")
    with pytest.raises(RegistryError, match="credentials were refused") as refused:
        _registry_with(handler).digest("ct-1")
    assert "wrong-pw" not in str(refused.value)


def test_an_unreachable_registry_is_one_clear_line():
    def handler(request):
        raise httpx.ConnectError("connection refused")

    with pytest.raises(RegistryError, match="cannot reach the registry ghcr.io"):
        _registry_with(handler).digest("ct-1")
