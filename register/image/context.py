"""The build context: what Docker is sent, what must never be, and the content tag that hashes it.

What goes into the content tag: every path of the build context that Docker would send (the
`.dockerignore` applied with Docker's own matching rules, as docker-py implements them), with its
type, its executable bit and its bytes (or a symlink's target); the Dockerfile's text; the build
arguments; the platform. What stays out: timestamps, owners, other permission bits, where the
context lives on disk, the order anything was listed in, and `.git` (Docker sends it unless ignored,
but it changes with every commit whether or not the code did: hashing it would rebuild and
re-register on every push). So a fresh checkout of the same commit, on another machine, yields the
same tag, and a change that Docker would see yields another.

With `dockerfile: auto` flow-register decides the context itself (`image_paths`): the user's
`.dockerignore`, then never a credential file (`SECRETS`, which no `!pattern` brings back), nor
what the image does not need (`NOT_NEEDED`: the manifest, `.github/`, caches), so that editing the
manifest or a workflow leaves the tag, and every deployment's version, alone. A custom Dockerfile's
context is Docker's to send; `leaks` names the credential files in it, for a warning.

The base image is named by the Dockerfile's text, not by its digest: a moved upstream tag does not
change the content tag (`build: always` rebuilds on purpose).
"""

from __future__ import annotations

import fnmatch
import hashlib
import os
import stat
from pathlib import Path


SCHEME = b"flow-register content tag v1"
PREFIX = "ct-"
ALWAYS_EXCLUDED = ".git"
HEX_DIGITS = 20  # 80 bits: no collision in any one repository's history

# Files in which tools leave credentials, by name, at any depth of the context: a checkout's git config
# (actions/checkout writes the job's token there as an AUTHORIZATION extraheader), the key file
# google-github-actions/auth writes into the workspace, dotenv files, the per-user folders of Docker, AWS,
# gcloud, Azure, kubectl and ssh, private keys and certificates with keys, and the token files of netrc,
# npm, PyPI uploads, git's credential store and Terraform state (which holds every secret in clear).
# Each is a component pattern (fnmatch, on one path component) or a sequence of them (a file inside a
# folder of that name); a match takes the whole subtree with it.
SECRETS: tuple[tuple[str, ...], ...] = (
    (".git",), ("gha-creds-*.json",), (".env",), (".env.*",), (".envrc",),
    (".docker", "config.json"), (".aws",), (".config", "gcloud"), ("application_default_credentials.json",),
    (".azure",), (".kube",), ("kubeconfig",), ("*.kubeconfig",), (".ssh",),
    ("id_rsa*",), ("id_dsa*",), ("id_ecdsa*",), ("id_ed25519*",), ("*.pem",), ("*.p12",), ("*.pfx",),
    (".netrc",), ("_netrc",), (".npmrc",), (".pypirc",), (".git-credentials",),
    ("*.tfstate",), ("*.tfstate.*",), (".terraform",), (".flow-register",),
)
# What an image of flows does not need, and what changes without its code changing: the manifest (added by
# the caller, by its path), the repository's CI and git settings, Docker's own ignore file, local
# environments and caches.
NOT_NEEDED: tuple[tuple[str, ...], ...] = (
    (".github",), (".gitignore",), (".gitattributes",), (".gitmodules",), (".dockerignore",),
    (".venv",), ("__pycache__",), ("*.pyc",), (".pytest_cache",), (".mypy_cache",), (".ruff_cache",),
)


def _match(relative: str, patterns: tuple[tuple[str, ...], ...]) -> str | None:
    """The `.dockerignore` line that leaves `relative` out, when one of `patterns` matches it."""
    parts = relative.split("/")
    for pattern in patterns:
        for start in range(len(parts) - len(pattern) + 1):
            if all(fnmatch.fnmatchcase(parts[start + i], p) for i, p in enumerate(pattern)):
                line = "/".join(pattern)
                return line if start == 0 else f"**/{line}"
    return None


def sends_git(context: Path) -> bool:
    """Whether Docker sends the context's `.git` (left out of `context_paths`, which hash the code only)."""
    from docker.utils.build import PatternMatcher

    return (context / ".git").exists() and not PatternMatcher(dockerignore_patterns(context)).matches(".git")


def leaks(paths: list[str]) -> dict[str, list[str]]:
    """Of the paths a build context sends, the credential files: `.dockerignore` line -> the paths it leaves
    out (their top folder once, not every file under it)."""
    return _grouped(paths, lambda relative: _match(relative, SECRETS))


def not_needed(paths: list[str], extra: tuple[str, ...] = ()) -> dict[str, list[str]]:
    """Of the paths a custom Dockerfile's context sends, those that change without the code changing (the
    manifest, `extra`; `.github/`), as `leaks`: each moves the content tag and every deployment's version."""
    return _grouped(paths, lambda relative: relative if relative in extra else _match(relative, ((".github",),)))


def _grouped(paths: list[str], line_of) -> dict[str, list[str]]:
    """The paths `line_of` gives a .dockerignore line for, by that line: a folder once, not every file in it."""
    found: dict[str, list[str]] = {}
    for relative in paths:
        line = line_of(relative)
        if line is None:
            continue
        shown = found.setdefault(line, [])
        if not any(relative.startswith(f"{p}/") for p in shown):
            shown.append(relative)
    return found


def image_paths(context: Path, *, leave_out: tuple[str, ...] = ()) -> list[str]:
    """What `dockerfile: auto` sends: the paths Docker would, without credentials and what the image does
    not need; `leave_out`: paths relative to the context (the manifest)."""
    return [p for p in context_paths(context) if p not in leave_out
            and not any(p.startswith(f"{o}/") for o in leave_out)
            and _match(p, SECRETS) is None and _match(p, NOT_NEEDED) is None]


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
                exclude: tuple[str, ...] = (), paths: list[str] | None = None) -> str:
    """`ct-` and 20 hex digits of the hash of what Docker would build. See the module's docstring.
    `paths`: the context's paths when the caller decided them (`image_paths`), else Docker's."""
    if isinstance(dockerfile_text, str):
        dockerfile_text = dockerfile_text.encode("utf-8")
    digest = hashlib.sha256(SCHEME + b"\n")

    def line(text: str) -> None:
        digest.update(text.encode("utf-8", "surrogateescape") + b"\n")

    line(f"dockerfile {hashlib.sha256(dockerfile_text).hexdigest()}")
    line(f"platform {platform or ''}")
    for name, value in sorted((build_args or {}).items()):
        line(f"arg {name}={build_arg_value(value)}")
    if paths is None:
        paths = context_paths(context, dockerfile=dockerfile, exclude=exclude)
    for relative in paths:
        entry = _entry(context, relative)
        if entry is not None:
            line(entry)
    return PREFIX + digest.hexdigest()[:HEX_DIGITS]


def copy_context(context: Path, paths: list[str], target: Path) -> None:
    """Lay `paths` of `context` out in the new, private folder `target`: the context `dockerfile: auto` builds
    from, so that Docker is sent exactly these and nothing a `.dockerignore` could bring back. Nothing is
    followed: a symlink is copied as the link it is (as Docker would send it), a file is read only when it
    is a regular file at the moment it is opened."""
    inside = target.resolve()
    for relative in paths:
        source, copy = context / relative, target / relative
        copy.parent.mkdir(parents=True, exist_ok=True)
        if copy.parent.resolve() != inside / Path(relative).parent:  # through a link copied before it: never
            raise OSError(f"{relative}: a folder above it is a symbolic link")
        info = source.lstat()
        if stat.S_ISLNK(info.st_mode):
            os.symlink(os.readlink(source), copy)
        elif stat.S_ISDIR(info.st_mode):
            copy.mkdir(mode=0o755, exist_ok=True)
        elif stat.S_ISREG(info.st_mode):
            fd = os.open(source, os.O_RDONLY | os.O_NOFOLLOW)
            with os.fdopen(fd, "rb") as reader, open(copy, "xb") as writer:
                while chunk := reader.read(1 << 20):
                    writer.write(chunk)
            os.chmod(copy, 0o755 if info.st_mode & 0o111 else 0o644)
