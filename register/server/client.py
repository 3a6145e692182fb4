"""The Prefect server, as a deploy sees it: a few bulk reads, then only the writes that change something.

It talks through Prefect's own client (authentication, API version header, retries on 429/503, CSRF),
but to a URL it was given: it never falls back to a throwaway ephemeral server. Every error it raises
names the request and the server's reason, and never contains a secret.
"""

from __future__ import annotations

import base64
import os
from dataclasses import dataclass, field
from urllib.parse import urlsplit, urlunsplit

from register.problems import Invalid, Problem

PAGE = 200  # the server's largest page (PREFECT_API_DEFAULT_LIMIT)


class ServerError(Exception):
    """A request failed. `status` is the HTTP status, or None when the server could not be reached."""

    def __init__(self, message: str, status: int | None = None):
        super().__init__(message)
        self.status = status

    @property
    def unreachable(self) -> bool:
        return self.status is None


@dataclass(frozen=True)
class Connection:
    url: str
    api_key: str | None = field(default=None, repr=False)
    auth_string: str | None = field(default=None, repr=False)

    @property
    def display_url(self) -> str:
        """The URL without any user:password part."""
        parts = urlsplit(self.url)
        host = parts.netloc.rpartition("@")[2]
        return urlunsplit((parts.scheme, host, parts.path, parts.query, parts.fragment)).rstrip("/")

    def secrets(self) -> list[str]:
        found = [s for s in (self.api_key, self.auth_string) if s]
        if self.auth_string:
            found.append(base64.b64encode(self.auth_string.encode()).decode())  # as a Basic header carries it
            found.append(self.auth_string.partition(":")[2])
        userinfo = urlsplit(self.url).netloc.rpartition("@")[0]
        if userinfo:
            found += [userinfo, userinfo.partition(":")[2]]
        return sorted({s for s in found if len(s) >= 4}, key=len, reverse=True)

    def redact(self, text: str) -> str:
        for secret in self.secrets():
            text = text.replace(secret, "***")
        return text


def connection_from_environment() -> Connection:
    """The server of PREFECT_API_URL (and its key or auth string); an error naming PREFECT_API_URL without it.

    Prefect's settings are read the way `prefect` reads them (environment, then profile), so a user who
    ran `prefect cloud login` is served; but the ephemeral fallback is switched off first.
    """
    os.environ["PREFECT_SERVER_EPHEMERAL_ENABLED"] = "false"
    from prefect.settings import get_current_settings

    api = get_current_settings().api
    url = os.environ.get("PREFECT_API_URL") or (str(api.url) if api.url else "")
    if not url.strip():
        raise Invalid([Problem(
            "PREFECT_API_URL", 0, 0,
            "PREFECT_API_URL is not set: set it to the API of the Prefect server to register into, e.g. "
            "http://127.0.0.1:4200/api or https://api.prefect.cloud/api/accounts/<id>/workspaces/<id> "
            "(flow-register never starts a temporary server)", "server-url")])
    if not url.startswith(("http://", "https://")):
        raise Invalid([Problem("PREFECT_API_URL", 0, 0, f"PREFECT_API_URL '{Connection(url).display_url}' is not "
                                                        "an http:// or https:// URL", "server-url")])

    def secret(name: str, setting) -> str | None:
        value = os.environ.get(name)
        if value is None and setting is not None:
            value = setting.get_secret_value() if hasattr(setting, "get_secret_value") else str(setting)
        return value or None

    return Connection(url.rstrip("/"), secret("PREFECT_API_KEY", api.key), secret("PREFECT_API_AUTH_STRING", api.auth_string))


class Server:
    """One connection to the Prefect API. Counts its requests (reads and writes) for the report."""

    def __init__(self, connection: Connection):
        self.connection = connection
        self.reads = 0
        self.writes = 0
        self._client = None

    @property
    def url(self) -> str:
        return self.connection.display_url

    def __enter__(self) -> Server:
        from prefect.client.orchestration import SyncPrefectClient

        self._client = SyncPrefectClient(self.connection.url, api_key=self.connection.api_key,
                                         auth_string=self.connection.auth_string)
        self._client.__enter__()
        return self

    def __exit__(self, *exc_info) -> None:
        if self._client is not None:
            self._client.__exit__(*exc_info)

    # -- requests ------------------------------------------------------------------------------

    def request(self, method: str, path: str, *, json=None, doing: str):
        """Send one request; the parsed JSON answer, or a ServerError saying what was being done."""
        import httpx
        from prefect.exceptions import PrefectHTTPStatusError

        if method in ("GET",) or path.endswith("/filter"):
            self.reads += 1
        else:
            self.writes += 1
        try:
            response = self._client.request(method, path, json=json)
        except PrefectHTTPStatusError as error:
            raise self._status_error(error.response, doing) from None
        except httpx.HTTPError as error:
            reason = str(error) or type(error).__name__
            raise ServerError(self.connection.redact(
                f"cannot reach the Prefect server at {self.url} while {doing}: {reason}")) from None
        if response.status_code == 204 or not response.content:
            return None
        return response.json()

    def _status_error(self, response, doing: str) -> ServerError:
        try:
            body = response.json()
            detail = body.get("detail", body) if isinstance(body, dict) else body
        except ValueError:
            detail = response.text[:500]
        if isinstance(detail, list):  # FastAPI's validation errors
            detail = "; ".join(f"{'.'.join(str(p) for p in d.get('loc', []))}: {d.get('msg')}"
                               if isinstance(d, dict) else str(d) for d in detail)
        status = response.status_code
        hint = ""
        if status in (401, 403):
            if self.connection.api_key:
                hint = "; check PREFECT_API_KEY"
            elif self.connection.auth_string:
                hint = "; check PREFECT_API_AUTH_STRING"
            else:
                hint = ("; the server wants credentials: set PREFECT_API_KEY (Prefect Cloud) or "
                        "PREFECT_API_AUTH_STRING (a server with basic auth)")
        detail = f": {detail}" if detail not in (None, "", {}, []) else ""
        message = f"{doing}: the server answered {status} {response.reason_phrase}{detail}{hint}"
        return ServerError(self.connection.redact(message), status)

    def _paged(self, path: str, body: dict, doing: str) -> list[dict]:
        out: list[dict] = []
        while True:
            page = self.request("POST", path, json={**body, "limit": PAGE, "offset": len(out)}, doing=doing)
            out += page
            if len(page) < PAGE:
                return out

    # -- reads (bulk: one request per kind, whatever the number of deployments) -----------------

    def work_pools(self, names: list[str]) -> dict[str, dict]:
        pools = self._paged("/work_pools/filter", {"work_pools": {"name": {"any_": sorted(set(names))}}},
                            "reading work pools")
        return {pool["name"]: pool for pool in pools}

    def work_pool_names(self) -> list[str]:
        return sorted(p["name"] for p in self._paged("/work_pools/filter", {}, "listing work pools"))

    def deployments(self, names: list[str], owner_tags: list[str]) -> list[dict]:
        """Deployments named like a desired one, or carrying all of `owner_tags` (whatever their name)."""
        criteria = {"operator": "or_", "tags": {"all_": owner_tags}}
        if names:
            criteria["name"] = {"any_": sorted(set(names))}
        return self._paged("/deployments/filter", {"deployments": criteria}, "reading deployments")

    def flows(self, names: list[str], ids: list[str]) -> list[dict]:
        if not names and not ids:
            return []
        criteria: dict = {"operator": "or_"}
        if names:
            criteria["name"] = {"any_": sorted(set(names))}
        if ids:
            criteria["id"] = {"any_": sorted(set(ids))}
        return self._paged("/flows/filter", {"flows": criteria}, "reading flows")

    def automations(self, owner_tags: list[str]) -> list[dict]:
        return self._paged("/automations/filter", {"automations": {"tags": {"all_": owner_tags}}},
                           "reading automations")

    def worker_metadata(self) -> dict:
        """Every known worker type's default base job template (bundled with the server, works offline)."""
        return self.request("GET", "/collections/views/aggregate-worker-metadata", doing="reading worker types")

    # -- writes --------------------------------------------------------------------------------

    def create_flow(self, name: str) -> str:
        """The flow's id; POST /flows/ returns the existing flow when the name is taken."""
        return self.request("POST", "/flows/", json={"name": name}, doing=f"creating flow '{name}'")["id"]

    def upsert_deployment(self, payload: dict) -> str:
        """Create the deployment, or replace the one with the same flow and name (same id)."""
        return self.request("POST", "/deployments/", json=payload,
                            doing=f"registering deployment '{payload['name']}'")["id"]

    def delete_deployment(self, deployment_id: str, name: str) -> None:
        try:
            self.request("DELETE", f"/deployments/{deployment_id}", doing=f"deleting deployment '{name}'")
        except ServerError as error:
            if error.status != 404:  # already gone: what a delete wants
                raise

    def delete_owned_automations(self, deployment_id: str, name: str) -> None:
        self.request("DELETE", f"/automations/owned-by/prefect.deployment.{deployment_id}",
                     doing=f"deleting the triggers of '{name}'")

    def create_automation(self, automation: dict, name: str) -> str:
        return self.request("POST", "/automations/", json=automation,
                            doing=f"creating trigger '{automation['name']}' of '{name}'")["id"]

    def create_work_pool(self, name: str, pool_type: str, base_job_template: dict) -> dict:
        return self.request("POST", "/work_pools/",
                            json={"name": name, "type": pool_type, "base_job_template": base_job_template},
                            doing=f"creating work pool '{name}'")
