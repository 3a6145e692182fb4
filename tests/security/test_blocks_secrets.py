"""Block secrets (`blocks:` in the manifest): whoever writes the manifest cannot commit a secret into a block
field, and a server that echoes a refused request cannot make flow-register print the secret it sent."""

from __future__ import annotations

import contextlib
import http.server
import json
import threading
import uuid

import httpx
import pytest


def _everything(result, summary) -> str:
    """What a reader sees (less `::add-mask::` lines, which GitHub's runner takes in and never shows)."""
    printed = result.out + result.err + (summary.read_text() if summary.exists() else "")
    return "\n".join(line for line in printed.splitlines() if not line.startswith("::add-mask::"))


@pytest.mark.integration
def test_a_block_secret_written_in_the_manifest_is_refused_at_its_line_and_never_echoed(project, tmp_path):
    literal = f"hunter2-{uuid.uuid4().hex}"
    project.manifest["blocks"] = [{"type": "secret", "name": f"token-{project.name}", "fields": {"value": literal}},
                                  {"type": "aws-credentials", "name": f"aws-{project.name}",
                                   "fields": {"aws_secret_access_key": literal}}]
    project.write()
    lines = project.root.joinpath("flows.yaml").read_text().splitlines()
    summary = tmp_path / "summary.md"
    for command in (("validate",), ("plan", "-e", "dev")):
        refused = project.cli(*command, GITHUB_ACTIONS="true", GITHUB_STEP_SUMMARY=str(summary))
        assert refused.code == 1, refused
        found = [p for p in refused.err.splitlines() if p.endswith("[block-secret]") and p.startswith("flows.yaml:")]
        assert len(found) == 2, refused.err
        for problem, field in zip(found, ("value", "aws_secret_access_key")):
            assert f".fields.{field} is a secret field" in problem
            assert literal in lines[int(problem.split(":")[1]) - 1]  # the line the secret is on
        assert literal not in _everything(refused, summary)


class _Echoing(http.server.BaseHTTPRequestHandler):
    """A stand-in for a Prefect server refusing a block document as Prefect's validation handler does (422,
    with the request body echoed in `request_body`); every other request goes to the real server."""

    upstream = ""

    def _forward(self):
        body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
        if self.command == "POST" and self.path.rstrip("/").endswith("/block_documents"):
            answer = json.dumps({"exception_message": "Invalid request received.",
                                 "exception_detail": [{"loc": ["body", "data"], "msg": "refused",
                                                       "input": json.loads(body)["data"]}],
                                 "request_body": json.loads(body)}).encode()
            self.send_response(422)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(answer)))
            self.end_headers()
            self.wfile.write(answer)
            return
        response = httpx.request(self.command, self.upstream + self.path, content=body,
                                 headers={k: v for k, v in self.headers.items() if k.lower() not in ("host",)})
        self.send_response(response.status_code)
        for key, value in response.headers.items():
            if key.lower() not in ("content-length", "transfer-encoding", "connection", "content-encoding"):
                self.send_header(key, value)
        self.send_header("Content-Length", str(len(response.content)))
        self.end_headers()
        self.wfile.write(response.content)

    do_GET = do_POST = do_PATCH = do_DELETE = _forward

    def log_message(self, *args):
        pass


@contextlib.contextmanager
def _echoing(api_url: str):
    root, _, path = api_url.partition("/api")
    handler = type("Handler", (_Echoing,), {"upstream": root})
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}/api"
    finally:
        server.shutdown()
        server.server_close()


@pytest.mark.integration
def test_a_server_that_echoes_a_refused_block_never_makes_its_secret_printed(project, tmp_path):
    secret = f"s3cr3t-{uuid.uuid4().hex}"
    project.manifest["blocks"] = [{"type": "aws-credentials", "name": f"aws-{project.name}",
                                   "fields": {"aws_secret_access_key": "${AWS_SECRET_ACCESS_KEY}"}}]
    project.write()
    summary = tmp_path / "summary.md"
    with _echoing(project.api_url) as url:
        failed = project.deploy(api_url=url, AWS_SECRET_ACCESS_KEY=secret, GITHUB_ACTIONS="true",
                                GITHUB_STEP_SUMMARY=str(summary))
    assert failed.code == 3, failed  # applying failed part way: the server refused the block
    assert "creating block 'aws-credentials/aws-" in failed.err and "422" in failed.err
    assert secret not in _everything(failed, summary)
