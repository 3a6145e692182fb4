"""The image stage: content tag -> in the registry already? -> build -> push -> digest.

    image = prepare(manifest, "dev", build="auto", push=True, image_tag=None, dry_run=False)
    image.reference     # repository@sha256:...: what every deployment runs (job variable `image`)
    image.content_tag   # ct-...: the deployments' default version

One image for all of an environment's deployments. Its content tag hashes what Docker would build
(see `context.py`); when the registry already has that tag, nothing is built or pushed and the
deployments keep the digest they had, so an unchanged repository registers nothing new.

Errors: `Invalid` (exit 1) for what the user must fix in the manifest or inputs, always raised
before anything is written; `ImageError` when Docker or the registry fails on the way (no
deployment has been written yet either). Neither message ever holds a secret.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

from register.image import dockerfile as generated
from register.image import docker, registries
from register.image.context import content_tag
from register.problems import Invalid, Problem, one_of
from register.report import github

BUILD_MODES = ("auto", "always", "never")


@dataclass
class Image:
    reference: str | None = None  # what deployments run: repository@sha256:... (or repository:tag in a dry run)
    content_tag: str | None = None  # hash of what goes into the image; the deployments' default version
    built: bool = False
    pushed: bool = False
    repository: str | None = None
    digest: str | None = None  # sha256:... as the registry serves it; None when not in the registry
    exists: bool = False  # the registry had the content tag before this run (so: no build, no push)
    tags: list[str] = field(default_factory=list)  # the tags this run pushed or added
    dockerfile: str | None = None  # the generated Dockerfile (dockerfile: auto), for the user to read
    builder: str | None = None  # buildx | classic, when built
    notes: list[str] = field(default_factory=list)  # what happened, one line each, as logged


class ImageError(Exception):
    """Docker or the registry failed. Nothing has been registered. The message holds no secret."""


@dataclass
class _Spec:
    repository: registries.Repository
    context: Path
    dockerfile: Path | None  # None: dockerfile: auto
    workdir: str
    build_args: dict
    platform: str | None
    base: str | None
    create_repository: bool


def _say(image: Image, text: str) -> None:
    image.notes.append(text)
    print(f"image: {text}", file=sys.stderr, flush=True)


def _problem(manifest, environment: str, key: str, message: str, rule: str) -> Problem:
    return manifest.source.problem(manifest.image_origin(environment, key), message, rule)


def _spec(manifest, environment: str, settings: dict) -> _Spec:
    problems = []
    try:
        repository = registries.Repository.parse(settings["repository"])
    except ValueError as error:
        problems.append(_problem(manifest, environment, "repository", str(error), "image-repository"))
        repository = None
    context = (manifest.root / settings["context"]).resolve()
    if not context.is_dir():
        problems.append(_problem(manifest, environment, "context",
                                 f"the build context '{settings['context']}' is not a folder "
                                 f"(looked for {context})", "image-context"))
    dockerfile = None
    if settings["dockerfile"] != "auto":
        dockerfile = (manifest.root / settings["dockerfile"]).resolve()
        if not dockerfile.is_file():
            problems.append(_problem(manifest, environment, "dockerfile",
                                     f"the Dockerfile '{settings['dockerfile']}' does not exist (looked for "
                                     f"{dockerfile}); give its path relative to the manifest, or 'auto'",
                                     "image-dockerfile"))
    if problems:
        raise Invalid(problems)
    return _Spec(repository=repository, context=context, dockerfile=dockerfile, workdir=settings["workdir"],
                 build_args=dict(settings.get("build_args") or {}), platform=settings.get("platform"),
                 base=settings.get("base"), create_repository=bool(settings.get("create_repository")))


def _inside(path: Path, folder: Path) -> str | None:
    try:
        return path.relative_to(folder).as_posix()
    except ValueError:
        return None


def _git_sha(context: Path, image: Image) -> str | None:
    """The commit the image is built from: GITHUB_SHA in CI; locally HEAD, if the context is committed."""
    sha = os.environ.get("GITHUB_SHA", "")
    if re.fullmatch(r"[0-9a-f]{40}", sha):
        return sha
    try:
        head = subprocess.run(["git", "-C", str(context), "rev-parse", "HEAD"], capture_output=True, text=True,
                              timeout=30)
        if head.returncode != 0:
            return None
        dirty = subprocess.run(["git", "-C", str(context), "status", "--porcelain", "--", "."],
                               capture_output=True, text=True, timeout=60)
    except (OSError, subprocess.TimeoutExpired):
        return None
    if dirty.returncode != 0 or dirty.stdout.strip():
        _say(image, "not tagging the git commit: the build context has uncommitted changes")
        return None
    return head.stdout.strip()


def _content(manifest, spec: _Spec) -> tuple[str | bytes, str]:
    """The Dockerfile's text (generated for `auto`) and the content tag."""
    if spec.dockerfile is None:
        text = generated.generate(spec.context, base=spec.base, workdir=spec.workdir, project=manifest.project)
        generated_dir = _inside(manifest.root.resolve() / generated.GENERATED_DIR, spec.context)
        inside, exclude = None, ((generated_dir,) if generated_dir else ())
    else:
        text = spec.dockerfile.read_bytes()
        inside, exclude = _inside(spec.dockerfile, spec.context), ()
    tag = content_tag(spec.context, text, build_args=spec.build_args, platform=spec.platform,
                      dockerfile=inside, exclude=exclude)
    return text, tag


def offline(manifest, environment: str) -> Image | None:
    """The content tag and `repository:tag`, from the files alone: no registry, no Docker (e.g. `render`)."""
    settings = manifest.image(environment)
    if settings is None:
        return None
    spec = _spec(manifest, environment, settings)
    _, tag = _content(manifest, spec)
    return Image(reference=spec.repository.tagged(tag), content_tag=tag, repository=spec.repository.text)


def prepare(manifest, environment: str, *, build: str = "auto", push: bool = True, image_tag: str | None = None,
            dry_run: bool = False) -> Image:
    """The image for `environment`'s deployments; Image() when the manifest has no image."""
    settings = manifest.image(environment)
    if settings is None:
        return Image()
    if build not in BUILD_MODES:
        raise Invalid([Problem("build", 0, 0, f"build must be {one_of(BUILD_MODES)}, not '{build}'", "input-build")])
    if image_tag is not None and not re.fullmatch(r"[A-Za-z0-9_][A-Za-z0-9_.-]{0,127}", image_tag):
        raise Invalid([Problem("image-tag", 0, 0, f"'{image_tag}' is not a Docker tag: up to 128 letters, digits, "
                                                  "'_', '.' and '-', not starting with '.' or '-'", "input-image-tag")])
    spec = _spec(manifest, environment, settings)
    repository = spec.repository
    dockerfile_text, tag = _content(manifest, spec)
    image = Image(content_tag=tag, repository=repository.text)
    registry = registries.for_repository(repository)

    try:
        with github.group(f"Image {repository.tagged(tag)}"):
            return _prepare(image, spec, registry, manifest, environment, dockerfile_text, build=build, push=push,
                            image_tag=image_tag, dry_run=dry_run)
    except (registries.RegistryError, docker.DockerError) as error:
        raise ImageError(str(error)) from None


def _prepare(image: Image, spec: _Spec, registry: registries.Registry, manifest, environment: str,
             dockerfile_text, *, build: str, push: bool, image_tag: str | None, dry_run: bool) -> Image:
    repository, tag = spec.repository, image.content_tag
    started = time.monotonic()
    try:
        digest = registry.digest(tag)
    except registries.RegistryError as error:
        if not dry_run:
            raise
        # A plan must not need the registry: a pull request's job often has no credentials for it.
        image.reference = repository.tagged(tag)
        _say(image, f"dry run: could not look {repository.tagged(tag)} up ({error}); the plan assumes it is not "
                    f"there, so deploy would build{' and push' if push else ''} it")
        return image
    image.exists = digest is not None
    image.digest = digest
    looked = f"{time.monotonic() - started:.2f} s"

    if dry_run:
        image.reference = repository.pinned(digest) if digest else repository.tagged(tag)
        if digest and build != "always":
            _say(image, f"{repository.tagged(tag)} is in the registry ({digest}, looked up in {looked}): "
                        "no build, no push")
        elif build == "never":
            raise Invalid([_problem(manifest, environment, "repository",
                                    f"{repository.tagged(tag)} is not in the registry and build is 'never'",
                                    "image-missing")])
        else:
            if push and not registry.repository_exists():
                _say(image, f"dry run: the repository {repository.path} does not exist"
                            + ("; it would be created" if spec.create_repository else
                               " and image.create_repository is not set: deploy would fail"))
            _say(image, f"dry run: would build{' and push' if push else ''} {repository.tagged(tag)}"
                        + (" (build: always)" if digest else f" (not in the registry, looked up in {looked})"))
        return image

    if digest and build != "always":
        image.reference = repository.pinned(digest)
        _say(image, f"{repository.tagged(tag)} is in the registry ({digest}, looked up in {looked}): "
                    "no build, no push")
        if image_tag and push and registry.digest(image_tag) != digest:
            registry.add_tag(digest, image_tag)
            image.tags.append(image_tag)
            _say(image, f"tagged {digest} as {repository.tagged(image_tag)} in the registry (no build, no push)")
        return image
    if build == "never":
        raise Invalid([_problem(manifest, environment, "repository",
                                f"{repository.tagged(tag)} is not in the registry and build is 'never': build it "
                                "here (build: auto), or push that tag first", "image-missing")])

    problem = docker.daemon_answers()
    if problem:
        raise ImageError(f"cannot build {repository.tagged(tag)}: the Docker engine does not answer: {problem}")
    if push and not registry.repository_exists():
        if not spec.create_repository:
            raise Invalid([_problem(manifest, environment, "repository",
                                    f"the ECR repository '{repository.path}' does not exist in account "
                                    f"{getattr(registry, 'account', '?')} ({getattr(registry, 'region', '?')}): "
                                    "create it, or set image.create_repository: true", "image-repository-missing")])
        registry.create_repository()
        _say(image, f"created the ECR repository {repository.path}")
    credentials = registry.credentials()
    if credentials:
        docker.login(registry.login_server, credentials.username, credentials.password)
        _say(image, f"logged Docker in to {registry.login_server} as {credentials.username} "
                    f"(credentials from {credentials.source})")

    if spec.dockerfile is None:
        path = generated.write(manifest.root.resolve(), dockerfile_text)
        image.dockerfile = str(path)
        _say(image, f"dockerfile: auto: generated {path}")
        dockerfile = path
    else:
        dockerfile = spec.dockerfile

    tags = [tag]
    sha = _git_sha(spec.context, image)
    if sha:
        tags.append(sha)
    if image_tag and image_tag not in tags:
        tags.append(image_tag)
    references = [repository.tagged(t) for t in tags]
    request = docker.Build(context=str(spec.context), dockerfile=str(dockerfile), tags=references,
                           build_args=spec.build_args, platform=spec.platform,
                           labels={"flow-register.content-tag": tag, "flow-register.project": manifest.project},
                           cache_scope=f"flow-register-{repository.path.replace('/', '-')}")

    if docker.has_buildx():
        image.builder = "buildx"
        cache, why_not = docker.gha_cache_available()
        if not cache and os.environ.get("GITHUB_ACTIONS") == "true":
            _say(image, f"building without the GitHub Actions cache: {why_not}")
        started = time.monotonic()
        docker.build_buildx(request, push=push, gha_cache=cache)
        image.built = True
        image.pushed = push
        _say(image, f"built{' and pushed' if push else ''} {', '.join(references)} with buildx "
                    f"in {time.monotonic() - started:.1f} s")
    else:
        image.builder = "classic"
        if build != "always" and docker.image_exists(repository.tagged(tag)):
            _say(image, f"{repository.tagged(tag)} is already built in the local engine: not building it again")
            for reference in references[1:]:
                docker.tag(repository.tagged(tag), reference)
        else:
            started = time.monotonic()
            docker.build_classic(request)
            image.built = True
            _say(image, f"built {', '.join(references)} with the classic builder in {time.monotonic() - started:.1f} s")
        if push:
            started = time.monotonic()
            for reference in references:
                docker.push(reference)
            image.pushed = True
            _say(image, f"pushed {', '.join(references)} in {time.monotonic() - started:.1f} s")

    if not push:
        image.reference = repository.tagged(tag)
        _say(image, f"not pushed (push: false): deployments run {image.reference}, which only this engine has")
        return image
    digest = registry.digest(tag)
    if not digest:
        raise ImageError(f"pushed {repository.tagged(tag)}, but the registry does not list it")
    image.digest = digest
    image.tags = tags
    image.reference = repository.pinned(digest)
    _say(image, f"deployments run {image.reference}")
    return image
