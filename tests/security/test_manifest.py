"""Attacks through the manifest a pull request controls: what it writes is refused by `validate`, at its
line, before anything reaches the server or a worker.

- `code.git.repository` is cloned by every run's worker: a form git reads as a command (`ext::`, another
  transport helper, an option), a local path, plain http or a URL with credentials is refused.
- Numbers beyond what the Prefect server stores or computes with are refused before the first write, so a
  deploy never stops half way (it did: exit 4 after writing a deployment).
"""

from __future__ import annotations

import copy
import json

import pytest

from register.cli import main

ATTACKS = {
    # git runs `sh -c ...` on the worker that clones this
    "ext-helper": ("ext::sh -c touch% /tmp/pwned", "code-repository", "transport helper"),
    "other-helper": ("fd::17", "code-repository", "transport helper"),
    "helper-before-https": ("foo::https://github.com/acme/flows.git", "code-repository", "transport helper"),
    "option": ("--upload-pack=touch /tmp/pwned", "code-repository", "option"),
    "file-url": ("file:///etc", "code-repository", "file://"),
    "local-path": ("/srv/git/flows.git", "code-repository", "a path"),
    "relative-path": ("../flows", "code-repository", "a path"),
    "plain-http": ("http://github.com/acme/flows.git", "code-repository", "plain http"),
    "git-protocol": ("git://github.com/acme/flows.git", "code-repository", "git://"),
    "ssh-option-host": ("ssh://-oProxyCommand=touch%20x/acme/flows", "code-repository", "name a host"),
    "scp-option-host": ("git@-oProxyCommand=x:acme/flows", "code-repository", "https or ssh"),
    "newline": ("https://github.com/acme/flows.git\n--upload-pack=x", "code-repository", "line break"),
    "space": ("https://github.com/acme/flows.git --upload-pack=x", "code-repository", "a space"),
    "unicode-host": ("https://githu\u0431.com/acme/flows.git", "code-repository", "non-ASCII"),
    "user-and-token": ("https://ci:ghp_abcdefghijklmnopqrstuvwxyz0123@github.com/acme/flows.git", "code-secret",
                       "holds a secret"),
    "token-as-user": ("https://x-access-token@github.com/acme/flows.git", "code-secret", "holds a secret"),
    "ssh-password": ("ssh://git:hunter2@github.com/acme/flows.git", "code-secret", "holds a secret"),
}
ACCEPTED = ["https://github.com/acme/flows.git", "git@github.com:acme/flows.git",
            "ssh://git@github.com/acme/flows.git", "ssh://git@gitlab.example:2222/group/sub/flows",
            # a server on the worker's own machine: nothing crosses a network in clear
            "git://127.0.0.1:9418/flows.git", "http://localhost:3000/acme/flows.git"]

FLOW = "from prefect import flow\n\n\n@flow\ndef nightly():\n    pass\n"


def write(tmp_path, repository: str):
    (tmp_path / "flows").mkdir()
    (tmp_path / "flows" / "etl.py").write_text(FLOW)
    manifest = tmp_path / "flows.yaml"
    manifest.write_text("version: 1\nproject: etl\nenvironments: {dev: {work_pool: pool}}\ndeployments:\n"
                        "  - name: nightly\n    entrypoint: flows/etl.py:nightly\n"
                        f"    code: {{git: {{ref: main, repository: {json.dumps(repository)}}}}}\n")
    return manifest


def validate(capsys, manifest, *extra):
    code = main(["validate", "-f", str(manifest), *extra])
    out, err = capsys.readouterr()
    return code, out, err


@pytest.mark.parametrize("attack", ATTACKS, ids=str)
def test_a_repository_url_git_would_run_or_read_locally_is_refused_at_its_line(attack, tmp_path, capsys):
    url, rule, reason = ATTACKS[attack]
    code, out, err = validate(capsys, write(tmp_path, url), "--output", "json")
    problems = json.loads(out)["problems"]
    assert code == 1, out
    assert [(p["line"], p["rule"]) for p in problems] == [(7, rule)], problems
    assert reason in problems[0]["message"]
    assert url not in problems[0]["message"]  # never repeated: it may hold a secret
    assert "https://HOST/OWNER/REPO.git" in problems[0]["message"] or rule == "code-secret"


@pytest.mark.parametrize("url", ACCEPTED)
def test_https_and_ssh_repositories_are_accepted(url, tmp_path, capsys):
    code, out, err = validate(capsys, write(tmp_path, url))
    assert (code, err) == (0, ""), err


def test_an_integer_too_long_to_read_is_a_problem_not_a_traceback(tmp_path, capsys):
    (tmp_path / "flows").mkdir()
    (tmp_path / "flows" / "etl.py").write_text(FLOW)
    manifest = tmp_path / "flows.yaml"
    manifest.write_text("version: 1\nproject: etl\nenvironments: {dev: {work_pool: pool}}\ndeployments:\n"
                        "  - name: nightly\n    entrypoint: flows/etl.py:nightly\n"
                        f"    concurrency_limit: {'9' * 5000}\n")
    code, out, err = validate(capsys, manifest)
    assert code == 1
    assert f"{manifest}:7:24: error: a number of 5000 characters is far beyond any value a setting takes [number]" \
        in err.splitlines()
    assert "9" * 100 not in err.replace("9" * 5000, "")  # only the source line shows it


BEYOND_THE_SERVER = {
    # field path in a deployment, value, the rule that refuses it
    "interval": (("schedules",), [{"interval": 1.0e20}], "schedule-interval"),
    "concurrency-limit": (("concurrency_limit",), 2**63, "range"),
    "concurrency-limit-32-bit": (("concurrency_limit",), {"limit": 2**31}, "range"),
    "trigger-window": (("triggers",), [{"type": "event", "expect": ["x"], "posture": "Proactive",
                                        "within": 1.0e20}], "trigger"),
    "anchor-date": (("schedules",), [{"interval": 60, "anchor_date": "0001-01-01T00:00:00+01:00"}],
                    "schedule-anchor-date"),
}


@pytest.mark.integration
@pytest.mark.parametrize("case", BEYOND_THE_SERVER, ids=str)
def test_a_number_beyond_the_server_stops_the_deploy_before_any_write(case, project, api):
    (field,), value, rule = BEYOND_THE_SERVER[case]
    manifest = copy.deepcopy(project.manifest)
    manifest["deployments"][1][field] = value  # the second: the first would be written before it
    project.write(manifest)
    result = project.deploy()
    assert result.code == 1, result
    assert f"[{rule}]" in result.err, result
    assert api.deployments(f"project:{project.name}") == {}


@pytest.mark.integration
def test_a_repository_git_would_run_stops_the_deploy_before_any_write(project, api):
    manifest = copy.deepcopy(project.manifest)
    manifest["deployments"][1]["code"] = {"git": {"repository": "ext::sh -c touch% /tmp/pwned", "ref": "main"}}
    project.write(manifest)
    result = project.deploy()
    assert result.code == 1, result
    assert "[code-repository]" in result.err, result
    assert api.deployments(f"project:{project.name}") == {}
