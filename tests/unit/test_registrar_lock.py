"""The registrar image installs registrar/uv.lock (flow-register on prefect-client), not uv.lock. These
tests fail when that lock drifts: from the project's pyproject.toml, or from the versions the tests ran.

To bring it back in line: `cp uv.lock registrar/uv.lock && uv lock --project registrar` (uv keeps the
versions it finds in the copied lock, so the two agree)."""

from __future__ import annotations

import shutil
import subprocess
import tomllib
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
FIX = "run `cp uv.lock registrar/uv.lock && uv lock --project registrar`"


def versions(lock: Path) -> dict[str, str]:
    return {p["name"]: p["version"] for p in tomllib.loads(lock.read_text())["package"] if "version" in p}


def test_the_registrar_lock_matches_pyproject():
    uv = shutil.which("uv")
    assert uv, "uv is not on PATH"
    checked = subprocess.run([uv, "lock", "--check", "--offline", "--project", str(ROOT / "registrar")],
                             capture_output=True, text=True, timeout=120)
    assert checked.returncode == 0, f"registrar/uv.lock is out of date ({checked.stderr.strip()}): {FIX}"


def test_the_image_ships_the_versions_the_tests_ran():
    project, registrar = versions(ROOT / "uv.lock"), versions(ROOT / "registrar" / "uv.lock")
    assert registrar["prefect-client"] == project["prefect"]
    assert "prefect" not in registrar, "the registrar installs the full prefect distribution"
    differ = {name: (project[name], version) for name, version in registrar.items()
              if name in project and project[name] != version}
    assert not differ, f"versions (project, registrar) differ: {differ}; {FIX}"
