"""`flow-register import` means what `prefect deploy` means: each shape below (the kinds of prefect.yaml that
Prefect's own recipes, CLI tests and docs use, written anew here) is converted, and what the manifest
registers is compared with what Prefect's own code makes of the same prefect.yaml. Where the two cannot
be the same, a warning names the prefect.yaml line."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
import yaml
from prefect.cli.deploy._config import _handle_deprecated_schedule_fields
from prefect.cli.deploy._schedules import _schedule_config_to_deployment_schedule
from prefect.cli.deploy._triggers import DeploymentTriggerAdapter
from prefect.utilities.templating import apply_values

from register import code
from register.cli import main
from register.importer import pool_types
from register.manifest import load_manifest

FLOW = "from prefect import flow\n\n\n@flow\ndef etl(who: str = 'x', stage: str = 'y'):\n    pass\n"
OWNERSHIP = ("managed-by:", "project:", "environment:")


def repository(root: Path, prefect_yaml: str, folder: str = ".") -> Path:
    (root / folder / "flows").mkdir(parents=True, exist_ok=True)
    (root / folder / "flows" / "etl.py").write_text(FLOW)
    (root / folder / "prefect.yaml").write_text(prefect_yaml)
    return root / folder / "prefect.yaml"


def imported(path: Path, capsys, *args: str, env: dict | None = None, expect: int | None = 0) -> tuple[dict, list[str]]:
    """The manifest `import` writes next to `path` (validated: exit 0), and its warnings' lines."""
    target = path.parent / "flows.yaml"
    old = {k: os.environ.get(k) for k in env or {}}
    os.environ.update(env or {})
    try:
        rc = main(["import", str(path), "-o", str(target), *args])
        assert expect is None or rc == expect
    finally:
        for k, v in old.items():
            os.environ.pop(k) if v is None else os.environ.__setitem__(k, v)
    err = capsys.readouterr().err
    return (yaml.safe_load(target.read_text()) if target.exists() else {}), err.splitlines()


def warned(lines: list[str], path: Path, line: int, text: str) -> bool:
    return any(l.startswith(f"{path}:{line}:") and "warning" in l and text in l for l in lines)


def resolved(path: Path, env: dict | None = None):
    manifest = load_manifest(path.parent / "flows.yaml", environ={**os.environ, **(env or {})})
    assert manifest.errors() == []
    return {d.manifest_name: d for d in manifest.deployments("prod")}


SCHEDULES = """\
name: etl
deployments:
- name: prefect-2
  entrypoint: flows/etl.py:etl
  work_pool: {name: pool}
  schedule: {interval: 60, active: false}
  is_schedule_active: true
- name: durations
  entrypoint: flows/etl.py:etl
  work_pool: {name: pool}
  schedules:
  - {interval: PT10M}
  - {interval: P1D, active: false}
  - {interval: '1:30:00', slug: ninety}
"""


def test_a_schedule_keeps_its_own_active_and_every_duration_becomes_the_seconds_prefect_reads(tmp_path, capsys):
    path = repository(tmp_path, SCHEDULES)
    _, lines = imported(path, capsys)
    ours = resolved(path)
    for entry in yaml.safe_load(SCHEDULES)["deployments"]:
        config = _handle_deprecated_schedule_fields(entry)
        theirs = [_schedule_config_to_deployment_schedule(s) for s in config["schedules"]]
        assert [(s["schedule"].interval.total_seconds(), s.get("active", True)) for s in theirs] == [
            (s["interval"], s.get("active", True)) for s in ours[entry["name"]].schedules]
    assert ours["prefect-2"].schedules == [{"interval": 60, "active": False}]
    assert warned(lines, path, 7, "is_schedule_active is not converted: prefect deploy (Prefect 3) does not read it")


TRIGGERS = """\
name: etl
deployments:
- name: etl
  entrypoint: flows/etl.py:etl
  work_pool: {name: pool}
  triggers:
  - expect: [sales.loaded]
    within: PT1H
    schedule_after: '1:30:00'
    parameters: {who: '{{ event.resource.id }}', stage: '{{ $STAGE }}'}
  - posture: Metric
    metric: {name: lateness, threshold: 1, operator: '>', range: PT10M, firing_for: PT5M}
  - triggers: [{expect: [a]}, {expect: [b]}]
    require: all
    within: 600
  - triggers: [{expect: [a]}, {expect: [b]}]
"""


def test_a_trigger_without_a_type_gets_the_type_prefect_infers_and_its_durations_in_seconds(tmp_path, capsys):
    path = repository(tmp_path, TRIGGERS)
    imported(path, capsys, env={"STAGE": "dev"})
    ours = resolved(path, {"STAGE": "dev"})["etl"].triggers
    specs = apply_values(yaml.safe_load(TRIGGERS)["deployments"][0]["triggers"], {"STAGE": "dev"} | dict(os.environ),
                         remove_notset=False)
    for spec, mine in zip(specs, ours, strict=True):
        theirs = DeploymentTriggerAdapter.validate_python(dict(spec, name="t"))
        assert mine["type"] == theirs.type
        for key in ("within", "schedule_after"):
            if key in mine:
                assert mine[key] == getattr(theirs, key).total_seconds()
    assert ours[0]["parameters"] == {"who": "{{ event.resource.id }}", "stage": "dev"}  # the event's template stays


PLACEHOLDERS = """\
name: etl
build:
- prefect_docker.deployments.steps.build_docker_image:
    id: build-image
    image_name: '{{ $REGISTRY }}/etl'
    dockerfile: auto
deployments:
- name: '{{ $DEPLOY_ENV }}-etl'
  version: '{{ build-image.tag }}'
  description: 'costs ${X:-} a run'
  tags: ['{{ $TEAM }}', '{{ flow_run.name }}', static]
  entrypoint: flows/etl.py:etl
  work_pool:
    name: pool
    job_variables:
      image: '{{ build-image.image }}'
      env:
        STAGE: '{{ $STAGE }}'
        RUN: '{{ flow_run.name }}'
        PART: 'run-{{ flow_run.id }}'
        CTX: '{{ ctx.flow_run.id }}'
        LITERAL: '${HOME}'
"""


def test_placeholders_are_filled_or_left_out_as_prefect_deploy_does_each_left_out_one_warned(tmp_path, capsys):
    env = {"REGISTRY": "registry.example", "DEPLOY_ENV": "staging", "TEAM": "sales", "STAGE": "dev"}
    path = repository(tmp_path, PLACEHOLDERS)
    manifest, lines = imported(path, capsys, env=env)
    assert manifest["image"]["repository"] == "${REGISTRY}/etl"
    assert manifest["deployments"][0]["name"] == "${DEPLOY_ENV}-etl"
    ours = resolved(path, env)["staging-etl"]
    # Prefect's own two passes: the environment when it starts, the build steps' outputs after them
    config = yaml.safe_load(PLACEHOLDERS)["deployments"][0]
    config = apply_values(config, {**os.environ, **env}, remove_notset=False)
    old = {k: os.environ.get(k) for k in env}
    os.environ.update(env)
    try:
        theirs = apply_values(config, {"build-image": {"image": "<built>", "tag": "<tag>"}}, skip_prefixes=["ctx."])
    finally:
        for k, v in old.items():
            os.environ.pop(k) if v is None else os.environ.__setitem__(k, v)
    theirs_variables = dict(theirs["work_pool"]["job_variables"])
    assert theirs_variables.pop("image") == "<built>"  # flow-register sets the image it built in its place
    assert ours.job_variables == theirs_variables
    assert ours.name == theirs["name"] and ours.description == theirs["description"] == "costs ${X:-} a run"
    assert [t for t in ours.tags if not t.startswith(OWNERSHIP)] == theirs["tags"]
    assert theirs["version"] == "<tag>" and ours.version is None  # flow-register's own: the image's content tag
    for line, text in [(9, "'{{ build-image.tag }}' is an output of a build or push step ('build-image')"),
                       (11, "'{{ flow_run.name }}' is a value prefect deploy does not have when it registers"),
                       (19, "'{{ flow_run.name }}' is a value prefect deploy does not have"),
                       (20, "'{{ flow_run.id }}' is a value prefect deploy does not have")]:
        assert warned(lines, path, line, text), (line, text, lines)
    assert not any("STAGE" in l or "ctx." in l or "build-image.image" in l for l in lines if "warning" in l)


UNNAMED_AND_TWICE = """\
name: etl
deployments:
- name: null
  entrypoint: null
  work_pool: {name: null}
- name: null
  entrypoint: null
- name: no-entrypoint
  entrypoint: null
  work_pool: {name: pool}
- name: daily
  entrypoint: flows/etl.py:etl
  work_pool: {name: pool}
  description: the first
- name: daily
  entrypoint: flows/etl.py:etl
  work_pool: {name: pool}
  description: the second
"""


def test_unnamed_deployments_are_skipped_and_the_last_of_one_name_wins_as_with_prefect_deploy_all(tmp_path, capsys):
    path = repository(tmp_path, UNNAMED_AND_TWICE)
    manifest, lines = imported(path, capsys)
    assert [(d["name"], d.get("description")) for d in manifest["deployments"]] == [("daily", "the second")]
    assert warned(lines, path, 3, "a deployment without a name is skipped by prefect deploy")
    assert warned(lines, path, 6, "a deployment without a name is skipped by prefect deploy")
    assert warned(lines, path, 8, "deployment 'no-entrypoint' has no entrypoint, which prefect deploy refuses")
    assert warned(lines, path, 11, "deployment 'daily' is declared again on line 15; the later one is kept")


STEPS_AS_TEXT = """\
name: etl
build: prefect_docker.deployments.steps.build_docker_image
pull: prefect.deployments.steps.git_clone
deployments:
- name: etl
  entrypoint: flows/etl.py:etl
  work_pool: {name: pool}
  push: prefect_docker.deployments.steps.push_docker_image
"""


def test_steps_written_as_one_string_are_warned_not_read_one_letter_at_a_time(tmp_path, capsys):
    path = repository(tmp_path, STEPS_AS_TEXT)
    manifest, lines = imported(path, capsys)
    assert "image" not in manifest and "code" not in str(manifest)
    for line, key in [(2, "build"), (3, "pull"), (8, "push")]:
        assert warned(lines, path, line, f"'{key}' is not a list of steps, so prefect deploy cannot run it either")
    assert not any("step 'p'" in l or "step 'r'" in l for l in lines)


ANCHORED_BUILD = """\
name: etl
definitions:
  actions:
    docker_build: &docker_build
    - prefect_docker.deployments.steps.build_docker_image:
        id: build-image
        image_name: registry.example/etl
        dockerfile: auto
  work_pools:
    pool: &pool
      name: pool
      job_variables: {image: '{{ build-image.image }}', env: {A: b}}
deployments:
- name: through-anchors
  entrypoint: flows/etl.py:etl
  build: *docker_build
  work_pool: *pool
- name: inline
  entrypoint: flows/etl.py:etl
  build: *docker_build
  work_pool:
    name: pool
    job_variables: {image: '{{ build-image.image }}', env: {A: b}}
"""


def test_the_built_image_through_an_anchor_is_treated_as_when_written_inline(tmp_path, capsys):
    path = repository(tmp_path, ANCHORED_BUILD)
    manifest, lines = imported(path, capsys)
    assert manifest["image"] == {"repository": "registry.example/etl", "dockerfile": "auto"}
    ours = resolved(path)
    assert ours["through-anchors"].job_variables == ours["inline"].job_variables == {"env": {"A": "b"}}
    assert not any("build-image" in l for l in lines)


INSTALLS_ITSELF = """\
name: etl
pull:
- prefect.deployments.steps.git_clone:
    id: clone
    repository: https://github.com/acme/etl.git
    branch: main
- prefect.deployments.steps.pip_install_requirements:
    directory: '{{ clone.directory }}'
    requirements_file: requirements.txt
- prefect.deployments.steps.run_shell_script:
    directory: '{{ clone.directory }}'
    script: pip install .
deployments:
- name: etl
  entrypoint: flows/etl.py:etl
  work_pool: {name: pool}
"""


def test_a_project_that_installs_itself_keeps_its_pip_install_step(tmp_path, capsys):
    path = repository(tmp_path, INSTALLS_ITSELF)
    (tmp_path / "requirements.txt").write_text("")
    (tmp_path / "pyproject.toml").write_text("[project]\nname = 'etl'\nversion = '1'\n")
    manifest, lines = imported(path, capsys)
    assert manifest["defaults"]["code"]["install"] == "."
    assert not any("run_shell_script" in l for l in lines)
    manifest = load_manifest(tmp_path / "flows.yaml")
    d = manifest.deployments("prod")[0]
    steps = code.pull_steps(manifest, d, None, code.Checkout(commit="0" * 40, folder=""))
    theirs = yaml.safe_load(INSTALLS_ITSELF)["pull"]
    as_registered = yaml.safe_load(yaml.safe_dump(steps).replace(code.CLONE_ID, "clone"))
    assert as_registered == theirs


def test_code_install_without_a_project_there_is_an_error_at_its_line(tmp_path, capsys):
    path = repository(tmp_path, INSTALLS_ITSELF.replace("pip install .", "pip install ./lib"))
    (tmp_path / "requirements.txt").write_text("")
    _, lines = imported(path, capsys, expect=1)
    assert any(":11:14: error: code.install 'lib' has no pyproject.toml or setup.py for pip to install" in l
               for l in lines), lines


MONOREPO = """\
name: sales
deployments:
- name: etl
  entrypoint: pipelines/sales/flows/etl.py:etl
  work_pool: {name: pool}
"""


def test_a_prefect_yaml_in_a_subfolder_deployed_from_the_root_keeps_entrypoints_relative_to_the_root(
        tmp_path, capsys, monkeypatch):
    (tmp_path / "pipelines" / "sales" / "flows").mkdir(parents=True)
    (tmp_path / "pipelines" / "sales" / "flows" / "etl.py").write_text(FLOW)
    (tmp_path / "pipelines" / "sales" / "prefect.yaml").write_text(MONOREPO)
    monkeypatch.chdir(tmp_path)  # where `prefect deploy --prefect-file pipelines/sales/prefect.yaml` runs
    assert main(["import", "pipelines/sales/prefect.yaml", "-o", "pipelines/sales/flows.yaml"]) == 2
    assert "write the manifest in . (-o flows.yaml): its entrypoints are relative to it" in \
        capsys.readouterr().err
    assert main(["import", "pipelines/sales/prefect.yaml", "-o", "flows.yaml"]) == 0
    assert "pipelines/sales/prefect.yaml:4:15: warning: entrypoints are relative to the current directory" in \
        capsys.readouterr().err
    assert yaml.safe_load(Path("flows.yaml").read_text())["deployments"][0]["entrypoint"] == \
        "pipelines/sales/flows/etl.py:etl"
    assert main(["validate"]) == 0


@pytest.mark.parametrize("pool_type", pool_types())
def test_every_pool_type_the_manifest_accepts_is_accepted_by_pool_type(pool_type, tmp_path, capsys):
    # a managed pool runs Prefect's image: its runs clone their code
    pull = "pull:\n- prefect.deployments.steps.git_clone: {repository: 'https://github.com/acme/flows'}\n" \
        if pool_type == "prefect:managed" else ""
    path = repository(tmp_path, f"name: etl\n{pull}deployments:\n- {{name: etl, entrypoint: flows/etl.py:etl, "
                                "work_pool: {name: pool}}\n")
    manifest, _ = imported(path, capsys, "--pool-type", f"pool={pool_type}")
    assert manifest["environments"]["prod"]["work_pool"] == {"name": "pool", "type": pool_type}


def test_a_pool_type_the_manifest_does_not_accept_is_refused_naming_the_schemas_list(capsys):
    assert "cloud-run-v2:push" in pool_types() and "azure-container-instance:push" in pool_types()
    assert main(["import", "--pool-type", "pool=fargate"]) == 2
    assert f"--pool-type 'pool=fargate': write POOL=TYPE, TYPE one of {', '.join(pool_types())}" in \
        capsys.readouterr().err


REPOSITORY_FROM_A_VARIABLE = """\
name: etl
build:
- prefect_docker.deployments.steps.build_docker_image:
    id: build-image
    image_name: '{{ prefect.variables.ecr_repository }}/etl'
deployments:
- name: etl
  entrypoint: flows/etl.py:etl
  work_pool: {name: pool}
"""


def test_an_image_repository_from_a_prefect_variable_is_refused_by_import_and_validate_alike(tmp_path, capsys):
    path = repository(tmp_path, REPOSITORY_FROM_A_VARIABLE)
    _, lines = imported(path, capsys, expect=1)
    assert warned(lines, path, 5, "'{{ prefect.variables.ecr_repository }}' is read from the Prefect server when "
                                  "prefect deploy builds")
    error = "error: image repository '{{ prefect.variables.ecr_repository }}/etl' names the registry"
    assert any(error in l and "[image-repository]" in l for l in lines), lines
    assert main(["validate", "-f", str(tmp_path / "flows.yaml")]) == 1
    assert error in capsys.readouterr().err


GIT_TEMPLATES = """\
name: etl
pull:
- prefect.deployments.steps.git_clone:
    repository: '{{ repository }}'
    branch: '{{ branch }}'
deployments:
- name: etl
  entrypoint: flows/etl.py:etl
  work_pool: {name: pool}
- name: token-in-url
  entrypoint: flows/etl.py:etl
  work_pool: {name: pool}
  pull:
  - prefect.deployments.steps.git_clone:
      repository: 'https://x-access-token:{{ token.stdout }}@github.com/acme/etl.git'
      branch: '{{ $BRANCH }}'
"""


def test_git_templates_are_warned_as_what_happens_to_them(tmp_path, capsys):
    path = repository(tmp_path, GIT_TEMPLATES)
    manifest, lines = imported(path, capsys, expect=None)
    by_name = {d["name"]: d.get("code") or manifest.get("defaults", {}).get("code") for d in manifest["deployments"]}
    assert by_name["etl"]["git"] == {"repository": "{{ repository }}", "ref": "{{ branch }}"}
    assert warned(lines, path, 4, "the repository '{{ repository }}' is kept as written: nothing fills its template")
    assert warned(lines, path, 5, "the branch '{{ branch }}' is kept as written")
    assert by_name["token-in-url"]["git"] == {"repository": "https://github.com/acme/etl.git",
                                              "ref": "{{ $BRANCH }}"}  # the worker fills it, as it did
    assert warned(lines, path, 15, "the template in the repository URL's credentials is left out of the URL")
    assert not any(":16:" in l for l in lines)


TEMPLATE_ONLY = """\
name: null
deployments:
- name: null
  entrypoint: null
  work_pool: {name: null, job_variables: {}}
"""


def test_a_prefect_yaml_with_nothing_prefect_deploy_would_register_is_an_error_at_its_deployments(tmp_path, capsys):
    path = repository(tmp_path, TEMPLATE_ONLY)
    _, lines = imported(path, capsys, expect=1)
    assert f"{path}:2:1: error: no deployment here is one prefect deploy --all registers (each needs a name and an " \
           "entrypoint); there is nothing to convert [import-empty]" in lines
    assert not (tmp_path / "flows.yaml").exists()


def test_a_dotted_entrypoint_without_a_colon_is_read_as_prefect_reads_it(tmp_path, capsys):
    path = repository(tmp_path, "name: etl\ndeployments:\n- {name: etl, entrypoint: flows.etl.etl, work_pool: "
                                "{name: pool}}\n")
    manifest, lines = imported(path, capsys)
    assert manifest["deployments"][0]["entrypoint"] == "flows/etl.py:etl"
    assert warned(lines, path, 3, "module path 'flows.etl' written as the file 'flows/etl.py'")


def test_a_variable_not_set_where_import_runs_is_left_to_the_deploy_that_has_it(tmp_path, capsys, monkeypatch):
    for variable in ("ACTIVE", "PAUSED"):
        monkeypatch.delenv(variable, raising=False)
    path = repository(tmp_path, "name: etl\ndeployments:\n- name: etl\n  entrypoint: flows/etl.py:etl\n"
                                "  work_pool: {name: pool}\n  paused: '{{ $PAUSED }}'\n"
                                "  schedules: [{cron: '0 * * * *', active: '{{ $ACTIVE }}'}]\n")
    manifest, lines = imported(path, capsys)
    assert manifest["deployments"][0]["paused"] == "${PAUSED}"
    assert "note: the manifest reads ACTIVE, PAUSED from the environment flow-register runs in, as prefect deploy " \
           "did; not set here, so what uses them was not checked" in lines
    ours = resolved(path, {"ACTIVE": "false", "PAUSED": "true"})["etl"]
    assert (ours.schedules[0]["active"], ours.paused) == (False, True)  # typed as prefect's models type them
