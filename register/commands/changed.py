"""`flow-register changed --since REF MANIFEST...`: which manifests need a deploy, as a GitHub Actions matrix.

A manifest changed since REF when a file its deployments or its image are made of differs between REF
and the working tree: the manifest itself, each deployment's flow file and every repository file that
file imports (found by reading, as the flow checks do: register/flows/source.py), the image's content
inputs (what the content tag reads: register/image), and the requirements and package `code:` installs.
A manifest that cannot be read is named too: its deploy is where its mistakes are told.

git is called with argument lists only, `--end-of-options` before the ref and `--` before paths, and the
ref must be a name git would take from a person (no leading '-'), so no ref or path becomes an option.
"""

from __future__ import annotations

import os
import re
import subprocess
from dataclasses import dataclass
from pathlib import Path

from register.problems import Invalid, Problem, UsageError

# A push that creates a branch has no commit before it: GitHub's `before` is all zeros. Then everything is new.
NO_COMMIT = "0" * 40
# What a branch, tag, remote ref or commit looks like: no option, no whitespace, no control character.
REF = re.compile(r"[A-Za-z0-9_][A-Za-z0-9_./@{}~^+-]{0,255}")
GIT_TIMEOUT = 120


@dataclass
class Changed:
    manifest: str  # as given (relative to where the command runs), for the matrix job to pass back
    project: str
    why: list[str]  # the changed files (relative to the repository), or what could not be read


def _git(environ, folder: Path, *args: str) -> str:
    try:
        done = subprocess.run(["git", "-C", str(folder), *args], capture_output=True, text=True,
                              timeout=GIT_TIMEOUT, env={**environ, "GIT_TERMINAL_PROMPT": "0"})
    except FileNotFoundError:
        raise UsageError("changed needs git, which is not installed where flow-register runs (in the action: "
                         "runtime 'source' runs it on the runner, which has git)") from None
    except (OSError, subprocess.TimeoutExpired) as error:
        raise UsageError(f"git {args[0]} failed: {error}") from None
    if done.returncode != 0:
        raise UsageError(f"git {args[0]} failed: {' '.join(done.stderr.split())[:300]}")
    return done.stdout


def changed_files(folder: Path, since: str, environ, label: str = "--since") -> tuple[Path, set[Path]]:
    """The repository's top and the files (absolute) that differ between `since` and the working tree,
    deleted, renamed (both names) and untracked ones included. `environ`: the variables git runs with."""
    if not REF.fullmatch(since) or ".." in since:
        raise Invalid([Problem(label, 0, 0, f"'{since}' is not a git ref: give a branch, tag or commit such as "
                                            "origin/main, v1.2 or a commit id (no leading '-', no spaces)",
                               "input-since")])
    top = Path(_git(environ, folder, "rev-parse", "--show-toplevel").strip()).resolve()
    try:
        commit = _git(environ, top, "rev-parse", "--verify", "--quiet", "--end-of-options", f"{since}^{{commit}}").strip()
    except UsageError:
        raise Invalid([Problem(label, 0, 0, f"'{since}' names no commit of {top}; fetch it first "
                                            "(actions/checkout with fetch-depth: 0)", "input-since")]) from None
    names = _git(environ, top, "diff", "--name-only", "--no-renames", "-z", commit, "--").split("\0")
    names += _git(environ, top, "ls-files", "--others", "--exclude-standard", "-z", "--").split("\0")
    return top, {Path(os.path.normpath(top / name)) for name in names if name}


def inputs(manifest) -> tuple[set[Path], list[Path]]:
    """The files (absolute) a manifest's deployments and images are made of, and the build contexts (a file
    deleted from one changed the image, though it is no longer there to list)."""
    from register import image
    from register.flows.source import imported_files

    root = manifest.root.resolve()
    files = {manifest.path.resolve()}
    folders = [root, root / "src", manifest.repository]
    contexts = []
    for environment in manifest.environments:
        for d in manifest.deployments(environment):
            flow_file = (root / d.entrypoint.rpartition(":")[0]).resolve()
            try:
                files |= imported_files(manifest.repository, flow_file, folders)
            except (OSError, SyntaxError, ValueError):
                files.add(flow_file)  # what it imports cannot be read; its own edit still counts
            code = d.code or {}
            if isinstance(code.get("requirements"), str):
                files.add((root / code["requirements"]).resolve())
            if isinstance(code.get("install"), str):
                contexts.append((root / code["install"]).resolve())
        made_of = image.inputs(manifest, environment)
        if made_of:
            contexts.append(made_of[0])
            files |= {Path(os.path.normpath(f)) for f in made_of[1]}
    return files, contexts


def changed(paths: list[str], since: str, environ) -> list[Changed]:
    """The manifests among `paths` whose deployments or images changed since `since`, in the given order."""
    from register.manifest import load_manifest

    if not paths:
        return []
    if since == NO_COMMIT:
        return [Changed(path, _project(load_manifest(path, environ=environ, parameters=False), path),
                        ["no commit to compare with (a new branch): every project counts"]) for path in paths]
    top, differ = changed_files(Path(paths[0]).resolve().parent, since, environ)
    found = []
    for path in paths:
        manifest = load_manifest(path, environ=environ, parameters=False)
        project = _project(manifest, path)
        if manifest.errors():
            found.append(Changed(path, project, ["the manifest has mistakes: its deploy tells them"]))
            continue
        try:
            files, contexts = inputs(manifest)
        except Invalid:
            found.append(Changed(path, project, ["its image settings have mistakes: its deploy tells them"]))
            continue
        hit = {f for f in differ if f in files or (not f.exists() and any(f.is_relative_to(c) for c in contexts))}
        if hit:
            found.append(Changed(path, project, sorted(_shown(f, top) for f in hit)))
    return found


def _project(manifest, path: str) -> str:
    data = manifest.data
    return data["project"] if isinstance(data, dict) and isinstance(data.get("project"), str) \
        else Path(path).resolve().parent.name


def _shown(path: Path, top: Path) -> str:
    try:
        return path.relative_to(top).as_posix()
    except ValueError:
        return str(path)


def matrix(found: list[Changed]) -> dict:
    """The form `strategy.matrix: ${{ fromJSON(...) }}` takes; an empty `include` means nothing to deploy."""
    return {"include": [{"manifest": c.manifest, "project": c.project} for c in found]}
