"""`blocks:` in the manifest: Prefect block documents created, compared (secrets too, never shown), updated,
put back after a hand edit and pruned, owned through flow-register's record on the server, with the block
types of Prefect, prefect-aws and prefect-gcp registered where the server lacks them."""

from __future__ import annotations

import json
import re
import uuid

import pytest

pytestmark = pytest.mark.integration


@pytest.fixture(autouse=True)
def prefect_loads_from_the_server(prefect_server):
    """`Block.load` in this process asks the session server: Prefect took its settings when it was first
    imported (perhaps by an earlier test, before PREFECT_API_URL was set), so they are set here, not only in
    the environment."""
    from prefect.settings import PREFECT_API_URL, temporary_settings

    with temporary_settings(updates={PREFECT_API_URL: prefect_server.api_url}):
        yield


def blocks_of(result) -> dict[str, dict]:
    return {b["name"]: b for b in result.json["blocks"]}


def on_server(api, slug: str, name: str, secrets: bool = True) -> dict | None:
    found = api.post("/block_documents/filter", {"include_secrets": secrets,
                                                 "block_types": {"slug": {"any_": [slug]}},
                                                 "block_documents": {"name": {"any_": [name]}}})
    return found[0] if found else None


def aws_blocks(project) -> list[dict]:
    return [{"type": "aws-credentials", "name": f"aws-{project.name}",
             "fields": {"aws_access_key_id": "AKIAEXAMPLE", "aws_secret_access_key": "${AWS_SECRET_ACCESS_KEY}",
                        "region_name": "eu-west-1"}},
            {"type": "s3-bucket", "name": f"flows-{project.name}",
             "fields": {"bucket_name": "acme-flows", "credentials": {"block": f"aws-credentials/aws-{project.name}"}}},
            {"type": "secret", "name": f"token-{project.name}", "fields": {"value": "${API_TOKEN}"}}]


def everything_printed(result, summary) -> str:
    """What a reader sees: the log (less `::add-mask::` lines, which GitHub's runner takes in and never
    shows: flow-register masks the job's variables named like secrets), the JSON and the step summary."""
    printed = result.out + result.err + (summary.read_text() if summary.exists() else "")
    return "\n".join(line for line in printed.splitlines() if not line.startswith("::add-mask::"))


def test_blocks_are_created_loaded_by_prefect_left_alone_and_a_secret_change_never_shows_its_value(
        project, api, prefect_env, tmp_path):
    secret, token, rotated = (f"s3cr3t-{uuid.uuid4().hex}" for _ in range(3))
    project.manifest["blocks"] = aws_blocks(project)
    # a deployment naming a block this manifest declares: not "missing", though the server lacks it yet
    project.manifest["deployments"][1]["job_variables"] = {
        "env": {"TOKEN": f"{{{{ prefect.blocks.secret.token-{project.name} }}}}"}}
    project.write()
    env = {"AWS_SECRET_ACCESS_KEY": secret, "API_TOKEN": token}

    created = project.deploy(**env)
    assert created.code == 0, created
    assert {n: b["action"] for n, b in blocks_of(created).items()} == {
        f"aws-credentials/aws-{project.name}": "create", f"s3-bucket/flows-{project.name}": "create",
        f"secret/token-{project.name}": "create"}
    order = [(s.get("kind", "deployment"), s["name"]) for s in created.json["applied"]]
    assert order.index(("block", f"aws-credentials/aws-{project.name}")) < \
        order.index(("block", f"s3-bucket/flows-{project.name}")) < order.index(("deployment", f"extract-{project.name}"))
    assert secret not in created.out + created.err and token not in created.out + created.err

    # what a flow run gets: Prefect's own classes load them, the bucket with its credentials block inside
    from prefect.blocks.system import Secret
    from prefect_aws import S3Bucket

    bucket = S3Bucket.load(f"flows-{project.name}")
    assert bucket.bucket_name == "acme-flows"
    assert bucket.credentials.aws_secret_access_key.get_secret_value() == secret
    assert bucket.credentials.region_name == "eu-west-1"
    assert Secret.load(f"token-{project.name}").get() == token

    updated_before = {k: on_server(api, *k.split("/"))["updated"] for k in blocks_of(created)}
    again = project.deploy(**env)
    assert again.code == 0, again
    assert {b["action"] for b in blocks_of(again).values()} == {"unchanged"}
    assert again.json["requests"]["writes"] == 0
    assert {k: on_server(api, *k.split("/"))["updated"] for k in blocks_of(created)} == updated_before

    # the token is rotated in the job's secrets: planned as "secret changed", its value nowhere
    summary = tmp_path / "summary.md"
    env["API_TOKEN"] = rotated
    planned = project.cli("plan", "-e", "dev", "--detailed-exitcode", GITHUB_ACTIONS="true",
                          GITHUB_STEP_SUMMARY=str(summary), **env)
    assert planned.code == 2, planned
    assert re.search(rf"^  update +secret/token-{project.name} +value$", planned.out, re.M), planned.out
    assert "value: secret changed" in planned.out
    assert "`value: secret changed`" in summary.read_text()
    as_json = project.plan(**env)
    assert blocks_of(as_json)[f"secret/token-{project.name}"]["diff"] == {
        "value": {"from": "(secret)", "to": "(secret changed)"}}
    applied = project.deploy(GITHUB_ACTIONS="true", GITHUB_STEP_SUMMARY=str(summary), **env)
    assert applied.code == 0, applied
    assert blocks_of(applied)[f"secret/token-{project.name}"]["action"] == "update"
    assert Secret.load(f"token-{project.name}").get() == rotated
    for result in (planned, as_json, applied):
        printed = everything_printed(result, summary)
        for value in (secret, token, rotated):
            assert value not in printed
    assert project.deploy(**env).json["requests"]["writes"] == 0


def test_a_hand_edit_of_a_managed_block_is_drift_and_is_put_back(project, api):
    secret = f"s3cr3t-{uuid.uuid4().hex}"
    project.manifest["blocks"] = aws_blocks(project)[:1]
    project.write()
    env = {"AWS_SECRET_ACCESS_KEY": secret}
    assert project.deploy(**env).code == 0
    key = f"aws-credentials/aws-{project.name}"
    held = on_server(api, "aws-credentials", f"aws-{project.name}")

    # someone edits the region and the secret in the UI
    api.http.patch(f"/block_documents/{held['id']}", json={"data": {
        "region_name": "us-east-1", "aws_secret_access_key": "typed-by-hand-1234"}}).raise_for_status()
    drifted = project.plan(**env)
    assert drifted.code == 0, drifted
    block = blocks_of(drifted)[key]
    assert block["action"] == "update" and block["drift"] is True
    assert block["diff"]["region_name"] == {"from": "us-east-1", "to": "eu-west-1"}
    assert block["diff"]["aws_secret_access_key"] == {"from": "(secret)", "to": "(secret changed)"}
    assert "typed-by-hand-1234" not in drifted.out + drifted.err
    put_back = project.deploy(**env)
    assert put_back.code == 0, put_back
    held = on_server(api, "aws-credentials", f"aws-{project.name}")
    assert (held["data"]["region_name"], held["data"]["aws_secret_access_key"]) == ("eu-west-1", secret)
    after = project.plan(**env)
    assert blocks_of(after)[key]["action"] == "unchanged" and not blocks_of(after)[key]["drift"]

    # a change of the manifest is a plain update, not drift
    project.manifest["blocks"][0]["fields"]["region_name"] = "eu-central-1"
    project.write()
    changed = project.plan(**env)
    assert blocks_of(changed)[key]["action"] == "update" and blocks_of(changed)[key]["drift"] is False


def test_a_block_made_by_hand_is_a_conflict_refused_before_any_write(project, api):
    name = f"token-{project.name}"
    secret_type = api.http.get("/block_types/slug/secret").json()
    schema = api.post("/block_schemas/filter", {"block_schemas": {"block_type_id": {"any_": [secret_type["id"]]}}})[0]
    api.post("/block_documents/", {"name": name, "block_type_id": secret_type["id"], "block_schema_id": schema["id"],
                                   "data": {"value": "made-by-hand"}})
    project.manifest["blocks"] = [{"type": "secret", "name": name, "fields": {"value": "${API_TOKEN}"}},
                                  aws_blocks(project)[0]]
    project.write()

    refused = project.cli("deploy", "-e", "dev", API_TOKEN="from-the-manifest", AWS_SECRET_ACCESS_KEY="x" * 20)
    assert refused.code == 1, refused
    problem = next(line for line in refused.err.splitlines() if "[block-owner]" in line)
    assert f"block 'secret/{name}'" in problem and "made outside flow-register" in problem
    line = int(problem.split(":")[1])
    assert name in project.root.joinpath("flows.yaml").read_text().splitlines()[line - 1]
    assert on_server(api, "secret", name)["data"] == {"value": "made-by-hand"}
    assert on_server(api, "aws-credentials", f"aws-{project.name}") is None  # nothing else was written either
    assert api.deployments(f"project:{project.name}") == {}


def test_prune_deletes_only_the_blocks_flow_register_wrote(project, api):
    blocks = aws_blocks(project)
    project.manifest["blocks"] = blocks
    project.write()
    env = {"AWS_SECRET_ACCESS_KEY": "x" * 20, "API_TOKEN": "y" * 20}
    assert project.deploy(**env).code == 0
    # a block of the same type made by hand beside them
    secret_type = api.http.get("/block_types/slug/secret").json()
    schema = api.post("/block_schemas/filter", {"block_schemas": {"block_type_id": {"any_": [secret_type["id"]]}}})[0]
    api.post("/block_documents/", {"name": f"by-hand-{project.name}", "block_type_id": secret_type["id"],
                                   "block_schema_id": schema["id"], "data": {"value": "mine"}})

    project.manifest["blocks"] = blocks[:2]
    project.write()
    kept = project.cli("deploy", "-e", "dev", **env)
    assert kept.code == 0, kept
    assert f"Blocks no longer in the manifest, kept: secret/token-{project.name}; --prune deletes them" in kept.out
    assert on_server(api, "secret", f"token-{project.name}") is not None

    # the bucket and its credentials leave too; the deployments' deletions come before
    project.manifest["blocks"] = []
    project.write()
    pruned = project.deploy("--prune", **env)
    assert pruned.code == 0, pruned
    assert {n: b["action"] for n, b in blocks_of(pruned).items()} == {
        f"aws-credentials/aws-{project.name}": "delete", f"s3-bucket/flows-{project.name}": "delete",
        f"secret/token-{project.name}": "delete"}
    for key in blocks_of(pruned):
        assert on_server(api, *key.split("/")) is None
    assert on_server(api, "secret", f"by-hand-{project.name}")["data"] == {"value": "mine"}
    records = api.post("/variables/filter", {"variables": {"tags": {"all_": ["flow-register-record:blocks",
                                                                            f"project:{project.name}"]}}})
    assert records == []  # the records of the pruned blocks went with them
    assert project.deploy("--prune", **env).json["requests"]["writes"] == 0


def test_a_block_type_the_server_lacks_is_registered_from_the_integration_s_own_class(project, api, prefect_env):
    for slug in ("lambda-function", "gcpsecret"):  # types no other test uses: gone from the session's server
        found = api.http.get(f"/block_types/slug/{slug}")
        if found.status_code == 200:
            api.http.delete(f"/block_types/{found.json()['id']}").raise_for_status()
        assert api.http.get(f"/block_types/slug/{slug}").status_code == 404
    project.manifest["blocks"] = [
        aws_blocks(project)[0],
        {"type": "lambda-function", "name": f"fn-{project.name}",
         "fields": {"function_name": "score", "aws_credentials": {"block": f"aws-credentials/aws-{project.name}"}}},
        {"type": "gcp-credentials", "name": f"gcp-{project.name}",
         "fields": {"project": "acme", "service_account_info": "${GCP_SERVICE_ACCOUNT}"}},
        {"type": "gcpsecret", "name": f"gsecret-{project.name}",
         "fields": {"secret_name": "db-password", "gcp_credentials": {"block": f"gcp-credentials/gcp-{project.name}"}}},
    ]
    project.write()
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric import rsa

    key = rsa.generate_private_key(public_exponent=65537, key_size=2048).private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()).decode()
    info = json.dumps({"type": "service_account", "project_id": "acme", "private_key": key,
                       "client_email": "flows@acme.iam.gserviceaccount.com",
                       "token_uri": "https://oauth2.googleapis.com/token"})
    result = project.deploy(AWS_SECRET_ACCESS_KEY="z" * 20, GCP_SERVICE_ACCOUNT=info)
    assert result.code == 0, result
    assert key.splitlines()[1] not in result.out + result.err
    assert api.http.get("/block_types/slug/lambda-function").json()["name"] == "Lambda Function"

    from prefect_aws.lambda_function import LambdaFunction
    from prefect_gcp.secret_manager import GcpSecret

    function = LambdaFunction.load(f"fn-{project.name}")
    assert (function.function_name, function.aws_credentials.region_name) == ("score", "eu-west-1")
    secret = GcpSecret.load(f"gsecret-{project.name}")
    assert secret.gcp_credentials.service_account_info.get_secret_value()["project_id"] == "acme"


def test_block_mistakes_are_told_at_their_line_and_nothing_is_written(project, api):
    literal = f"literal-{uuid.uuid4().hex}"
    project.manifest["blocks"] = [
        {"type": "aws-credential", "name": f"aws-{project.name}"},
        {"type": "secret", "name": f"token-{project.name}", "fields": {"value": literal}},
        {"type": "s3-bucket", "name": f"flows-{project.name}", "fields": {"bucket": "x"}},
        {"type": "aws-credentials", "name": f"ok-{project.name}",
         "fields": {"aws_secret_access_key": "${AWS_SECRET_ACCESS_KEY}"}},
    ]
    project.write()
    lines = project.root.joinpath("flows.yaml").read_text().splitlines()

    for command in (("validate",), ("deploy", "-e", "dev")):
        refused = project.cli(*command, AWS_SECRET_ACCESS_KEY="a" * 20)
        assert refused.code == 1, refused
        assert literal not in refused.out + refused.err
        problems = {m.group(2): (int(m.group(1)), m.group(0)) for m in
                    re.finditer(r"^flows\.yaml:(\d+):\d+: error: .*\[(block-[a-z]+)\]$", refused.err, re.M)}
        line, text = problems["block-type"]
        assert "unknown block type 'aws-credential'; did you mean 'aws-credentials'" in text
        assert "aws-credential" in lines[line - 1]
        line, text = problems["block-secret"]
        assert "blocks[1].fields.value is a secret field of block type 'secret'" in text
        assert "value:" in lines[line - 1]
        assert "unknown field 'bucket' of block type 's3-bucket'; did you mean 'bucket_name'?" in refused.err
    assert on_server(api, "aws-credentials", f"ok-{project.name}") is None
    assert api.post("/variables/filter", {"variables": {"tags": {"all_": [f"project:{project.name}"]}}}) == []
    assert api.deployments(f"project:{project.name}") == {}


@pytest.mark.parametrize("fault, method, path", [("lost", "POST", r"/block_documents/$"),
                                                 ("reset-after", "PATCH", r"/block_documents/")])
def test_a_fault_on_a_block_s_write_still_ends_in_one_run_with_the_plan(project, api, fault, method, path):
    from support.proxy import Proxy, Rule

    project.manifest["blocks"] = aws_blocks(project)[:1]
    project.write()
    env = {"AWS_SECRET_ACCESS_KEY": "first-" + "x" * 20}
    if method == "PATCH":  # an update: the block is there already
        assert project.deploy(**env).code == 0
        env = {"AWS_SECRET_ACCESS_KEY": "second-" + "x" * 20}
    with Proxy(project.api_url, retry_after=1, hold_seconds=8, rules=[Rule(fault, method, path)]) as proxy:
        result = project.deploy(api_url=proxy.api_url, PREFECT_API_REQUEST_TIMEOUT="5",
                                FLOW_REGISTER_RETRY_SECONDS="90", **env)
        assert proxy.injected == {fault: 1}, proxy.summary()
    assert result.code == 0, result
    held = on_server(api, "aws-credentials", f"aws-{project.name}")
    assert held["data"]["aws_secret_access_key"] == env["AWS_SECRET_ACCESS_KEY"]
    again = project.deploy(**env)
    assert again.code == 0 and again.json["requests"]["writes"] == 0, again
