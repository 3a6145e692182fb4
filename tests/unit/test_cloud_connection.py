"""Connecting to Prefect Cloud: the workspace's API URL from its ids, the URLs users paste by mistake told
with the URL to use, and what each 401 and 403 of Cloud means (the tier through the stand-in, tests/cloud,
shows the same messages end to end)."""

from __future__ import annotations

import pytest

from register.problems import Invalid
from register.server import connection_from_environment
from register.server.cloud import refusal_hint

A, W = "0b3b2c1e-1111-4222-8333-444455556666", "9a8b7c6d-1111-4222-8333-444455556666"
URL = f"https://api.prefect.cloud/api/accounts/{A}/workspaces/{W}"


def connect(tmp_path, **environ):
    return connection_from_environment({"PREFECT_HOME": str(tmp_path), **environ})


def problems(tmp_path, **environ) -> list[str]:
    with pytest.raises(Invalid) as raised:
        connect(tmp_path, **environ)
    return [f"{p.file}: {p.message} [{p.rule}]" for p in raised.value.problems]


def test_the_ids_make_the_workspace_url(tmp_path):
    assert connect(tmp_path, PREFECT_ACCOUNT_ID=A, PREFECT_WORKSPACE_ID=W).url == URL
    assert connect(tmp_path, PREFECT_ACCOUNT_ID=A, PREFECT_WORKSPACE_ID=W, PREFECT_API_URL=URL + "/").url == URL


def test_one_id_alone_a_malformed_id_or_a_url_of_another_workspace_is_refused(tmp_path):
    assert problems(tmp_path, PREFECT_ACCOUNT_ID=A) == [
        "PREFECT_WORKSPACE_ID: PREFECT_WORKSPACE_ID is not set: a Prefect Cloud workspace is named by both "
        "PREFECT_ACCOUNT_ID and PREFECT_WORKSPACE_ID (inputs prefect-account-id and prefect-workspace-id) [server-url]"]
    assert problems(tmp_path, PREFECT_ACCOUNT_ID="acme", PREFECT_WORKSPACE_ID=W) == [
        "PREFECT_ACCOUNT_ID: PREFECT_ACCOUNT_ID must be the id Prefect Cloud shows (8-4-4-4-12 hexadecimal digits), "
        "not 'acme' [server-url]"]
    told = problems(tmp_path, PREFECT_ACCOUNT_ID=A, PREFECT_WORKSPACE_ID=W, PREFECT_API_URL="http://127.0.0.1:4200/api")
    assert told == [f"PREFECT_API_URL: PREFECT_API_URL 'http://127.0.0.1:4200/api' is not the workspace of "
                    f"PREFECT_ACCOUNT_ID and PREFECT_WORKSPACE_ID ({URL}): give one or the other [server-url]"]


def test_a_ui_address_without_ids_says_where_they_are(tmp_path):
    told = problems(tmp_path, PREFECT_API_URL="https://app.prefect.cloud/")
    assert told == ["PREFECT_API_URL: PREFECT_API_URL is the address of Prefect Cloud's web UI (app.prefect.cloud), "
                    "not of its API: use https://api.prefect.cloud/api/accounts/<account id>/workspaces/<workspace id> "
                    "(both ids are in the UI's address after /account/ and /workspace/) [server-url]"]


def test_a_self_hosted_server_is_not_held_to_clouds_paths(tmp_path):
    assert connect(tmp_path, PREFECT_API_URL="https://prefect.example.com/api").url == "https://prefect.example.com/api"
    assert connect(tmp_path, PREFECT_API_URL="http://127.0.0.1:4200").url == "http://127.0.0.1:4200"


def never():
    raise AssertionError("the key's workspaces were read where the answer alone says enough")


def test_each_refusal_of_cloud_has_its_own_hint():
    assert refusal_hint(401, "", URL, has_key=False, workspaces=never).startswith(
        "; Prefect Cloud needs an API key: set PREFECT_API_KEY")
    assert refusal_hint(401, "", URL, has_key=True, workspaces=never).startswith(
        "; Prefect Cloud did not accept PREFECT_API_KEY: it is wrong, expired or revoked")
    assert refusal_hint(403, "You have reached the maximum number of deployments", URL, has_key=True,
                        workspaces=never).startswith("; this is a limit of the Prefect Cloud account's plan")
    mine = [{"account_handle": "acme", "workspace_handle": "data", "workspace_id": W}]
    assert refusal_hint(403, "Forbidden", URL, has_key=True, workspaces=lambda: mine).startswith(
        "; the key's user or service account may not do this in the workspace")
    other = [{"account_handle": "acme", "workspace_handle": "sandbox", "workspace_id": A}]
    assert refusal_hint(403, "Forbidden", URL, has_key=True, workspaces=lambda: other) == (
        f"; PREFECT_API_KEY has no access to workspace {W} of account {A}: check the ids in PREFECT_API_URL, or add "
        f"the key's user or service account to that workspace (the key reaches: acme/sandbox ({A}))")
    # not known: the permission is the likelier cause; a self-hosted server keeps its own hint
    assert refusal_hint(403, "Forbidden", URL, has_key=True, workspaces=lambda: None).startswith("; the key's user")
    assert refusal_hint(403, "Forbidden", "http://127.0.0.1:4200/api", has_key=True, workspaces=never) is None
