"""Settings, read once where the program starts (the CLI or the action) and passed down.

Nothing below the boundary reads or writes `os.environ` (tests/unit/test_settings_boundary.py holds
that): the engine gets a `Settings`, so a test or the action can run it with exactly the environment it
means, and what a run depends on is visible here. What a stage hands to a tool of its own (the variables
of a `docker` or `git` process, the credentials of a boto3 or google-auth client) is built from it too.
"""

from __future__ import annotations

import json
import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from types import MappingProxyType

# Writes in flight at once, by default (--concurrency): far from the server each costs a round trip;
# SQLite's or a rate limit's busy answers narrow the request windows below it (server/pace.py).
CONCURRENCY = 16


@dataclass(frozen=True)
class GitHub:
    """The GitHub Actions context of this run (all empty outside Actions)."""

    active: bool = False
    workspace: str | None = None
    output: str | None = None  # GITHUB_OUTPUT: the step's outputs file
    step_summary: str | None = None  # GITHUB_STEP_SUMMARY
    repository: str | None = None  # owner/name
    server_url: str = "https://github.com"
    api_url: str = "https://api.github.com"
    sha: str | None = None
    ref: str | None = None  # refs/heads/main, refs/pull/12/merge, refs/tags/v1
    ref_name: str | None = None
    head_ref: str | None = None  # a pull request's source branch
    run_id: str | None = None
    run_attempt: str | None = None
    event_name: str | None = None
    event_path: str | None = None
    token: str | None = field(default=None, repr=False)  # GITHUB_TOKEN, when the workflow passes it

    @classmethod
    def from_environ(cls, environ: Mapping[str, str]) -> GitHub:
        get = lambda name: environ.get(name) or None  # noqa: E731
        return cls(
            active=environ.get("GITHUB_ACTIONS") == "true",
            workspace=get("GITHUB_WORKSPACE"),
            output=get("GITHUB_OUTPUT"),
            step_summary=get("GITHUB_STEP_SUMMARY"),
            repository=get("GITHUB_REPOSITORY"),
            server_url=(get("GITHUB_SERVER_URL") or cls.server_url).rstrip("/"),
            api_url=(get("GITHUB_API_URL") or cls.api_url).rstrip("/"),
            sha=get("GITHUB_SHA"),
            ref=get("GITHUB_REF"),
            ref_name=get("GITHUB_REF_NAME"),
            head_ref=get("GITHUB_HEAD_REF"),
            run_id=get("GITHUB_RUN_ID"),
            run_attempt=get("GITHUB_RUN_ATTEMPT"),
            event_name=get("GITHUB_EVENT_NAME"),
            event_path=get("GITHUB_EVENT_PATH"),
            token=get("GITHUB_TOKEN") or get("INPUT_GITHUB_TOKEN"),
        )

    @property
    def repository_url(self) -> str | None:
        return f"{self.server_url}/{self.repository}" if self.repository else None

    @property
    def run_url(self) -> str | None:
        if not (self.repository and self.run_id):
            return None
        attempt = f"/attempts/{self.run_attempt}" if self.run_attempt else ""
        return f"{self.server_url}/{self.repository}/actions/runs/{self.run_id}{attempt}"

    def event(self) -> dict:
        """The webhook payload of the event that started the run ({} when there is none)."""
        if not self.event_path:
            return {}
        try:
            with open(self.event_path, encoding="utf-8") as file:
                payload = json.load(file)
        except (OSError, ValueError):
            return {}
        return payload if isinstance(payload, dict) else {}

    def pull_request_number(self) -> int | None:
        number = (self.event().get("pull_request") or {}).get("number")
        return number if isinstance(number, int) else None


@dataclass(frozen=True)
class Settings:
    """What a run depends on outside its arguments. `environ` is a read-only snapshot, for the stages
    that hand it to tools of their own (the Prefect connection, Docker, the cloud SDKs)."""

    environ: Mapping[str, str] = field(default_factory=lambda: MappingProxyType({}), repr=False)
    github: GitHub = field(default_factory=GitHub)

    @classmethod
    def from_environ(cls, environ: Mapping[str, str] | None = None) -> Settings:
        """From `environ`, or this process's environment: the one place that reads it."""
        snapshot = MappingProxyType(dict(os.environ if environ is None else environ))
        return cls(environ=snapshot, github=GitHub.from_environ(snapshot))

    def with_variables(self, variables: Mapping[str, str]) -> Settings:
        """These settings, with `variables` over the environment's (a flag that stands for a variable)."""
        return Settings.from_environ({**self.environ, **variables}) if variables else self

    def child_environment(self, **extra: str) -> dict[str, str]:
        """The variables a child process (docker, git, a credential helper) runs with: this run's, and `extra`."""
        return {**self.environ, **extra}

    def aws_client(self, service: str, region: str | None = None):
        """A boto3 client with what this run's environment says of AWS, given to boto3 explicitly: the keys,
        the profile, the region (`region` wins: an ECR host names its own) and a local endpoint (moto)."""
        import boto3

        get = lambda name: self.environ.get(name) or None  # noqa: E731
        session = boto3.session.Session(aws_access_key_id=get("AWS_ACCESS_KEY_ID"),
                                        aws_secret_access_key=get("AWS_SECRET_ACCESS_KEY"),
                                        aws_session_token=get("AWS_SESSION_TOKEN"), profile_name=get("AWS_PROFILE"),
                                        region_name=region or get("AWS_REGION") or get("AWS_DEFAULT_REGION"))
        endpoint = get(f"AWS_ENDPOINT_URL_{service.upper()}") or get("AWS_ENDPOINT_URL")
        return session.client(service, endpoint_url=endpoint)

    def google_credentials(self, scopes: list[str]):
        """google-auth's credentials: the file GOOGLE_APPLICATION_CREDENTIALS names in this run's environment
        (google-github-actions/auth sets it), else google-auth's own default chain (gcloud, the metadata server)."""
        import google.auth

        path = self.environ.get("GOOGLE_APPLICATION_CREDENTIALS")
        if path:
            return google.auth.load_credentials_from_file(path, scopes=scopes)[0]
        return google.auth.default(scopes=scopes)[0]
