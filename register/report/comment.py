"""The plan on the pull request: one comment per project and environment, found by a hidden marker
and updated in place on every push, through GitHub's REST API (GITHUB_API_URL, so GitHub Enterprise
too) with the job's token.

Anyone may write a comment that carries the marker. Only a comment that the token's own identity wrote
is ever edited: GraphQL's `viewer` says who the token is (REST's `GET /user` refuses the job's token, an
app installation), and a comment's `user.id` who wrote it. When GitHub does not say who the token is,
a new comment is written and nothing is edited.

A comment is a courtesy, never a reason to fail: not a pull request, no token, or a token that may
not write (a fork's pull request gets a read-only one) gives a warning and the run goes on; the
plan is in the run's summary either way.
"""

from __future__ import annotations

import urllib.parse

import httpx

from register import http
from register.report import github as workflow
from register.settings import GitHub

MAX_BODY = 65_536  # GitHub refuses a longer comment
TIMEOUT = 30.0  # for the whole of one request (register/http.py)
ANSWER_CAP = 16 * http.MiB  # a page of 100 comments of at most 64 KiB each, and room

# Every message a user can hit here, in one place.
NOT_A_PULL_REQUEST = "no plan comment: this run is not for a pull request (event '{event}')"
NO_TOKEN = ("no plan comment: no GitHub token; pass `github-token` (by default the job's token) and grant the job "
            "`pull-requests: write`")
REFUSED = ("no plan comment: GitHub refused it ({status}: {message}); the token needs `pull-requests: write`, "
           "and a pull request from a fork gets a read-only token. The plan is in the run's summary")
FAILED = "no plan comment: {error}. The plan is in the run's summary"
WRITTEN = "plan comment {how} on pull request #{number}: {url}"
TRUNCATED = "\n\n… the plan is longer than a comment may be; all of it is in the [run's summary]({url})."
NO_IDENTITY = " (GitHub did not say who the token is ({error}), so no earlier comment was edited)"


class Note(str):
    """A one-line note for the log; `warning` when no comment was written."""

    warning: bool

    def __new__(cls, text: str, *, warning: bool = False) -> Note:
        note = super().__new__(cls, text)
        note.warning = warning
        return note


def marker(project: str, environment: str) -> str:
    """What the comment starts with, hidden in the rendered Markdown: it finds the comment on the next push.
    The names are percent-encoded: a `-->` in a project name must not end the hidden part."""
    quote = lambda text: urllib.parse.quote(text, safe="")  # noqa: E731
    return f"<!-- flow-register plan: project={quote(project)} environment={quote(environment)} -->"


def body(markdown: str, github: GitHub, mark: str) -> str:
    footer = f"\n\n<sub>flow-register · {github.sha[:7] if github.sha else 'this commit'}" + \
        (f" · [run]({github.run_url})" if github.run_url else "") + "</sub>"
    text = f"{mark}\n{workflow.redact(markdown).rstrip()}"
    if len(text) + len(footer) > MAX_BODY:
        cut = TRUNCATED.format(url=github.run_url or "")
        text = text[: MAX_BODY - len(footer) - len(cut)].rpartition("\n")[0] + cut  # whole lines: no half a span
    return text + footer


def upsert_comment(markdown: str, github: GitHub, *, project: str, environment: str,
                   transport: httpx.BaseTransport | None = None) -> Note:
    """Write `markdown` as the pull request's plan comment for `project` and `environment`: update the
    one there, or create it. Returns a note for the log; never raises for GitHub's or the network's sake."""
    number = github.pull_request_number()
    if number is None:
        return Note(NOT_A_PULL_REQUEST.format(event=github.event_name or "none"), warning=True)
    if not github.token:
        return Note(NO_TOKEN, warning=True)
    mark = marker(project, environment)
    headers = {"Authorization": f"Bearer {github.token}", "Accept": "application/vnd.github+json",
               "X-GitHub-Api-Version": "2022-11-28", "User-Agent": "flow-register"}
    comments = f"{github.api_url}/repos/{github.repository}/issues/{number}/comments"
    unknown = ""
    try:
        with http.client(seconds=TIMEOUT, cap=ANSWER_CAP, headers=headers, timeout=TIMEOUT,
                         transport=transport) as client:
            try:
                me = _viewer(client, github.api_url)
            except (httpx.HTTPError, _Refused, ValueError, KeyError, TypeError) as error:
                me, unknown = None, NO_IDENTITY.format(error=_said(error))
            existing = _find(client, comments, mark, me) if me is not None else None
            payload = {"body": body(markdown, github, mark)}
            if existing is None:
                response = _checked(client.post(comments, json=payload))
            else:
                edit = f"{github.api_url}/repos/{github.repository}/issues/comments/{existing['id']}"
                response = _checked(client.patch(edit, json=payload))
    except _Refused as refused:
        return Note(REFUSED.format(status=refused.status, message=http.shorten(refused.message)), warning=True)
    except httpx.HTTPError as error:
        return Note(FAILED.format(error=_said(error)), warning=True)
    how = "written" if existing is None else "updated"
    url = response.json().get("html_url", comments)
    return Note(WRITTEN.format(how=how, number=number, url=url) + unknown, warning=bool(unknown))


def _said(error: Exception) -> str:
    return http.shorten(f"{type(error).__name__}: {error}")


def graphql_url(api_url: str) -> str:
    """GraphQL's endpoint beside the REST API: api.github.com/graphql; GitHub Enterprise's HOST/api/graphql
    beside HOST/api/v3 (as GitHub's own clients derive it)."""
    return (api_url[: -len("/v3")] if api_url.endswith("/api/v3") else api_url) + "/graphql"


def _viewer(client: httpx.Client, api_url: str) -> dict:
    """Who the token is: `{login, databaseId}` of the user, or of the app's bot (github-actions[bot] for
    the job's token)."""
    response = _checked(client.post(graphql_url(api_url), json={"query": "query { viewer { login databaseId } }"}))
    viewer = response.json()["data"]["viewer"]
    if not isinstance(viewer.get("databaseId"), int):
        raise ValueError("no databaseId in GraphQL's viewer")
    return viewer


def _by(comment: dict, me: dict) -> bool:
    """Whether the token's identity wrote `comment`: by account id, which no one else can have (a login
    could be a user's and, with `[bot]`, an app's)."""
    return (comment.get("user") or {}).get("id") == me["databaseId"]


class _Refused(Exception):
    def __init__(self, status: int, message: str):
        super().__init__(status, message)
        self.status, self.message = status, message


def _checked(response: httpx.Response) -> httpx.Response:
    if response.status_code in (401, 403, 404):
        try:
            message = response.json().get("message") or response.reason_phrase
        except ValueError:
            message = response.reason_phrase
        raise _Refused(response.status_code, message)
    response.raise_for_status()
    return response


def _find(client: httpx.Client, url: str, mark: str, me: dict) -> dict | None:
    """The comment by `me` that starts with `mark`, through every page of the pull request's comments."""
    next_url: str | None = url
    params: dict | None = {"per_page": 100}
    while next_url:
        response = _checked(client.get(next_url, params=params))
        for comment in response.json():
            if (comment.get("body") or "").startswith(mark) and _by(comment, me):
                return comment
        next_url, params = response.links.get("next", {}).get("url"), None  # the next link keeps its query
    return None
