"""Registries: which kind a repository lives in, its credentials, and what tags it already has.

The kind follows the repository's host:

    <account>.dkr.ecr.<region>.amazonaws.com/...   ECR: a token from boto3, tags looked up with ECR's API
    <region>-docker.pkg.dev/..., *gcr.io/...        GCP: an access token from google-auth's default
                                                    credentials, user `oauth2accesstoken`
    anything else                                  REGISTRY_USERNAME / REGISTRY_PASSWORD, or none

REGISTRY_USERNAME and REGISTRY_PASSWORD, when set, are for the one registry REGISTRY_HOST names (the
action's `registry-host`): the workflow author says where they go, since the repository a run pushes
to is the manifest's, which a pull request can change. They are used for any kind, but only when the
environment's repository is on that host. Every password is handed to `secret` (the report layer masks
it under GitHub Actions and keeps it out of what it writes) before it is used, and goes to Docker on
stdin only. The variables are the run's settings (register/settings.py), never this process's.

Tags are looked up with the registry's HTTP API (`HEAD /v2/<name>/manifests/<tag>`): one request, no
Docker needed, and the answer carries the digest the registry will serve. Credentials answer a
challenge only over https (plain http on loopback, where Docker speaks it too), and a token realm gets
them only on the registry's own host or a host of its domain (auth.docker.io for docker.io,
gitlab.com for registry.gitlab.com); redirects are not followed with them.
"""

from __future__ import annotations

import base64
import ipaddress
import json
import re
import subprocess
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path

from register.settings import Settings

Secret = Callable[[str], None]  # told each secret value as soon as it is known, before it is used

MANIFEST_TYPES = ", ".join([
    "application/vnd.oci.image.index.v1+json",
    "application/vnd.docker.distribution.manifest.list.v2+json",
    "application/vnd.oci.image.manifest.v1+json",
    "application/vnd.docker.distribution.manifest.v2+json",
])

_ECR_HOST = re.compile(r"^(?P<account>\d{12})\.dkr\.ecr(?:-fips)?\.(?P<region>[a-z0-9-]+)\.amazonaws\.com(?:\.cn)?$")
_GCP_HOST = re.compile(r"^([a-z0-9-]+-docker\.pkg\.dev|([a-z]+\.)?gcr\.io)$")
_PATH_COMPONENT = re.compile(r"^[a-z0-9]+(?:(?:[._]|__|-+)[a-z0-9]+)*$")
DOCKER_HUB = "docker.io"
TIMEOUT = 60.0  # seconds for the whole of one request to a registry or its token endpoint
ANSWER_CAP = 8 * 1024 * 1024  # a manifest or a token is small (registries refuse manifests over 4 MiB)


class RegistryError(Exception):
    """The registry could not be reached or refused us. The message names the registry, never a secret."""


@dataclass(frozen=True)
class Repository:
    """An image repository as the manifest names it, without tag or digest."""

    text: str  # as written, e.g. 127.0.0.1:5000/sales-etl
    host: str  # e.g. 127.0.0.1:5000, docker.io
    path: str  # e.g. sales-etl, library/python

    @classmethod
    def parse(cls, text: str) -> "Repository":
        """Raises ValueError with a message for the user when `text` is not a repository."""
        if "@" in text:
            raise ValueError(f"'{text}' names a digest; give the repository only, e.g. "
                             f"'{text.split('@')[0]}'")
        first, _, rest = text.partition("/")
        if rest and ("." in first or ":" in first or first == "localhost"):
            host, path = first, rest
        else:
            host, path = DOCKER_HUB, text
            if "/" not in path:
                path = f"library/{path}"
        if ":" in path:
            raise ValueError(f"'{text}' has a tag; give the repository only, e.g. "
                             f"'{text.rsplit(':', 1)[0]}' (flow-register tags the image itself)")
        bad = [c for c in path.split("/") if not _PATH_COMPONENT.match(c)]
        if bad:
            raise ValueError(f"'{text}' is not a valid repository: '{bad[0]}' must be lowercase letters, "
                             "digits and single separators (. _ -)")
        return cls(text=text, host=host, path=path)

    @property
    def api_host(self) -> str:
        return "registry-1.docker.io" if self.host == DOCKER_HUB else self.host

    def tagged(self, tag: str) -> str:
        return f"{self.text}:{tag}"

    def pinned(self, digest: str) -> str:
        return f"{self.text}@{digest}"


@dataclass(frozen=True)
class Credentials:
    username: str
    password: str = field(repr=False)
    source: str = ""  # where they came from, for the log: "REGISTRY_USERNAME", "ECR", ...


def is_loopback(host: str) -> bool:
    """Docker talks plain HTTP to registries on loopback; so do we."""
    name = host.rsplit(":", 1)[0] if host.count(":") == 1 or host.startswith("[") else host
    name = name.strip("[]")
    if name == "localhost":
        return True
    try:
        return ipaddress.ip_address(name).is_loopback
    except ValueError:
        return False


_DOCKER_HUB_HOSTS = {DOCKER_HUB, "index.docker.io", "registry-1.docker.io"}


def same_registry(a: str, b: str) -> bool:
    """Whether two registry hosts (with any port) are one registry: equal, Docker Hub's names aside."""
    a, b = a.strip().lower().removeprefix("https://").rstrip("/"), b.strip().lower().removeprefix("https://").rstrip("/")
    return a == b or (a in _DOCKER_HUB_HOSTS and b in _DOCKER_HUB_HOSTS)


def explicit_credentials(environ: Mapping[str, str], secret: Secret, host: str | None = None) -> Credentials | None:
    """REGISTRY_USERNAME/REGISTRY_PASSWORD, for the registry `host` when REGISTRY_HOST names it; else None."""
    username = environ.get("REGISTRY_USERNAME") or ""
    password = environ.get("REGISTRY_PASSWORD") or ""
    if bool(username) != bool(password):
        missing = "REGISTRY_PASSWORD" if username else "REGISTRY_USERNAME"
        raise RegistryError(f"{missing} is not set: give both a registry username and a password, or neither")
    if not username:
        return None
    secret(password)
    bound = (environ.get("REGISTRY_HOST") or "").strip()
    if not bound:
        raise RegistryError("REGISTRY_USERNAME and REGISTRY_PASSWORD are set, but not the registry they are for: set "
                            "REGISTRY_HOST (the action's registry-host input) to its host, e.g. ghcr.io; they are "
                            "sent to that host only, whatever repository a manifest names")
    if host is not None and not same_registry(host, bound):
        return None
    return Credentials(username, password, "REGISTRY_USERNAME/REGISTRY_PASSWORD")


def docker_config_credentials(environ: Mapping[str, str], secret: Secret, host: str) -> Credentials | None:
    """What `docker login` stored for `host` (a credential helper, or config.json's `auths`)."""
    home = environ.get("HOME")
    config_dir = Path(environ.get("DOCKER_CONFIG") or (Path(home) if home else Path.home()) / ".docker")
    try:
        config = json.loads((config_dir / "config.json").read_text())
    except (OSError, ValueError):
        return None
    keys = [host, f"https://{host}", f"http://{host}"]
    if host == DOCKER_HUB:
        keys.insert(0, "https://index.docker.io/v1/")
    helper = next((config.get("credHelpers", {}).get(k) for k in keys if k in config.get("credHelpers", {})),
                  config.get("credsStore"))
    if helper:
        for key in keys:
            try:
                out = subprocess.run([f"docker-credential-{helper}", "get"], input=key, capture_output=True,
                                     text=True, timeout=30, env=dict(environ))
            except (OSError, subprocess.TimeoutExpired):
                break
            if out.returncode == 0:
                found = json.loads(out.stdout)
                if found.get("Secret"):
                    secret(found["Secret"])
                return Credentials(found.get("Username", ""), found.get("Secret", ""), f"docker-credential-{helper}")
    for key in keys:
        auth = config.get("auths", {}).get(key, {}).get("auth")
        if auth:
            username, _, password = base64.b64decode(auth).decode().partition(":")
            secret(password)
            return Credentials(username, password, "docker config")
    return None


class Registry:
    """A registry speaking the OCI distribution API; credentials from the run's settings, if any. `secret` is
    told every password and token before it is used."""

    kind = "registry"

    def __init__(self, repository: Repository, settings: Settings, secret: Secret):
        self.repository = repository
        self.settings = settings
        self.secret = secret
        self._credentials: Credentials | None = None
        self._credentials_read = False
        self._tokens: dict[str, str] = {}
        self._client = None

    # --- credentials ---------------------------------------------------------------------

    def credentials(self) -> Credentials | None:
        """The credentials to log Docker in with, masked; None: use what Docker already has."""
        if not self._credentials_read:
            self._credentials = explicit_credentials(self.settings.environ, self.secret, self.repository.host) \
                or self._own_credentials()
            self._credentials_read = True
        return self._credentials

    def _own_credentials(self) -> Credentials | None:
        return None

    @property
    def login_server(self) -> str:
        return self.repository.host

    # --- repository ----------------------------------------------------------------------

    def repository_exists(self) -> bool:
        return True  # OCI registries create a repository on first push

    def create_repository(self) -> None:
        pass

    # --- tags ----------------------------------------------------------------------------

    def digest(self, tag: str) -> str | None:
        """The digest the registry serves for `tag`, or None when it has no such tag."""
        response = self._request("HEAD", f"manifests/{tag}", headers={"Accept": MANIFEST_TYPES})
        if response.status_code == 404:
            return None
        self._raise_for(response, f"look up tag {tag}")
        digest = response.headers.get("Docker-Content-Digest")
        if not digest:  # a registry that does not send it on HEAD (rare): ask for the manifest itself
            response = self._request("GET", f"manifests/{tag}", headers={"Accept": MANIFEST_TYPES})
            self._raise_for(response, f"read the manifest of tag {tag}")
            import hashlib
            digest = "sha256:" + hashlib.sha256(response.content).hexdigest()
        return digest

    def add_tag(self, digest: str, tag: str) -> None:
        """Give the image `digest` one more tag, in the registry itself: no build, no layer moves."""
        response = self._request("GET", f"manifests/{digest}", headers={"Accept": MANIFEST_TYPES})
        self._raise_for(response, f"read the manifest {digest}")
        media_type = response.headers.get("Content-Type", "").split(";")[0]
        put = self._request("PUT", f"manifests/{tag}", headers={"Content-Type": media_type},
                            content=response.content, push=True)
        self._raise_for(put, f"tag {digest} as {tag}")

    # --- HTTP ----------------------------------------------------------------------------

    @property
    def base_url(self) -> str:
        scheme = "http" if is_loopback(self.repository.host) else "https"
        return f"{scheme}://{self.repository.api_host}/v2/{self.repository.path}"

    def _http(self):
        if self._client is None:
            from register import http

            # No redirect is followed: a registry's answer must not send this client, with its Authorization
            # header, to another host.
            self._client = http.client(seconds=TIMEOUT, cap=ANSWER_CAP, timeout=TIMEOUT, follow_redirects=False)
        return self._client

    def _request(self, method: str, path: str, *, headers: dict, push: bool = False, content: bytes | None = None):
        import httpx

        url = f"{self.base_url}/{path}"
        scope = f"repository:{self.repository.path}:{'pull,push' if push else 'pull'}"
        try:
            auth = self._tokens.get(scope)
            response = self._http().request(method, url, headers={**headers, **(auth and {"Authorization": auth} or {})},
                                            content=content)
            if response.status_code == 401:
                auth = self._authorize(response.headers.get("WWW-Authenticate", ""), scope)
                if auth:
                    self._tokens[scope] = auth
                    response = self._http().request(method, url, headers={**headers, "Authorization": auth},
                                                    content=content)
        except httpx.HTTPError as error:
            raise RegistryError(f"cannot reach the registry {self.repository.host}: {type(error).__name__}: "
                                f"{error}") from None
        return response

    def _basic(self) -> Credentials | None:
        return self.credentials() or docker_config_credentials(self.settings.environ, self.secret, self.repository.host)

    def _authorize(self, challenge: str, scope: str) -> str | None:
        """The Authorization header that answers the registry's challenge (Basic, or a Bearer token)."""
        scheme, _, params = challenge.partition(" ")
        credentials = self._basic()
        if scheme.lower() == "basic":
            if not credentials or not self.base_url.startswith("https://") and not is_loopback(self.repository.host):
                return None
            raw = f"{credentials.username}:{credentials.password}".encode()
            return "Basic " + base64.b64encode(raw).decode()
        if scheme.lower() != "bearer":
            return None
        fields = dict(re.findall(r'(\w+)="([^"]*)"', params))
        realm = fields.get("realm")
        if not realm:
            return None
        query = {"scope": scope}
        if fields.get("service"):
            query["service"] = fields["service"]
        auth = (credentials.username, credentials.password) if credentials and self.realm_may_have(realm) else None
        answer = self._http().get(realm, params=query, auth=auth)
        if answer.status_code != 200:
            return None
        try:
            body = answer.json()
        except ValueError:  # not JSON: no token, as for a refusal
            return None
        token = (body.get("token") or body.get("access_token")) if isinstance(body, dict) else None
        if not isinstance(token, str) or not token:
            return None
        self.secret(token)
        return f"Bearer {token}"

    def realm_may_have(self, realm: str) -> bool:
        """Whether a token realm may get this registry's credentials: the registry itself (same host and port),
        or over https a host of its domain (auth.docker.io for Docker Hub); plain http only back to a registry on
        loopback, at its own address."""
        import httpx

        try:
            url = httpx.URL(realm)
        except (httpx.InvalidURL, TypeError):
            return False
        host = (url.host or "").lower()
        default = {"https": 443, "http": 80}.get(url.scheme)
        where = f"{host}:{url.port}" if url.port not in (None, default) else host
        registry = self.repository.api_host.lower()
        if url.scheme == "http":
            return is_loopback(registry) and where == registry
        if url.scheme != "https":
            return False
        if where == registry:
            return True
        labels = registry.split(".")
        domain = ".".join(labels[-2:]) if len(labels) >= 2 and ":" not in registry else None
        return bool(domain) and where == host and (host == domain or host.endswith(f".{domain}"))

    def _raise_for(self, response, doing: str) -> None:
        if response.status_code < 400:
            return
        if response.status_code in (401, 403):
            bound = self.settings.environ.get("REGISTRY_HOST")
            how = ("the credentials were refused" if self._basic()
                   else f"REGISTRY_USERNAME and REGISTRY_PASSWORD are for {bound} only, not {self.repository.host}"
                   if bound and self.settings.environ.get("REGISTRY_USERNAME")
                   else "set REGISTRY_HOST, REGISTRY_USERNAME and REGISTRY_PASSWORD (action inputs registry-host, "
                        "registry-username and registry-password), or `docker login` first")
            raise RegistryError(f"{self.repository.host} refused to {doing} in {self.repository.path} "
                                f"(HTTP {response.status_code}): {how}")
        from register.http import shorten

        raise RegistryError(f"{self.repository.host} could not {doing} in {self.repository.path}: "
                            f"HTTP {response.status_code} {shorten(response.text.strip(), 200)}")


class GcpRegistry(Registry):
    """Artifact Registry / Container Registry: an OAuth access token from the default credentials."""

    kind = "gcp"

    def _own_credentials(self) -> Credentials | None:
        import google.auth.exceptions
        import google.auth.transport.requests

        try:
            creds = self.settings.google_credentials(["https://www.googleapis.com/auth/cloud-platform"])
            creds.refresh(google.auth.transport.requests.Request())
        except google.auth.exceptions.GoogleAuthError as error:
            raise RegistryError(f"no Google credentials for {self.repository.host}: {type(error).__name__}: "
                                f"{str(error).splitlines()[0] if str(error) else ''} (use google-github-actions/auth "
                                "or set GOOGLE_APPLICATION_CREDENTIALS)") from None
        self.secret(creds.token)
        return Credentials("oauth2accesstoken", creds.token, "google-auth default credentials")


class EcrRegistry(Registry):
    """Amazon ECR: a token from GetAuthorizationToken; tags and repositories through ECR's own API."""

    kind = "ecr"

    def __init__(self, repository: Repository, settings: Settings, secret: Secret, account: str, region: str):
        super().__init__(repository, settings, secret)
        self.account = account
        self.region = region
        self._ecr = None

    def client(self):
        if self._ecr is None:
            # The settings' keys and endpoint (AWS_ENDPOINT_URL_ECR / AWS_ENDPOINT_URL: a local ECR, e.g. moto).
            self._ecr = self.settings.aws_client("ecr", region=self.region)
        return self._ecr

    def _call(self, doing: str, method: str, **kwargs):
        from botocore.exceptions import BotoCoreError, ClientError

        try:
            return getattr(self.client(), method)(**kwargs)
        except ClientError:
            raise
        except BotoCoreError as error:
            raise RegistryError(f"ECR ({self.region}) could not {doing}: {error}") from None

    def _own_credentials(self) -> Credentials:
        from botocore.exceptions import ClientError

        try:
            answer = self._call("issue a login token", "get_authorization_token", registryIds=[self.account])
        except ClientError as error:
            raise RegistryError(f"ECR ({self.region}) refused a login token for account {self.account}: "
                                f"{error.response['Error'].get('Message', error)}") from None
        token = answer["authorizationData"][0]["authorizationToken"]
        username, _, password = base64.b64decode(token).decode().partition(":")
        self.secret(password)
        self.secret(token)
        return Credentials(username, password, f"ECR GetAuthorizationToken ({self.region})")

    def repository_exists(self) -> bool:
        from botocore.exceptions import ClientError

        try:
            self._call("describe the repository", "describe_repositories", registryId=self.account,
                       repositoryNames=[self.repository.path])
        except ClientError as error:
            if error.response["Error"]["Code"] == "RepositoryNotFoundException":
                return False
            raise self._error("describe the repository", error) from None
        return True

    def create_repository(self) -> None:
        from botocore.exceptions import ClientError

        try:
            self._call("create the repository", "create_repository", registryId=self.account,
                       repositoryName=self.repository.path)
        except ClientError as error:
            if error.response["Error"]["Code"] != "RepositoryAlreadyExistsException":
                raise self._error("create the repository", error) from None

    def digest(self, tag: str) -> str | None:
        from botocore.exceptions import ClientError

        try:
            answer = self._call(f"look up tag {tag}", "describe_images", registryId=self.account,
                                repositoryName=self.repository.path, imageIds=[{"imageTag": tag}])
        except ClientError as error:
            if error.response["Error"]["Code"] in ("ImageNotFoundException", "RepositoryNotFoundException"):
                return None
            raise self._error(f"look up tag {tag}", error) from None
        details = answer.get("imageDetails") or []
        return details[0]["imageDigest"] if details else None

    def add_tag(self, digest: str, tag: str) -> None:
        from botocore.exceptions import ClientError

        try:
            found = self._call(f"read {digest}", "batch_get_image", registryId=self.account,
                               repositoryName=self.repository.path, imageIds=[{"imageDigest": digest}],
                               acceptedMediaTypes=[t.strip() for t in MANIFEST_TYPES.split(",")])
            image = found["images"][0]
            kwargs = {"imageManifestMediaType": image["imageManifestMediaType"]} \
                if image.get("imageManifestMediaType") else {}
            self._call(f"tag {digest} as {tag}", "put_image", registryId=self.account,
                       repositoryName=self.repository.path, imageManifest=image["imageManifest"], imageTag=tag,
                       **kwargs)
        except ClientError as error:
            if error.response["Error"]["Code"] != "ImageAlreadyExistsException":
                raise self._error(f"tag {digest} as {tag}", error) from None
        except (KeyError, IndexError):
            raise RegistryError(f"ECR has no image {digest} in {self.repository.path}") from None

    def _error(self, doing: str, error) -> RegistryError:
        message = error.response["Error"].get("Message") or error.response["Error"].get("Code")
        return RegistryError(f"ECR ({self.region}, account {self.account}) could not {doing} "
                             f"in {self.repository.path}: {message}")


def for_repository(repository: Repository, settings: Settings, secret: Secret) -> Registry:
    """The registry `repository` lives in, by its host; its credentials from `settings`, each told to `secret`."""
    host = repository.host.split(":")[0]
    ecr = _ECR_HOST.match(host)
    if ecr:
        # The host names the region the registry is in: a token from any other region is refused.
        return EcrRegistry(repository, settings, secret, ecr["account"], ecr["region"])
    if _GCP_HOST.match(host):
        return GcpRegistry(repository, settings, secret)
    return Registry(repository, settings, secret)
