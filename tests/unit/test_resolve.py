"""Merge precedence: built-in < defaults < environment < deployment < deployment's environment < command line.
Mappings merge key by key, lists and scalars replace, null removes."""

from __future__ import annotations

import pytest

from register.manifest.resolve import Overrides, resolve


def manifest(**deployment_extra):
    return {
        "version": 1,
        "project": "etl",
        "defaults": {"work_pool": {"name": "base-pool", "type": "ecs"}, "work_queue": "default",
                     "resources": {"cpu": 0.5, "memory": "1Gi"}, "tags": ["base"],
                     "parameters": {"region": "eu", "days": 1}, "job_variables": {"env": {"A": "1"}}},
        "environments": {
            "dev": {"resources": {"cpu": 0.25}, "tags": ["dev"], "parameters": {"days": 2}},
            "prod": {"work_pool": "prod-pool", "name_template": "{project}-{name}-{environment}"},
        },
        "deployments": [{"name": "load", "entrypoint": "f.py:load", **deployment_extra}],
    }


def one(data, env, overrides=None):
    [deployment] = resolve(data, env, overrides)
    return deployment


def test_environment_merges_mappings_key_by_key_and_replaces_lists():
    d = one(manifest(), "dev")
    assert d.resources == {"cpu": 0.25, "memory": "1Gi"}
    assert d.parameters == {"region": "eu", "days": 2}
    assert d.tags == ["dev", "managed-by:flow-register", "project:etl", "environment:dev"]


def test_deployment_over_environment_and_its_own_environment_over_that():
    d = one(manifest(resources={"memory": "2Gi"}, environments={"dev": {"resources": {"cpu": 1}}}), "dev")
    assert d.resources == {"cpu": 1, "memory": "2Gi"}
    assert d.origin("resources", "cpu") == ("deployments", 0, "environments", "dev", "resources", "cpu")
    assert d.origin("resources", "memory") == ("deployments", 0, "resources", "memory")


def test_command_line_wins_over_everything():
    d = one(manifest(environments={"dev": {"resources": {"cpu": 1}}}), "dev",
            Overrides(work_pool="other", cpu="2", memory="4Gi"))
    assert (d.work_pool, d.work_pool_type) == ("other", None)  # another pool: its type comes from the server
    assert d.resources == {"cpu": "2", "memory": "4Gi"}
    assert d.origin("resources", "cpu") == ("<command line>", "--cpu", "resources", "cpu")


def test_an_override_remembers_how_the_user_wrote_it():
    labels = {"cpu": "input 'cpu'", "work_pool": "input 'work-pool'"}
    d = one(manifest(), "dev", Overrides(work_pool="other", cpu="2", memory="4Gi", labels=labels))
    assert d.origin("resources", "cpu")[:2] == ("<command line>", "input 'cpu'")
    assert d.origin("work_pool")[:2] == ("<command line>", "input 'work-pool'")
    assert d.origin("resources", "memory")[:2] == ("<command line>", "--memory")  # no label: the flag


def test_null_removes_an_inherited_setting():
    d = one(manifest(resources={"cpu": None}, parameters={"days": None}, job_variables=None), "dev")
    assert d.resources == {"memory": "1Gi"}
    assert d.parameters == {"region": "eu"}
    assert d.job_variables == {}


def test_work_pool_replaces_as_a_whole():
    d = one(manifest(), "prod")
    assert (d.work_pool, d.work_pool_type) == ("prod-pool", None)
    assert d.origin("work_pool") == ("environments", "prod", "work_pool")


def test_name_template_and_ownership_tags():
    d = one(manifest(), "prod")
    assert d.name == "etl-load-prod" and d.manifest_name == "load"
    assert d.tags[-3:] == ["managed-by:flow-register", "project:etl", "environment:prod"]


def test_inherited_origin_points_at_defaults():
    d = one(manifest(), "prod")
    assert d.origin("resources", "memory") == ("defaults", "resources", "memory")
    assert d.origin("job_variables", "env", "A") == ("defaults", "job_variables", "env", "A")


@pytest.mark.parametrize("override, env, registered", [
    ({"enabled": False}, "dev", False),
    ({"enabled": False}, "prod", False),
    ({"enabled": False, "environments": {"dev": {"enabled": True}}}, "dev", True),
    ({"environments": {"prod": {"enabled": False}}}, "dev", True),
    ({"environments": {"prod": {"enabled": False}}}, "prod", False),
])
def test_enabled(override, env, registered):
    assert bool(resolve(manifest(**override), env)) is registered


def test_only_selects_by_manifest_name():
    data = manifest()
    data["deployments"].append({"name": "other", "entrypoint": "f.py:other"})
    assert [d.name for d in resolve(data, "dev", Overrides(only=["other"]))] == ["other"]


def test_the_banned_characters_are_prefects():
    from prefect.types.names import BANNED_CHARACTERS as prefects

    from register.manifest.resolve import BANNED_CHARACTERS

    assert list(BANNED_CHARACTERS) == prefects


def loaded(text: str, environ=None):
    from register.manifest.source import parse

    source = parse(text, "flows.yaml", environ)
    assert source.problems == []
    return source


MANIFEST = """\
version: 1
project: etl
defaults: {work_pool: pool, parameters: {region: eu, days: 1}}
environments: {dev: {}}
deployments:
  - name: load
    entrypoint: f.py:load
    parameters: {region: !null , days: null}
"""


def test_explicit_null_is_a_value_where_plain_null_removes():
    source = loaded(MANIFEST)
    [d] = resolve(source.data, "dev", nulls=source.nulls)
    assert d.parameters == {"region": None}


def test_a_plain_null_with_nothing_below_leaves_nothing():
    source = loaded(MANIFEST.replace("work_pool: pool, parameters: {region: eu, days: 1}", "work_pool: pool"))
    [d] = resolve(source.data, "dev", nulls=source.nulls)
    assert d.parameters == {"region": None}


def test_environment_variables_fill_strings_and_an_unquoted_one_takes_its_type():
    text = MANIFEST + "    concurrency_limit: ${LIMIT}\n    version: \"${BRANCH:-main}-${SHA}\"\n"
    source = loaded(text, {"LIMIT": "3", "SHA": "abc"})
    [d] = resolve(source.data, "dev", nulls=source.nulls)
    assert (d.concurrency_limit, d.version) == (3, "main-abc")


def test_prefect_templates_pass_through_untouched():
    source = loaded(MANIFEST + "    job_variables: {env: {TOKEN: \"{{ prefect.blocks.secret.token }}\", HOME: \"$${HOME}\"}}\n")
    [d] = resolve(source.data, "dev")
    assert d.job_variables == {"env": {"TOKEN": "{{ prefect.blocks.secret.token }}", "HOME": "${HOME}"}}


def test_concurrency_options_resolve_as_prefect_takes_them():
    d = one(manifest(concurrency_limit={"limit": 2, "grace_period_seconds": 90}), "dev")
    assert (d.concurrency_limit, d.concurrency_options) == (2, {"collision_strategy": "ENQUEUE",
                                                                "grace_period_seconds": 90})
    d = one(manifest(concurrency_limit=4), "dev")
    assert (d.concurrency_limit, d.concurrency_options, d.enforce_parameter_schema) == (4, None, True)
