"""Where a run gets its code: the image's workdir or a git clone.

Without `code:`, a run starts in the image's workdir, where the image stage copied the flow code. With

    code:
      git:
        repository: https://github.com/acme/flows.git
        ref: main                                      # default: the commit being deployed
        credentials: {block: github-credentials/acme}  # or {block: secret/token-name}, or {token_env: VAR}
      requirements: requirements.txt                   # relative to the manifest; pip-installed before the run
      install: .                                       # the project itself (pyproject.toml), pip-installed next
      directory: flows                                 # default: the manifest's folder in the repository

a run clones the repository first, with or without an image. `code: {directory: /opt/flows}` alone says
where the code is in a prebuilt image. The pull steps are the ones `prefect deploy`
registers for the same prefect.yaml: `git_clone`, `pip_install_requirements`, `run_shell_script: pip install .`,
`set_working_directory`.

With `code: {s3: {bucket, folder, credentials: {block: aws-credentials/NAME}}}` (or `gcs:` with a
gcp-credentials block) the deploy uploads the flow files (the set `dockerfile: auto` would copy into an
image) under `FOLDER/ct-HASH/`, named by their content, and each run pulls them with the step prefect-aws
(`pull_from_s3`) or prefect-gcp (`pull_from_gcs`) provides (register/code/upload.py does the upload).
Credentials are only ever named (a Prefect block, or a variable of the run's environment that Prefect
reads when the run starts); a secret written into the manifest is refused.
"""

from __future__ import annotations

import posixpath
import re
import subprocess
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

from register.problems import Invalid

STEPS = "prefect.deployments.steps."
CLONE_ID = "clone-step"  # the id Prefect's own docs give the git_clone step
_FULL_SHA = re.compile(r"^[0-9a-f]{40}([0-9a-f]{24})?$")
# Tokens people paste by mistake: GitHub (classic, fine-grained, app), GitLab, Bitbucket app passwords
TOKEN_LIKE = re.compile(r"^(gh[pousr]_|github_pat_|glpat-|ATBB)[A-Za-z0-9_-]{8,}")


@dataclass(frozen=True)
class Checkout:
    """The commit being deployed and where the manifest sits in its repository."""

    commit: str | None = None
    folder: str = ""  # the manifest's folder, relative to the repository's top ('' at the top)
    branch: str | None = None
    remote: str | None = None  # origin's URL, without any credentials in it


def checkout(root: Path, github_sha: str | None = None, environ: Mapping[str, str] | None = None) -> Checkout:
    """GITHUB_SHA when running in Actions (the commit the workflow runs for), else the checkout's HEAD.
    `environ`: the variables git runs with (the run's settings; the offline checks give none: git inherits)."""
    env = dict(environ) if environ is not None else None
    try:
        out = subprocess.run(["git", "-C", str(root), "rev-parse", "HEAD", "--show-prefix", "--abbrev-ref", "HEAD"],
                             capture_output=True, text=True, check=True, env=env).stdout.splitlines()
        remote = subprocess.run(["git", "-C", str(root), "config", "--get", "remote.origin.url"],
                                capture_output=True, text=True, env=env).stdout.strip()
    except (OSError, subprocess.CalledProcessError):
        return Checkout(commit=github_sha)
    head, prefix, branch = (out + ["", "", ""])[:3]
    parts = urlsplit(remote)
    if parts.netloc:  # https://user:token@host/x.git: the credentials stay out of what is registered
        remote = urlunsplit(parts._replace(netloc=parts.netloc.rpartition("@")[2]))
    return Checkout(commit=github_sha or head or None, folder=prefix.rstrip("/"),
                    branch=branch if branch and branch != "HEAD" else None, remote=remote or None)


def credentials_step_inputs(credentials: dict | None) -> dict:
    """git_clone's inputs for the named credentials: templates that Prefect resolves when the run starts."""
    if not credentials:
        return {}
    if "token_env" in credentials:
        return {"access_token": "{{ $" + credentials["token_env"] + " }}"}
    block_type, name = credentials["block"].split("/", 1)
    template = "{{ prefect.blocks." + block_type + "." + name + " }}"
    # A Secret block holds a bare token (what `prefect deploy` stores for a private repository);
    # GitHub/GitLab/Bitbucket credentials blocks go in `credentials`.
    return {"access_token": template} if block_type == "secret" else {"credentials": template}


@dataclass(frozen=True)
class Storage:
    """An object storage form of `code`: one kind of `STORAGE`, a bucket, a folder and a credentials block."""

    kind: str  # a key of STORAGE
    bucket: str
    folder: str  # '' for the bucket's top
    block: str  # TYPE/NAME

    @property
    def key(self) -> tuple[str, str, str]:
        return self.kind, self.bucket, self.folder

    def url(self, prefix: str = "") -> str:
        path = "/".join(p for p in (self.folder, prefix) if p)
        return f"{STORAGE[self.kind].scheme}://{self.bucket}/{path}" + ("/" if path else "")


@dataclass(frozen=True)
class StorageKind:
    """What one `code:` storage form takes and registers; every storage form is one entry of STORAGE."""

    scheme: str
    step: str  # the pull step of the integration that provides it
    requires: str  # the package Prefect installs for the step when the run's environment lacks it
    blocks: tuple[str, ...]  # credentials block types the step accepts
    bucket: re.Pattern
    bucket_rules: str


STORAGE = {
    "s3": StorageKind("s3", "prefect_aws.deployments.steps.pull_from_s3", "prefect-aws",
                      ("aws-credentials", "minio-credentials"),
                      re.compile(r"^(?!xn--|sthree-|.*-s3alias$|.*--ol-s3$|\d+\.\d+\.\d+\.\d+$)"
                                 r"[a-z0-9](?:[a-z0-9-]|\.(?!\.))*[a-z0-9]$"),
                      "3 to 63 lowercase letters, digits, '-' and '.', starting and ending with a letter or digit"),
    "gcs": StorageKind("gs", "prefect_gcp.deployments.steps.pull_from_gcs", "prefect-gcp", ("gcp-credentials",),
                       re.compile(r"^(?!goog|.*google|\d+\.\d+\.\d+\.\d+$)[a-z0-9][a-z0-9._-]*[a-z0-9]$"),
                       "3 to 63 lowercase letters, digits, '-', '_' and '.', starting and ending with a letter or "
                       "digit, without 'goog' at the start or 'google' in it"),
}
PULL_ID = "pull-code"  # the pull step's id, when a later step installs from what it pulled


def storage(code: dict | None) -> Storage | None:
    """The resolved `code`'s object storage form, or None (git, or the image)."""
    for kind in STORAGE:
        spec = (code or {}).get(kind)
        if isinstance(spec, dict) and spec.get("bucket"):
            return Storage(kind, spec["bucket"], (spec.get("folder") or "").strip("/"),
                           ((spec.get("credentials") or {}).get("block")) or "")
    return None


def _block_template(slug: str) -> str:
    block_type, name = slug.split("/", 1)
    return "{{ prefect.blocks." + block_type + "." + name + " }}"


def _storage_steps(code: dict, where: Storage, prefix: str, at: Checkout) -> list[dict]:
    """Pull the uploaded files into the run's working directory (where entrypoints resolve: the files are
    laid out as in the manifest's folder), then install what `code` asks for from there."""
    kind = STORAGE[where.kind]
    pull = {"requires": kind.requires, "bucket": where.bucket,
            "folder": "/".join(p for p in (where.folder, prefix) if p) + "/",
            "credentials": _block_template(where.block)}
    steps = [{kind.step: pull}]
    pulled = "{{ " + PULL_ID + ".directory }}"
    if code.get("requirements"):
        steps.append({STEPS + "pip_install_requirements": {"directory": pulled,
                                                           "requirements_file": posixpath.normpath(code["requirements"])}})
    if code.get("install"):
        project = posixpath.normpath(code["install"])
        steps.append({STEPS + "run_shell_script": {"directory": pulled if project == "." else f"{pulled}/{project}",
                                                   "script": "pip install ."}})
    if len(steps) > 1:
        steps[0] = {kind.step: {"id": PULL_ID, **pull}}
    return steps


def pull_steps(manifest, d, image: dict | None, at: Checkout, uploads: dict | None = None) -> list[dict] | None:
    """Deployment `d`'s pull steps: a clone when its resolved `code` says so, a pull from object storage
    (`uploads`: Storage.key -> the content prefix the upload stage gave it), else the image's workdir."""
    code = d.code
    if (where := storage(code)) is not None:
        return _storage_steps(code, where, (uploads or {})[where.key], at)
    if not code or not code.get("git"):  # the code is in the image: ours, or a prebuilt one's `directory`
        workdir = (code or {}).get("directory") or (image or {}).get("workdir")
        return [{STEPS + "set_working_directory": {"directory": workdir}}] if workdir else None
    git = code["git"]
    clone: dict = {"repository": git["repository"]}
    ref = git.get("ref")
    if ref is None:
        if not at.commit:
            raise Invalid([manifest.source.problem(
                d.origin("code", "git"), "code.git has no ref and the manifest's folder is not a git checkout, so "
                "there is no commit to deploy; set ref (a branch, tag or commit) or deploy from a checkout",
                "code-commit")])
        clone["commit_sha"] = at.commit
    elif _FULL_SHA.match(ref):
        clone["commit_sha"] = ref
    else:
        clone["branch"] = ref
    clone.update(credentials_step_inputs(git.get("credentials")))
    steps = [{STEPS + "git_clone": clone}]  # given its id below when a later step needs its folder
    cloned = "{{ " + CLONE_ID + ".directory }}"
    if code.get("requirements"):
        requirements = posixpath.normpath(posixpath.join(at.folder, code["requirements"]))
        steps.append({STEPS + "pip_install_requirements": {"directory": cloned, "requirements_file": requirements}})
    if code.get("install"):  # the project itself, e.g. a package the flows import (`pip install .`)
        project = posixpath.normpath(posixpath.join(at.folder, code["install"]))
        steps.append({STEPS + "run_shell_script": {"directory": cloned if project == "." else f"{cloned}/{project}",
                                                   "script": "pip install ."}})
    folder = code.get("directory", at.folder)
    folder = posixpath.normpath(folder) if folder else "."
    if folder != ".":  # after pip: its `directory` is relative to where the clone was made
        steps.append({STEPS + "set_working_directory": {"directory": f"{cloned}/{folder}"}})
    if len(steps) > 1:
        steps[0] = {STEPS + "git_clone": {"id": CLONE_ID, **clone}}
    return steps


def ref_commit(root: Path, repository: str, ref: str, environ: Mapping[str, str]) -> str | None:
    """The commit a branch or tag of `repository` points at now, or None when it cannot be told: asked of the
    repository (`git ls-remote`, outside the checkout, so with none of its credentials, and never prompting),
    else this checkout's own record of it when `repository` is this checkout's. `environ`: the variables git
    runs with (the run's settings)."""
    if repository_problem(repository):
        return None
    env = {**environ, "GIT_TERMINAL_PROMPT": "0", "GIT_SSH_COMMAND": "ssh -o BatchMode=yes"}
    try:
        listed = subprocess.run(["git", "-c", "credential.helper=", "ls-remote", "--", repository,
                                 f"refs/heads/{ref}", f"refs/tags/{ref}", f"refs/tags/{ref}^{{}}"],
                                capture_output=True, text=True, timeout=20, cwd="/", env=env,
                                stdin=subprocess.DEVNULL)
        found = dict(reversed(line.split("\t", 1)) for line in listed.stdout.splitlines() if "\t" in line)
        # an annotated tag's commit is its peeled line
        for name in (f"refs/tags/{ref}^{{}}", f"refs/heads/{ref}", f"refs/tags/{ref}"):
            if _FULL_SHA.match(found.get(name, "")):
                return found[name]
    except (OSError, subprocess.TimeoutExpired):
        pass
    if _identity(repository) is None or _identity(repository) != _identity(checkout(root, environ=environ).remote):
        return None
    for name in (f"refs/remotes/origin/{ref}", f"refs/tags/{ref}"):
        local = subprocess.run(["git", "-C", str(root), "rev-parse", "--verify", "-q", f"{name}^{{commit}}"],
                               capture_output=True, text=True, env=dict(environ))
        if local.returncode == 0 and _FULL_SHA.match(local.stdout.strip()):
            return local.stdout.strip()
    return None


def _layers(data: dict):
    """Every `code` setting as written: (its path, its value)."""
    yield ("defaults", "code"), (data.get("defaults") or {}).get("code")
    for env, spec in (data.get("environments") or {}).items():
        yield ("environments", env, "code"), (spec or {}).get("code") if isinstance(spec, dict) else None
    for i, entry in enumerate(data.get("deployments") or []):
        if isinstance(entry, dict):
            yield ("deployments", i, "code"), entry.get("code")
            for env, spec in (entry.get("environments") or {}).items():
                yield ("deployments", i, "environments", env, "code"), (spec or {}).get("code") \
                    if isinstance(spec, dict) else None


_HOST = r"[A-Za-z0-9](?:[A-Za-z0-9.-]*[A-Za-z0-9])?"
# git@github.com:acme/flows.git: git's scp-like ssh form, with a user (without one, `host:path` reads like a
# transport helper `helper::address`, and git runs helpers).
_SCP_LIKE = re.compile(rf"^(?P<user>[A-Za-z0-9._-]+)@(?P<host>{_HOST}):(?P<path>[^:/-][^:]*)$")
_LOOPBACK = ("localhost", "127.0.0.1", "::1")
REPOSITORY_FORMS = "https://HOST/OWNER/REPO.git, ssh://git@HOST/OWNER/REPO.git or git@HOST:OWNER/REPO.git"


def repository_problem(url: str) -> tuple[str, str] | None:
    """Why `url` is not a repository a run may clone, as (message, rule), or None. Only https and ssh:
    every other form git takes can run a command (`ext::`, `--upload-pack=`, other transport helpers),
    read the worker's own files (`file://`, a path), or send a token in clear (`http://`, `git://`, except to
    a server on the worker's own loopback address).
    The message never repeats the URL: it may hold a secret."""
    refused = f"write {REPOSITORY_FORMS}"
    if url.startswith("-"):
        return f"the repository URL starts with '-', which git reads as an option; {refused}", "code-repository"
    if "::" in url.split("/", 1)[0]:
        return (f"the repository URL names a transport helper ('::'), a program git runs on the worker; {refused}",
                "code-repository")
    if any(not " " < c < "\x7f" for c in url):
        what = "a line break" if "\n" in url or "\r" in url else "a space, control or non-ASCII character"
        return f"the repository URL holds {what}; {refused} on one line (a host in its ASCII form)", "code-repository"
    scp = _SCP_LIKE.match(url)
    if scp is not None:
        return None
    parts = urlsplit(url)
    scheme = parts.scheme.lower() if "://" in url else ""
    host = parts.hostname or ""
    if scheme in ("http", "git") and host in _LOOPBACK and not parts.username:
        return None  # a server on the worker's own machine: nothing crosses a network in clear
    if scheme not in ("https", "ssh"):
        why = {"http": "plain http would send the token in clear",
               "git": "git:// is unauthenticated and unencrypted",
               "file": "file:// reads the worker's own files"}.get(scheme)
        if why is None:
            why = "a path reads the worker's own files" if not scheme else f"'{scheme}://' is neither"
        return f"the repository URL must be https or ssh ({why}); {refused}", "code-repository"
    if parts.password or (parts.username and (scheme == "https" or TOKEN_LIKE.match(parts.username))):
        return ("the repository URL holds a secret; never write one into the manifest: name a Prefect "
                "block (credentials: {block: github-credentials/NAME}) or a variable (credentials: "
                "{token_env: NAME})", "code-secret")
    if not re.fullmatch(_HOST, host) or parts.query or parts.fragment or parts.path.strip("/") == "":
        return f"the repository URL must name a host and a repository, without '?' or '#'; {refused}", "code-repository"
    return None


def _check_storage(report, path: tuple, code: dict) -> None:
    """Bucket names, folders and credentials blocks of the object storage forms, as written in one layer."""
    for name, kind in STORAGE.items():
        spec = code.get(name)
        if not isinstance(spec, dict):
            continue
        bucket = spec.get("bucket")
        if isinstance(bucket, str):
            if re.match(r"^[a-z0-9]+://", bucket, re.IGNORECASE) or "/" in bucket:
                report.at(path + (name, "bucket"), f"'{bucket[:80]}' is not a bucket name: write the bucket alone "
                          "(e.g. acme-flows) and the path inside it as folder", "code-bucket")
            elif not (3 <= len(bucket) <= 63 and kind.bucket.match(bucket)):
                report.at(path + (name, "bucket"), f"'{bucket[:80]}' is not a valid {name} bucket name: "
                          f"{kind.bucket_rules}", "code-bucket")
        folder = spec.get("folder")
        if isinstance(folder, str) and (folder.startswith("/") or any(
                part in ("", ".", "..") for part in folder.strip("/").split("/")) and folder.strip("/")):
            report.at(path + (name, "folder"), f"folder '{folder[:80]}' must be a path inside the bucket, "
                      "e.g. sales-etl or teams/sales-etl, without '.', '..' or empty parts", "code-folder")
        block = (spec.get("credentials") or {}).get("block") if isinstance(spec.get("credentials"), dict) else None
        if isinstance(block, str) and "/" in block and block.split("/", 1)[0] not in kind.blocks:
            report.at(path + (name, "credentials", "block"),
                      f"{kind.step.rsplit('.', 1)[1]} takes credentials from a block of type "
                      f"{' or '.join(kind.blocks)}, not '{block.split('/', 1)[0]}'; write "
                      f"{{block: {kind.blocks[0]}/NAME}}", "code-credentials")


def check_secrets(report, data: dict) -> None:
    """A secret, or a repository that is not https or ssh, in any `code` setting as written, overridden or
    not (the schema refuses other shapes); bucket names and credentials blocks of object storage."""
    for path, code in _layers(data):
        if isinstance(code, dict):
            _check_storage(report, path, code)
        git = code.get("git") if isinstance(code, dict) else None
        if not isinstance(git, dict):
            continue
        repository = git.get("repository")
        if isinstance(repository, str) and (problem := repository_problem(repository)):
            report.at(path + ("git", "repository"), *problem)
        token_env = (git.get("credentials") or {}).get("token_env") if isinstance(git.get("credentials"), dict) \
            else None
        if isinstance(token_env, str) and TOKEN_LIKE.match(token_env):
            report.at(path + ("git", "credentials", "token_env"),
                      "token_env looks like a token itself; name the environment variable that holds it "
                      "(e.g. GITHUB_TOKEN), never the secret", "code-secret")


def _identity(url: str | None) -> tuple[str, str] | None:
    """(host, owner/repo) of an https or ssh repository URL, to tell whether two name one repository."""
    if not url:
        return None
    scp = _SCP_LIKE.match(url)
    host, path = (scp["host"], scp["path"]) if scp else (urlsplit(url).hostname, urlsplit(url).path)
    if not host or (not scp and urlsplit(url).scheme not in ("https", "ssh", "http", "git")):
        return None  # a local path or another form: no repository to compare with
    return host.lower(), path.strip("/").removesuffix(".git").lower()


def _check_resolved_storage(report, d) -> bool:
    """The resolved `code` of `d` names one place for its code, and storage names its credentials block.
    Whether `d` uses object storage."""
    kinds = [k for k in ("git", *STORAGE) if d.code.get(k)]
    if len(kinds) > 1:
        report.at(d.origin("code", kinds[1]), f"code of deployment '{d.manifest_name}' comes from "
                  f"{' and '.join(kinds)}; give one (set the others to null in this layer)", "code-source")
        return False
    if not kinds or kinds[0] == "git":
        return False
    spec, kind = d.code[kinds[0]], STORAGE[kinds[0]]
    if not spec.get("bucket"):
        report.at(d.origin("code", kinds[0]), f"deployment '{d.manifest_name}' uploads its code to no bucket: "
                  f"code.{kinds[0]} needs 'bucket'", "code-bucket")
    if not (spec.get("credentials") or {}).get("block"):
        report.at(d.origin("code", kinds[0]), f"code.{kinds[0]} names no credentials block: runs pull the code with "
                  f"a Prefect block, credentials: {{block: {kind.blocks[0]}/NAME}} (never a key in the manifest)",
                  "code-credentials")
    if d.code.get("directory"):
        report.at(d.origin("code", "directory"), f"code.directory has no meaning with code.{kinds[0]}: runs start "
                  "in the folder the files are pulled into, laid out as the manifest's folder", "code-directory")
    return True


def check(report, root: Path, d) -> None:
    """Offline checks of deployment `d`'s resolved `code`, reported where each value was written."""
    stored = _check_resolved_storage(report, d)
    git = d.code.get("git")
    repository = (git or {}).get("repository")
    if git is not None and repository and git.get("ref") is None and not repository_problem(repository):
        if "this repository" not in report.found:  # asked of git once per check
            report.found["this repository"] = _identity(checkout(root).remote)
        here, there = report.found["this repository"], _identity(repository)
        if here and there and here != there:
            # Without a ref the clone is pinned to the commit being deployed, which is this checkout's.
            report.at(d.origin("code", "git", "repository"),
                      f"code.git clones {'/'.join(there)}, not this checkout's repository ({'/'.join(here)}), and "
                      "has no ref: the commit being deployed is not there; set ref (a branch, a tag or a full "
                      "commit SHA of that repository)", "code-ref")
    if git is None and not stored and d.code.get("requirements"):
        report.at(d.origin("code", "requirements"), "code.requirements are installed into a git clone; without "
                                                    "code.git, install them in the image", "code-requirements")
    if git is not None and not git.get("repository"):
        report.at(d.origin("code", "git"), f"deployment '{d.manifest_name}' clones no repository: code.git needs "
                                           "'repository' (in this layer or one below it)", "code-repository")
    install = d.code.get("install")
    if isinstance(install, str):
        if git is None and not stored:
            report.at(d.origin("code", "install"), "code.install installs the project into a git clone; without "
                                                   "code.git, install it in the image", "code-install")
        elif not any((root / install / f).is_file() for f in ("pyproject.toml", "setup.py")):
            report.at(d.origin("code", "install"), f"code.install '{install}' has no pyproject.toml or setup.py for "
                                                   "pip to install; give the project's folder relative to the manifest",
                      "code-install")
    requirements = d.code.get("requirements")
    if isinstance(requirements, str) and not (root / requirements).is_file():
        report.at(d.origin("code", "requirements"), f"requirements file '{requirements}' does not exist; give its "
                                                    "path relative to the manifest", "code-requirements")
