"""Each work pool type is declared once (register/prefect/resources.py: POOL_TYPES): every declared name, push variants
included, goes through the schema, the offline check, the translation and `import --pool-type` alike."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import yaml

from register.prefect import resources
from register.cli import main
from register.engine.desired import Pool
from register.importer import python as python_import
from register.manifest import load_manifest

ROOT = Path(__file__).resolve().parents[2]
FLOW = "from prefect import flow\n\n\n@flow\ndef etl():\n    pass\n"
SIZE = {"cpu": 1, "memory": "2Gi"}  # a size every platform that takes resources runs


def repository(tmp_path: Path, pool_type: str, resources_yaml: str = "") -> Path:
    (tmp_path / "flows").mkdir(exist_ok=True)
    (tmp_path / "flows" / "etl.py").write_text(FLOW)
    (tmp_path / "flows.yaml").write_text(
        f"version: 1\nproject: p\nenvironments: {{dev: {{work_pool: {{name: pool, type: '{pool_type}'}}}}}}\n"
        f"deployments:\n- {{name: etl, entrypoint: flows/etl.py:etl{resources_yaml}}}\n")
    return tmp_path / "flows.yaml"


def test_the_schemas_enum_is_every_declared_name():
    schema = json.loads((ROOT / "schemas" / "manifest.schema.json").read_text())
    mapping = next(s for s in schema["$defs"]["work_pool"]["oneOf"] if s.get("type") == "object")
    assert mapping["properties"]["type"]["enum"] == list(resources.names())


def test_every_pool_type_a_prefect_2_script_names_is_declared():
    assert {t for t in python_import.POOL_TYPE.values() if t} <= set(resources.names())


@pytest.mark.parametrize("pool_type", resources.names())
def test_every_declared_pool_type_validates_checks_translates_and_imports(pool_type, tmp_path, capsys):
    declared = resources.find(pool_type)
    assert declared is not None and resources.base_type(pool_type) == declared.name

    # the schema takes it, and the offline check runs its rules
    manifest = load_manifest(repository(tmp_path, pool_type, ", resources: {cpu: 1, memory: 2Gi}"))
    problems = [(p.rule, p.message) for p in manifest.errors()]
    translation = resources.translate(SIZE, pool_type)
    if declared.translate is None:
        # refused, for the plain reason or the type's own (no_resources), naming the types that take resources
        ((_, message, rule),) = translation.errors
        assert rule == "resources-pool" or declared.no_resources is not None
        assert message.endswith(f"use a pool of type {', '.join(resources.taking_resources())}")
        # a type that runs only its own images also needs the code from remote storage
        assert sorted(r for r, _ in problems) == sorted([rule] + (["managed-code"] if declared.official_images else []))
        assert translation.job_variables == {}
    else:
        # its translation sets only the variables declared for it, the ones variables_for names
        assert set(translation.job_variables) <= set(declared.variables)
        assert set(translation.job_variables) | {v for v in declared.variables if "cpu" in v and translation.errors} \
            == resources.variables_for(pool_type, SIZE)
        assert [rule for rule, _ in problems] == [rule for _, _, rule in translation.errors]
        # a push pool is its hybrid twin's platform
        assert resources.translate(SIZE, declared.name).job_variables == translation.job_variables
    # offline, whether it runs the image is the declaration's
    assert Pool("pool", pool_type).takes_image == declared.takes_image

    # import: the type is accepted, and the translated variables come back as the same resources
    # (a type that runs only its own images gets the code cloned, as it needs)
    clone = {"pull": [{"prefect.deployments.steps.git_clone": {"repository": "https://github.com/acme/flows",
                                                               "branch": "main"}}]} if declared.official_images else {}
    (tmp_path / "prefect.yaml").write_text(yaml.safe_dump({"name": "etl", **clone, "deployments": [{
        "name": "etl", "entrypoint": "flows/etl.py:etl",
        "work_pool": {"name": "pool", "job_variables": translation.job_variables}}]}))
    (tmp_path / "flows.yaml").unlink()
    code = main(["import", str(tmp_path / "prefect.yaml"), "-o", str(tmp_path / "flows.yaml"),
                 "--pool-type", f"pool={pool_type}"])
    assert code == 0, capsys.readouterr().err
    imported = yaml.safe_load((tmp_path / "flows.yaml").read_text())
    assert imported["environments"]["prod"]["work_pool"] == {"name": "pool", "type": pool_type}
    if translation.job_variables:
        back = imported["deployments"][0]["resources"]
        assert resources.translate(back, pool_type).job_variables == translation.job_variables
        assert "job_variables" not in imported["deployments"][0]


def test_a_name_not_declared_is_refused_by_the_schema_the_check_and_import(tmp_path, capsys):
    manifest = load_manifest(repository(tmp_path, "lambda"))
    (problem,) = manifest.errors()
    assert problem.rule == "enum" and all(f"'{name}'" in problem.message for name in resources.names())
    assert resources.translate(SIZE, "lambda").errors[0][2] == "resources-pool"
    assert main(["import", "--pool-type", "pool=lambda"]) == 2
    assert f"TYPE one of {', '.join(resources.names())}" in capsys.readouterr().err
