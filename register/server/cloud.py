"""Prefect Cloud, as a deploy meets it: the workspace's API URL, and what Cloud's refusals mean.

A workspace's API is `https://api.prefect.cloud/api/accounts/<account id>/workspaces/<workspace id>`;
teams often keep the two ids instead of the URL, or paste the UI's address
(`https://app.prefect.cloud/account/<id>/workspace/<id>/...`), which answers HTML, not the API. Both are
told here before any request. A 401 is the key; a 403 is one of three things on Cloud (a limit of the
account's plan, a role without the permission, a workspace the key cannot reach), each with its own fix:
the answer's text and the key's own list of workspaces (`GET /api/me/workspaces`, what `prefect cloud
login` reads) tell which.
"""

from __future__ import annotations

import re
import uuid
from urllib.parse import urlsplit

CLOUD_API = "https://api.prefect.cloud/api"  # Prefect's PREFECT_CLOUD_API_URL default
UI_HOST = "app.prefect.cloud"
_ID = r"[^/?#]+"  # Cloud shows UUIDs; any segment is taken, so a later id form is not refused
_WORKSPACE_PATH = re.compile(rf"^(?P<base>.*?/api)/accounts/(?P<account>{_ID})/workspaces/(?P<workspace>{_ID})/?$")
_UI_PATH = re.compile(rf"/account/(?P<account>{_ID})/workspaces?/(?P<workspace>{_ID})")
_NO_API = re.compile(rf"^/accounts/(?P<account>{_ID})/workspaces/(?P<workspace>{_ID})/?$")
_NO_ACCOUNT = re.compile(rf"^(/api)?/workspaces/(?P<workspace>{_ID})/?$")
# Words of a refusal for a plan's limit (Cloud: "maximum number of deployments" on Hobby).
_LIMIT_WORDS = re.compile(r"\b(limit|maximum|quota|upgrade|plan)\b", re.IGNORECASE)


def workspace_url(account: str, workspace: str, cloud_api: str = CLOUD_API) -> str:
    return f"{cloud_api.rstrip('/')}/accounts/{account}/workspaces/{workspace}"


def is_id(text: str) -> bool:
    try:
        uuid.UUID(text)
    except ValueError:
        return False
    return True


def url_mistake(url: str) -> str | None:
    """Why `url` cannot be a Prefect Cloud workspace's API, with the URL to use; None when it may be."""
    parts = urlsplit(url)
    host = (parts.hostname or "").lower()
    path = parts.path.rstrip("/")
    if host == UI_HOST:
        found = _UI_PATH.search(path)
        use = workspace_url(found["account"], found["workspace"]) if found else \
            workspace_url("<account id>", "<workspace id>")
        return (f"PREFECT_API_URL is the address of Prefect Cloud's web UI ({UI_HOST}), not of its API: use {use}"
                + ("" if found else " (both ids are in the UI's address after /account/ and /workspace/)"))
    if host != urlsplit(CLOUD_API).hostname:
        return None
    if found := _NO_API.match(path):
        return (f"PREFECT_API_URL lacks '/api' before '/accounts': use "
                f"{workspace_url(found['account'], found['workspace'])}")
    if found := _NO_ACCOUNT.match(path):
        return (f"PREFECT_API_URL names a workspace without its account: use "
                f"{workspace_url('<account id>', found['workspace'])} (the account id is in the UI's address after "
                "/account/), or give the account and workspace ids instead of the URL")
    if not _WORKSPACE_PATH.match(path):
        return (f"PREFECT_API_URL on {host} must name a workspace: "
                f"{workspace_url('<account id>', '<workspace id>')}")
    return None


def scope(url: str) -> tuple[str, str, str] | None:
    """(the API's base URL ending in /api, account id, workspace id) of a workspace URL, else None."""
    parts = urlsplit(url)
    found = _WORKSPACE_PATH.match(parts.path.rstrip("/"))
    if not found:
        return None
    return f"{parts.scheme}://{parts.netloc}{found['base']}", found["account"].lower(), found["workspace"].lower()


def refusal_hint(status: int, detail: str, url: str, *, has_key: bool, workspaces) -> str | None:
    """What a 401 or 403 from a Prefect Cloud workspace means, and what to do; None when `url` is not one.

    `workspaces`: called only when needed, the key's workspaces as Cloud lists them (or None if unknown)."""
    where = scope(url)
    if where is None:
        return None
    _, account, workspace = where
    if status == 401:
        if not has_key:
            return ("; Prefect Cloud needs an API key: set PREFECT_API_KEY (input prefect-api-key) to a key of a "
                    "user or service account of this workspace")
        return ("; Prefect Cloud did not accept PREFECT_API_KEY: it is wrong, expired or revoked; create a new key "
                "(a service account's, for CI) and store it in the secret")
    if _LIMIT_WORDS.search(detail or ""):
        return ("; this is a limit of the Prefect Cloud account's plan, not a problem with the key: remove what is "
                "no longer needed (e.g. with --prune) or raise the plan's limit, then run again")
    listed = workspaces()
    if listed is not None:
        reachable = {str(w.get("workspace_id", "")).lower() for w in listed if isinstance(w, dict)}
        if workspace not in reachable:
            names = ", ".join(sorted(f"{_text(w.get('account_handle'))}/{_text(w.get('workspace_handle'))} "
                                     f"({_text(w.get('workspace_id'))})" for w in listed if isinstance(w, dict))[:10])
            return (f"; PREFECT_API_KEY has no access to workspace {workspace} of account {account}: check the "
                    f"ids in PREFECT_API_URL, or add the key's user or service account to that workspace "
                    f"(the key reaches: {names or 'no workspace'})")
    return ("; the key's user or service account may not do this in the workspace: give its workspace role "
            "(e.g. Developer, or a custom role) the permission to manage deployments, flows, automations, "
            "work pools and concurrency limits")


def _text(value) -> str:
    """A name from the server's answer, as one short line of printable text (it is data, not ours)."""
    return "".join(c for c in str(value if value is not None else "?") if c.isprintable())[:64]
