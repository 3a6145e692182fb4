"""A local HTTP server that stands in for GitHub's REST API (issue comments of one pull request) and the
one GraphQL query the comment makes (`viewer`): a mock of GitHub, which cannot run here, for the plan
comment's tests (test_comment.py, test_dispatch.py, tests/security). Shapes as GitHub documents them: a
comment has `user` {login, id, type} and, written by an app's token, `performed_via_github_app`; the
job's token is the github-actions app's bot (REST login `github-actions[bot]`, id 41898282), which
`GET /user` refuses and GraphQL's `viewer` names."""

from __future__ import annotations

import contextlib
import http.server
import json
import re
import threading
from urllib.parse import parse_qs, urlsplit

from support.registration import _serve

TOKEN = "ghs_test_token"
# Who TOKEN is, as GitHub's REST API shows a comment's author for the job's token.
BOT = {"login": "github-actions[bot]", "id": 41898282, "type": "Bot"}
APP = {"id": 15368, "slug": "github-actions", "name": "GitHub Actions"}


def user(login: str, id: int) -> dict:
    """A person's account, as a comment's `user`."""
    return {"login": login, "id": id, "type": "User"}


class FakeGitHub:
    """The comments of pull request #7 of org/flows: list (paginated, Link headers), create, edit; every request
    must carry the token; `refuse` answers writes with 403 as GitHub does for a fork's read-only token."""

    def __init__(self):
        self.comments: list[dict] = []
        self.requests: list[str] = []
        self.edited_others: list[int] = []  # comments of other authors that a PATCH changed
        self.refuse = False
        self.no_viewer = False  # GraphQL refuses `viewer` (as for a token that may not read it)
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
                    if method == "GET" and self.path == "/api/v3/user":  # not for an installation's token
                        return self._answer(403, {"message": "Resource not accessible by integration"})
                    if method == "POST" and self.path == "/api/graphql":
                        if fake.no_viewer or "viewer" not in (payload or {}).get("query", ""):
                            return self._answer(200, {"errors": [{"message": "Resource not accessible by "
                                                                             "integration", "type": "FORBIDDEN"}]})
                        return self._answer(200, {"data": {"viewer": {"login": BOT["login"],
                                                                      "databaseId": BOT["id"]}}})
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
                        comment = {"id": 1000 + len(fake.comments), "body": payload["body"], "user": dict(BOT),
                                   "performed_via_github_app": dict(APP),
                                   "html_url": f"https://github.example/org/flows/pull/7#c{len(fake.comments)}"}
                        fake.comments.append(comment)
                        return self._answer(201, comment)
                    edit = re.fullmatch(r"/api/v3/repos/org/flows/issues/comments/(\d+)", self.path)
                    if method == "PATCH" and edit:
                        comment = next(c for c in fake.comments if c["id"] == int(edit.group(1)))
                        if (comment.get("user") or {}).get("id") != BOT["id"]:  # the token may edit its own
                            fake.edited_others.append(comment["id"])
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


@contextlib.contextmanager
def fake_github():
    """Yields a FakeGitHub; its `url` is the API's, in GitHub Enterprise's form (GITHUB_API_URL)."""
    fake = FakeGitHub()
    with _serve(fake.handler()) as address:
        fake.url = f"http://{address}/api/v3"
        yield fake
