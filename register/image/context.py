"""The content tag: one hash of everything that decides what `docker build` produces.

What goes in: every path of the build context that Docker would send (the `.dockerignore` applied
with Docker's own matching rules, as docker-py implements them), with its type, its executable bit
and its bytes (or a symlink's target); the Dockerfile's text; the build arguments; the platform.
What stays out: timestamps, owners, other permission bits, where the context lives on disk, the
order anything was listed in, and `.git` (Docker sends it unless ignored, but it changes with every
commit whether or not the code did: hashing it would rebuild and re-register on every push). So a fresh checkout of the same commit, on another machine,
yields the same tag, and a change that Docker would see yields another.

The base image is named by the Dockerfile's text, not by its digest: a moved upstream tag does not
change the content tag (`build: always` rebuilds on purpose).
"""

from __future__ import annotations

import hashlib
import os
import stat
from pathlib import Path


SCHEME = b"flow-register content tag v1"
PREFIX = "ct-"
ALWAYS_EXCLUDED = ".git"
HEX_DIGITS = 20  # 80 bits: no collision in any one repository's history


def dockerignore_patterns(context: Path) -> list[str]:
    """The patterns of `context/.dockerignore`, read as the Docker CLI reads them."""
    path = context / ".dockerignore"
    if not path.is_file():
        return []
    lines = (line.strip() for line in path.read_text(encoding="utf-8").splitlines())
    return [line for line in lines if line and not line.startswith("#")]


def context_paths(context: Path, *, dockerfile: str | None = None, exclude: tuple[str, ...] = ()) -> list[str]:
    """The relative paths (files, folders, symlinks) Docker sends for `context`, sorted.

    `dockerfile` is the Dockerfile's path relative to the context, when it lies inside it: Docker
    always sends it, whatever `.dockerignore` says. `exclude` adds patterns of our own (the folder
    a generated Dockerfile is written to).
    """
    from docker.utils.build import exclude_paths  # the Docker SDK, with requests: not for a run without an image

    patterns = dockerignore_patterns(context) + [ALWAYS_EXCLUDED, *exclude]
    # exclude_paths appends `!<dockerfile>`; a name that matches nothing when it lies outside.
    paths = exclude_paths(str(context), patterns, dockerfile=dockerfile or "\0")
    return sorted(p.replace(os.sep, "/") for p in paths)


def _file_digest(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


def _entry(context: Path, relative: str) -> str | None:
    """One line per path: what of it ends up in the image."""
    path = context / relative
    info = path.lstat()
    if stat.S_ISLNK(info.st_mode):
        return f"L {relative} -> {os.readlink(path)}"
    if stat.S_ISDIR(info.st_mode):
        return f"D {relative}"
    if stat.S_ISREG(info.st_mode):
        executable = "x" if info.st_mode & 0o111 else "-"
        return f"F {relative} {executable} {_file_digest(path)}"
    return None  # sockets and fifos: Docker skips them too


def build_arg_value(value) -> str:
    """A build argument as the Docker CLI receives it (YAML `true` is `true`, not Python's `True`)."""
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)


def content_tag(context: Path, dockerfile_text: str | bytes, *, build_args: dict | None = None,
                platform: str | None = None, dockerfile: str | None = None,
                exclude: tuple[str, ...] = ()) -> str:
    """`ct-` and 20 hex digits of the hash of what Docker would build. See the module's docstring."""
    if isinstance(dockerfile_text, str):
        dockerfile_text = dockerfile_text.encode("utf-8")
    digest = hashlib.sha256(SCHEME + b"\n")

    def line(text: str) -> None:
        digest.update(text.encode("utf-8", "surrogateescape") + b"\n")

    line(f"dockerfile {hashlib.sha256(dockerfile_text).hexdigest()}")
    line(f"platform {platform or ''}")
    for name, value in sorted((build_args or {}).items()):
        line(f"arg {name}={build_arg_value(value)}")
    for relative in context_paths(context, dockerfile=dockerfile, exclude=exclude):
        entry = _entry(context, relative)
        if entry is not None:
            line(entry)
    return PREFIX + digest.hexdigest()[:HEX_DIGITS]
