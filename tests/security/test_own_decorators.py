"""The team's own flow decorators are read, never run: a decorator module of a pull request that would run
code when imported, or when its decorator is applied, runs nothing, and decorators that lead to each other in
a circle, across modules, end in an error naming the decorator, within the bounds."""

from __future__ import annotations

import os
import subprocess
import time
from pathlib import Path

from support.manifests import HOSTILE
from support.registration import CLI

SECRET = "pnu_own-decorator-secret-1234"
PAYLOAD = 'import pathlib\npathlib.Path({marks!r}, {name!r}).write_bytes(open("/proc/self/environ", "rb").read())\n'


def _run(root: Path) -> subprocess.CompletedProcess:
    env = {**os.environ, "OWN_DECORATOR_SECRET": SECRET, "PREFECT_API_URL": ""}
    return subprocess.run([CLI, "validate"], cwd=root, env=env, capture_output=True, text=True, timeout=120)


def test_a_decorator_module_that_runs_code_is_read_never_run(tmp_path):
    root, marks = tmp_path / "repo", tmp_path / "marks"
    (root / "flows").mkdir(parents=True)
    (root / "team").mkdir()
    marks.mkdir()
    (root / "flows.yaml").write_text(HOSTILE)
    (root / "team" / "__init__.py").write_text(PAYLOAD.format(marks=str(marks), name="package"))
    (root / "team" / "decorators.py").write_text(
        PAYLOAD.format(marks=str(marks), name="module") + "from prefect import flow\n\n\n"
        "def team_flow(**kw):\n" + "".join("    " + line + "\n" for line in
                                           PAYLOAD.format(marks=str(marks), name="decorator").splitlines())
        + "    return flow(**kw)\n")
    (root / "flows" / "flow.py").write_text("from team.decorators import team_flow\n\n\n"
                                             "@team_flow(name='hostile')\ndef hostile(x: int = 1):\n    pass\n")
    done = _run(root)
    assert done.returncode == 0, done.stdout + done.stderr
    assert sorted(p.name for p in marks.iterdir()) == []
    assert SECRET not in done.stdout + done.stderr


def test_decorators_in_a_circle_across_modules_end_in_an_error_naming_one(tmp_path):
    root = tmp_path / "repo"
    (root / "flows").mkdir(parents=True)
    (root / "flows.yaml").write_text(HOSTILE)
    (root / "a.py").write_text("from b import wrap_b\n\n\ndef wrap_a(fn):\n    return wrap_b(fn)\n")
    (root / "b.py").write_text("from a import wrap_a\n\n\ndef wrap_b(fn):\n    return wrap_a(fn)\n")
    (root / "flows" / "flow.py").write_text("from a import wrap_a\n\n\n@wrap_a\ndef hostile(x: int = 1):\n    pass\n")
    started = time.monotonic()
    done = _run(root)
    assert time.monotonic() - started < 30
    assert done.returncode == 1, done.stdout + done.stderr
    assert ("flows.yaml:6:") in done.stderr and "[entrypoint-flow-unseen]" in done.stderr, done.stderr
    assert "'wrap_a' (a.py:4) is reached again through decorators that call each other" in done.stderr, done.stderr
    assert "Traceback" not in done.stderr
