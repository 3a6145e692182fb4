"""Several projects in one repository: one run deploys every manifest (each its own project), a mistake in
any one registers nothing anywhere, and `changed` names only the projects an edit touches. The example
repository examples/monorepo is copied, with names of the test's own, into a git checkout."""

from __future__ import annotations

import json
import shutil
import subprocess
from pathlib import Path

import pytest
import yaml

from support.registration import CLI, Result, client_env, unique

pytestmark = pytest.mark.integration

EXAMPLE = Path(__file__).resolve().parents[2] / "examples" / "monorepo"
PROJECTS = ("reports", "sales", "stock")
OWNER = "managed-by:flow-register"


def _git(root: Path, *args: str) -> None:
    subprocess.run(["git", "-C", str(root), "-c", "user.email=t@example.com", "-c", "user.name=t", *args],
                   check=True, capture_output=True)


@pytest.fixture
def repo(tmp_path) -> Path:
    root = tmp_path / "repo"
    shutil.copytree(EXAMPLE, root, ignore=shutil.ignore_patterns(".github"))
    _git(root, "init", "-q")
    _git(root, "add", "-A")
    _git(root, "commit", "-qm", "init")
    return root


def cli(root: Path, api_url: str | None, *args: str, **extra: str) -> Result:
    done = subprocess.run([CLI, *args], cwd=root, capture_output=True, text=True, timeout=300,
                          env=client_env(api_url, root.parent / "home", **extra))
    return Result(done.returncode, done.stdout, done.stderr)


@pytest.fixture
def deployable(repo, api, prefect_server) -> tuple[Path, dict[str, str], str]:
    """The example with a project name and a work pool of this test's own."""
    pool = unique("mono")
    api.create_pool(pool, "docker")
    names = {}
    for project in PROJECTS:
        path = repo / "pipelines" / project / "flows.yaml"
        manifest = yaml.safe_load(path.read_text())
        manifest["project"] = names[project] = unique(project)
        manifest["defaults"]["work_pool"]["name"] = pool
        manifest["defaults"]["name_template"] = "{name}-{project}"
        path.write_text(yaml.safe_dump(manifest, sort_keys=False))
    return repo, names, prefect_server.api_url


def registered(api, project: str) -> set[str]:
    return set(api.deployments(OWNER, f"project:{project}", "environment:dev"))


def test_three_manifests_deploy_in_one_run_each_as_its_own_project(deployable, api):
    root, names, url = deployable
    output, summary = root.parent / "github-output", root.parent / "summary.md"
    result = cli(root, url, "deploy", "-e", "dev", "--output", "json", "-f", "pipelines/*/flows.yaml",
                 GITHUB_OUTPUT=str(output), GITHUB_STEP_SUMMARY=str(summary))
    assert result.code == 0, result
    report = result.json
    assert [p["manifest"] for p in report["projects"]] == [f"pipelines/{p}/flows.yaml" for p in PROJECTS]
    assert [p["project"] for p in report["projects"]] == [names[p] for p in PROJECTS]
    assert report["summary"]["create"] == 3
    for project in PROJECTS:
        assert registered(api, names[project]) == {f"{project}-{names[project]}"}
    sales = api.deployments(OWNER, f"project:{names['sales']}")[f"sales-{names['sales']}"]
    assert sales["entrypoint"] == "flows/sales.py:daily_sales"  # relative to its own manifest's folder

    # the action's outputs: one set for the run, the counts summed; the step summary, a section a project
    outputs = dict(line.split("=", 1) for line in output.read_text().splitlines())
    assert (outputs["created"], outputs["updated"], outputs["unchanged"], outputs["changes"]) == ("3", "0", "0", "true")
    assert [p["project"] for p in json.loads(outputs["plan"])["projects"]] == [names[p] for p in PROJECTS]
    assert {d["project"] for d in json.loads(outputs["deployments"])} == set(names.values())
    text = summary.read_text()
    assert text.startswith("## flow-register: 3 projects")
    for project in PROJECTS:
        assert f"Manifest `pipelines/{project}/flows.yaml`" in text
        assert f"### flow-register deploy: `{names[project]}` → `dev`" in text
    assert text.count("### flow-register deploy:") == 3

    again = cli(root, url, "plan", "-e", "dev", "-f", "pipelines/sales/flows.yaml,pipelines/stock/flows.yaml",
                "-f", "pipelines/reports/flows.yaml", "--detailed-exitcode")
    assert again.code == 0, again  # nothing would change
    for project in PROJECTS:  # the text plan, grouped by manifest
        assert f"== pipelines/{project}/flows.yaml ==" in again.out
        assert f"Plan for project '{names[project]}'" in again.out
    assert "3 projects: 0 to create, 0 to update, 3 unchanged, 0 to delete" in again.out


def test_a_mistake_in_one_manifest_registers_nothing_in_any(deployable, api):
    root, names, url = deployable
    # reports, first, has no mistake; sales has one the manifest shows, stock one only the server can tell
    sales = root / "pipelines" / "sales" / "flows.yaml"
    sales.write_text(sales.read_text().replace("flows/sales.py:daily_sales", "flows/sales.py:no_such_flow"))
    stock = root / "pipelines" / "stock" / "flows.yaml"
    manifest = yaml.safe_load(stock.read_text())
    manifest["defaults"]["work_pool"]["name"] = "no-such-pool"
    stock.write_text(yaml.safe_dump(manifest, sort_keys=False))

    result = cli(root, url, "deploy", "-e", "dev", "-f", "pipelines/*/flows.yaml")
    assert result.code == 1, result
    assert "pipelines/sales/flows.yaml:" in result.err and "no_such_flow" in result.err
    assert "pipelines/stock/flows.yaml:" in result.err and "no-such-pool" in result.err
    for project in PROJECTS:  # reports has no mistake, and still nothing of it is registered
        assert registered(api, names[project]) == set()


def matrix(root: Path, since: str = "HEAD") -> list[dict]:
    result = cli(root, None, "changed", "--since", since, "pipelines/*/flows.yaml")
    assert result.code == 0, result
    return json.loads(result.out)["include"]


def test_changed_names_only_the_project_whose_flow_file_was_edited(repo):
    assert matrix(repo) == []
    flow = repo / "pipelines" / "stock" / "flows" / "stock.py"
    flow.write_text(flow.read_text() + "\n# counted twice a day now\n")
    assert matrix(repo) == [{"manifest": "pipelines/stock/flows.yaml", "project": "stock"}]


def test_changed_names_both_projects_that_import_an_edited_shared_module(repo):
    shared = repo / "common" / "text.py"
    shared.write_text(shared.read_text() + "\n\ndef footer() -> str:\n    return 'end'\n")
    assert matrix(repo) == [{"manifest": "pipelines/sales/flows.yaml", "project": "sales"},
                            {"manifest": "pipelines/stock/flows.yaml", "project": "stock"}]
    _git(repo, "commit", "-qam", "footer")
    assert matrix(repo) == []  # committed: the same as HEAD
    assert {m["project"] for m in matrix(repo, "HEAD~1")} == {"sales", "stock"}


def test_changed_counts_the_manifest_and_a_new_module_the_flow_imports(repo):
    manifest = repo / "pipelines" / "reports" / "flows.yaml"
    manifest.write_text(manifest.read_text().replace("tags: [reports]", "tags: [reports, weekly]"))
    assert [m["project"] for m in matrix(repo)] == ["reports"]
    _git(repo, "commit", "-qam", "tags")
    (repo / "pipelines" / "reports" / "flows" / "layout.py").write_text("WIDTH = 80\n")  # untracked, unused
    assert matrix(repo) == []
    flow = repo / "pipelines" / "reports" / "flows" / "reports.py"
    flow.write_text("from layout import WIDTH\n" + flow.read_text())
    assert [m["project"] for m in matrix(repo)] == ["reports"]
