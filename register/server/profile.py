"""The active Prefect profile, read the way `prefect` reads it, without importing Prefect.

A user who ran `prefect cloud login` or `prefect profile use` has PREFECT_API_URL (and a key) in
PREFECT_HOME/profiles.toml under the active profile; the environment still wins over it.
"""

from __future__ import annotations

import tomllib
from collections.abc import Mapping
from pathlib import Path


def profiles_path(environ: Mapping[str, str]) -> Path:
    home = Path(environ.get("PREFECT_HOME") or "~/.prefect").expanduser()
    path = environ.get("PREFECT_PROFILES_PATH")
    if path:
        return Path(path.replace("$PREFECT_HOME", str(home))).expanduser()
    return home / "profiles.toml"


def active_profile(environ: Mapping[str, str]) -> dict[str, str]:
    """The settings of the active profile ({} without a profiles file, or when it cannot be read)."""
    try:
        contents = tomllib.loads(profiles_path(environ).read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, tomllib.TOMLDecodeError):
        return {}
    name = environ.get("PREFECT_PROFILE") or contents.get("active")
    profile = (contents.get("profiles") or {}).get(name) if isinstance(name, str) else None
    if not isinstance(profile, dict):
        return {}
    return {str(k): str(v) for k, v in profile.items() if v is not None}
