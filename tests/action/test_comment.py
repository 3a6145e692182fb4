"""The plan as one pull request comment, against a local HTTP server that stands in for GitHub's REST
API (a mock of GitHub, which cannot run here): created once, updated in place on the next push, found
across pages, and a warning, never a failure, without a pull request, a token, or permission."""

from __future__ import annotations

import http.server
import json
import re
import threading
from urllib.parse import parse_qs, urlsplit

import pytest
from support.registration import _serve

from register.report.comment import MAX_BODY, marker, upsert_comment
from register.settings import GitHub

TOKEN = "ghs_test_token"


class FakeGitHub:
    """Issue comments of one repository: list (paginated, Link headers), create, edit; every request
    must carry the token; `refuse` answers writes with 403 as GitHub does for a fork's read-only token."""

    def __init__(self):
        self.comments: list[dict] = []
        self.requests: list[str] = []
        self.refuse = False
        self.lock = threading.Lock()

    def handler(self):
        fake = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def _answer(self, status: int, body, headers: dict | None = None):
                data = json.dumps(body).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                for name, value in (headers or {}).items():
                    self.send_header(name, value)
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def _handle(self, method: str):
                with fake.lock:
                    fake.requests.append(f"{method} {self.path}")
                    if self.headers.get("Authorization") != f"Bearer {TOKEN}":
                        return self._answer(401, {"message": "Bad credentials"})
                    length = int(self.headers.get("Content-Length") or 0)
                    payload = json.loads(self.rfile.read(length)) if length else None
                    if method != "GET" and fake.refuse:
                        return self._answer(403, {"message": "Resource not accessible by integration"})
                    listing = re.fullmatch(r"/api/v3/repos/org/flows/issues/7/comments(\?.*)?", self.path)
                    if method == "GET" and listing:
                        page = int(parse_qs(urlsplit(self.path).query).get("page", ["1"])[0])
                        size = 2  # small pages, so that finding the comment needs the Link headers
                        chunk = fake.comments[(page - 1) * size: page * size]
                        more = page * size < len(fake.comments)
                        link = f'<http://{self.headers["Host"]}/api/v3/repos/org/flows/issues/7/comments?page=' \
                               f'{page + 1}&per_page={size}>; rel="next"' if more else None
                        return self._answer(200, chunk, {"Link": link} if link else None)
                    if method == "POST" and listing:
                        comment = {"id": 1000 + len(fake.comments), "body": payload["body"],
                                   "html_url": f"https://github.example/org/flows/pull/7#c{len(fake.comments)}"}
                        fake.comments.append(comment)
                        return self._answer(201, comment)
                    edit = re.fullmatch(r"/api/v3/repos/org/flows/issues/comments/(\d+)", self.path)
                    if method == "PATCH" and edit:
                        comment = next(c for c in fake.comments if c["id"] == int(edit.group(1)))
                        comment["body"] = payload["body"]
                        return self._answer(200, comment)
                    return self._answer(404, {"message": "Not Found"})

            def do_GET(self):
                self._handle("GET")

            def do_POST(self):
                self._handle("POST")

            def do_PATCH(self):
                self._handle("PATCH")

            def log_message(self, *args):
                pass

        return Handler


@pytest.fixture
def api():
    fake = FakeGitHub()
    with _serve(fake.handler()) as address:
        fake.url = f"http://{address}/api/v3"  # GitHub Enterprise's form of GITHUB_API_URL
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
