"""The plan as one pull request comment, against a local HTTP server that stands in for GitHub's REST
API (a mock of GitHub, which cannot run here): created once, updated in place on the next push, found
across pages, and a warning, never a failure, without a pull request, a token, or permission."""

from __future__ import annotations

import json

import pytest
from fake_github import TOKEN, fake_github

from register.report.comment import MAX_BODY, marker, upsert_comment
from register.settings import GitHub


@pytest.fixture
def api():
    with fake_github() as fake:
        yield fake


def context(api, tmp_path, *, number: int | None = 7, token: str | None = TOKEN) -> GitHub:
    event = tmp_path / "event.json"
    event.write_text(json.dumps({"pull_request": {"number": number}} if number else {"ref": "refs/heads/main"}))
    return GitHub(active=True, repository="org/flows", api_url=api.url, token=token, sha="0123456789abcdef",
                  run_id="42", server_url="https://github.example", event_name="pull_request",
                  event_path=str(event))


def test_one_comment_created_then_updated_in_place(api, tmp_path):
    github = context(api, tmp_path)
    api.comments += [{"id": 1, "body": "LGTM"}, {"id": 2, "body": "> " + marker("sales", "dev") + " quoted"},
                     {"id": 3, "body": marker("sales", "prod") + "\nprod's plan"}]
    note = upsert_comment("| deployment | action |\n|---|---|\n| daily | create |", github,
                          project="sales", environment="dev")
    assert not note.warning and note.startswith("plan comment written on pull request #7: https://github.example/")
    ours = api.comments[-1]
    assert ours["body"].startswith(marker("sales", "dev") + "\n| deployment | action |")
    assert "0123456" in ours["body"] and "https://github.example/org/flows/actions/runs/42" in ours["body"]

    note = upsert_comment("| deployment | action |\n|---|---|\n| daily | unchanged |", github,
                          project="sales", environment="dev")
    assert note.startswith("plan comment updated on pull request #7")
    assert len(api.comments) == 4  # never a second one
    assert "| daily | unchanged |" in ours["body"] and "create" not in ours["body"]
    assert api.comments[2]["body"].endswith("prod's plan")  # another environment's comment is left alone
    assert "GET /api/v3/repos/org/flows/issues/7/comments?page=2&per_page=2" in api.requests  # found on page 2


def test_a_plan_too_long_for_a_comment_is_cut_with_a_link_to_the_summary(api, tmp_path):
    upsert_comment("x" * (MAX_BODY + 10), context(api, tmp_path), project="sales", environment="dev")
    body = api.comments[-1]["body"]
    assert len(body) <= MAX_BODY and "all of it is in the [run's summary](https://github.example/" in body


def test_a_forks_read_only_token_is_a_warning(api, tmp_path):
    api.refuse = True
    note = upsert_comment("plan", context(api, tmp_path), project="sales", environment="dev")
    assert note.warning
    assert note.startswith("no plan comment: GitHub refused it (403: Resource not accessible by integration)")
    assert "a pull request from a fork gets a read-only token" in note
    assert api.comments == []


def test_no_pull_request_or_no_token_is_a_warning_and_asks_nothing(api, tmp_path):
    note = upsert_comment("plan", context(api, tmp_path, number=None), project="sales", environment="dev")
    assert note.warning and note.startswith("no plan comment: this run is not for a pull request")
    note = upsert_comment("plan", context(api, tmp_path, token=None), project="sales", environment="dev")
    assert note.warning and "no GitHub token" in note and "`pull-requests: write`" in note
    assert api.requests == []


def test_an_unreachable_api_is_a_warning(tmp_path):
    class Gone:
        url = "http://127.0.0.1:9/api/v3"

    note = upsert_comment("plan", context(Gone, tmp_path), project="sales", environment="dev")
    assert note.warning and note.startswith("no plan comment: ConnectError")
