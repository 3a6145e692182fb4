"""Offline parts of the image check: the Dockerfile's WORKDIR as image.workdir's default (what render and
deploy register as the pull step), the merged tree of layers, and smoke-run names and links."""

from __future__ import annotations

import json
import textwrap

import pytest

from register.cli import main
from register.image.inspect import Files, dockerfile_workdir
from register.manifest import load_manifest
from register.problems import Invalid
from register.commands.smoke import wanted, ui_url


@pytest.mark.parametrize("text, workdir", [
    ("FROM python:3.12\nWORKDIR /code\nCOPY . .\n", "/code"),
    ("FROM python:3.12\nWORKDIR /opt/prefect\nWORKDIR flows\n", "/opt/prefect/flows"),
    ("FROM python:3.12 AS build\nWORKDIR /build\nFROM python:3.12\nCOPY --from=build /build /x\n", None),
    ("FROM python:3.12 AS base\nWORKDIR /code\nFROM base\nRUN true\n", "/code"),
    ("FROM python:3.12\nARG DIR=/x\nWORKDIR $DIR\n", None),
    ("FROM python:3.12\nworkdir \\\n  /srv/app\n", "/srv/app"),
    ("FROM python:3.12\nRUN true\n", None),
])
def test_the_dockerfiles_last_workdir(text, workdir):
    assert dockerfile_workdir(text) == workdir


def manifest_dir(tmp_path, dockerfile: str, image: str) -> str:
    (tmp_path / "flows").mkdir()
    (tmp_path / "flows" / "a.py").write_text("from prefect import flow\n\n@flow\ndef a():\n    pass\n")
    (tmp_path / "Dockerfile").write_text(dockerfile)
    (tmp_path / "flows.yaml").write_text(textwrap.dedent(f"""\
        version: 1
        project: shop
        image:
          repository: registry.example.com/shop
        {image}
        environments:
          dev:
            work_pool: {{name: dev, type: docker}}
            smoke: [a, {{deployment: nope, parameters: {{x: 1}}}}]
        deployments:
          - name: a
            entrypoint: flows/a.py:a
        """))
    return str(tmp_path / "flows.yaml")


def test_workdir_left_out_is_the_dockerfiles_and_render_registers_it(tmp_path, capsys):
    path = manifest_dir(tmp_path, "FROM python:3.12\nWORKDIR /code\nCOPY . .\n", "")
    assert main(["render", "-f", path, "-e", "dev"]) == 0
    rendered = json.loads(capsys.readouterr().out)["deployments"][0]
    assert rendered["pull_steps"] == [{"prefect.deployments.steps.set_working_directory": {"directory": "/code"}}]


def test_workdir_written_wins_and_without_a_workdir_in_the_dockerfile_the_default_stays(tmp_path):
    path = manifest_dir(tmp_path, "FROM python:3.12\nCOPY . /opt/prefect/shop\n", "")
    assert load_manifest(path).image("dev")["workdir"] == "/opt/prefect/shop"
    (tmp_path / "flows.yaml").write_text((tmp_path / "flows.yaml").read_text().replace(
        "  repository: registry.example.com/shop\n", "  repository: registry.example.com/shop\n  workdir: /srv\n"))
    assert load_manifest(path).image("dev")["workdir"] == "/srv"


def test_a_smoke_run_of_an_unknown_deployment_names_the_valid_ones_at_its_line(tmp_path):
    path = manifest_dir(tmp_path, "FROM python:3.12\n", "")
    manifest = load_manifest(path)
    with pytest.raises(Invalid) as refused:
        wanted(manifest, "dev", None, ["a"])
    (problem,) = refused.value.problems
    assert (problem.line, problem.rule) == (9, "smoke")
    assert problem.message == "no deployment 'nope' to smoke-run in environment 'dev'; the deployments there are 'a'"
    # the flag replaces the manifest's list, and keeps what the manifest says of a deployment it names
    chosen = wanted(manifest, "dev", ["a"], ["a"], timeout=30)
    assert [(s.deployment, s.parameters, s.timeout) for s in chosen] == [("a", {}, 30.0)]


@pytest.mark.parametrize("api, ui", [
    ("http://127.0.0.1:4200/api", "http://127.0.0.1:4200"),
    ("https://prefect.example.com/prefect/api/", "https://prefect.example.com/prefect"),
    ("https://user:pw@prefect.example.com/api", "https://prefect.example.com"),
    ("https://api.prefect.cloud/api/accounts/a1/workspaces/w2", "https://app.prefect.cloud/account/a1/workspace/w2"),
])
def test_the_runs_link_is_the_ui_of_the_api(api, ui):
    assert ui_url(api) == ui
    assert ui_url(api, {"PREFECT_UI_URL": "https://ui.example.com/"}) == "https://ui.example.com"


def test_layers_merge_as_overlayfs_does():
    files = Files()
    files.apply([("/app", "dir", ""), ("/app/a.py", "file", ""), ("/app/sub", "dir", ""), ("/app/sub/b.py", "file", ""),
                 ("/lib", "link", "/app")])
    assert files.kind("/lib/sub/b.py") == "file"
    files.apply([("/app/.wh.sub", "file", ""), ("/app/c.py", "file", "")])
    assert files.kind("/app/sub/b.py") is None and files.kind("/app/c.py") == "file"
    files.apply([("/app/.wh..wh..opq", "file", ""), ("/app/d.py", "file", "")])
    assert [files.kind(f"/app/{n}.py") for n in "acd"] == [None, None, "file"]
    assert files.find("d.py") == ["/app/d.py"]


def test_a_path_nested_deeper_than_pythons_recursion_limit_is_merged_and_removed():
    deep = "/" + "/".join(["d"] * 5000)
    files = Files()
    files.apply([(deep + "/flow.py", "file", "")])
    assert files.kind(deep + "/flow.py") == "file"
    files.apply([("/.wh.d", "file", "")])
    assert files.kind(deep + "/flow.py") is None and files.entries == {"/": ("dir", "")}


def test_a_build_context_that_is_a_subfolder_is_told_with_where_the_image_has_the_file(tmp_path):
    from register.image.inspect import Expected, check

    path = manifest_dir(tmp_path, "FROM python:3.12\nWORKDIR /opt/prefect/shop\nCOPY . .\n", "  context: flows")
    manifest = load_manifest(path)
    (deployment,) = manifest.deployments("dev")
    image = Files(workdir="/opt/prefect/shop")
    image.apply([("/opt/prefect/shop/a.py", "file", "")])  # what `COPY . .` of the context `flows` makes
    problems, notes = check(manifest, "dev", [Expected(deployment, "registry.example.com/shop@sha256:1",
                                                       "/opt/prefect/shop", False)], lambda reference: image)
    (problem,) = problems
    assert (problem.line, problem.rule, notes) == (12, "image-entrypoint", [])
    assert problem.message == (
        "deployment 'a' runs flows/a.py from /opt/prefect/shop (its pull step's working directory, image.workdir), "
        "but the image registry.example.com/shop@sha256:1 has no file /opt/prefect/shop/flows/a.py; the image has "
        "a.py at /opt/prefect/shop/a.py, but the entrypoint is relative to the manifest's folder: copy the code so "
        "that flows/a.py lies under /opt/prefect/shop (a build context that is a subfolder drops its name from the "
        "paths), or move the flow")


def test_the_summary_shows_each_smoke_run_and_a_servers_text_stays_text():
    from register.engine.planner import Plan
    from register.report.formats import Outcome, markdown, smoke_lines
    from register.commands.smoke import SmokeRun

    url = "http://127.0.0.1:4200/runs/flow-run/0b9c3c52-8d4e-4bf5-9a55-1d2b0e0f3a11"
    outcome = Outcome(Plan("shop", "test"), "http://127.0.0.1:4200/api", smoke=[
        SmokeRun("a", "a", "0b9c3c52-8d4e-4bf5-9a55-1d2b0e0f3a11", "calm-fox", "COMPLETED", "Completed", url=url),
        SmokeRun("b", "b", "0b9c3c52-8d4e-4bf5-9a55-1d2b0e0f3a11", "[x](http://evil)", "FAILED", "Failed",
                 message="Flow run encountered an exception. | <img src=x> `boom`\n## heading", url=url)])
    text = markdown(outcome)
    assert f"| `a` | ✅ `Completed` | [`calm-fox`]({url}) |" in text
    row = next(line for line in text.splitlines() if line.startswith("| `b`"))
    import re
    assert len(re.findall(r"(?<!\\)\|", row)) == 4  # four cell borders: the server's `|` is escaped
    # the server's text is a code span (no Markdown, HTML or link of its own), on one line
    assert "❌ ``Failed: Flow run encountered an exception. \\| <img src=x> `boom` ## heading``" in row
    assert f"[`[x](http://evil)`]({url})" in row
    assert smoke_lines(outcome)[-1] == ("1 of 2 smoke runs did not complete: the deployments are registered, but do "
                                        "not run as they should")
