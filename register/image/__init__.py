"""The image stage: content tag -> in the registry already? -> build -> push -> digest.

    image = prepare(manifest, "dev", settings=settings, events=reporter, build="auto", push=True, dry_run=False)
    image.reference     # repository@sha256:...: what every deployment runs (job variable `image`)
    image.content_tag   # ct-...: the deployments' default version

One image for all of an environment's deployments. Its content tag hashes what Docker would build
(see `context.py`).

Who decides what an environment runs: whoever can register this project's deployments in it, that is
whoever holds the key of its Prefect server, never whoever can push to the image repository (a pull
request's preview job often can; the content tag is computed by anyone from the files). So with
`build: auto` an image found in the registry under the content tag is reused only when its digest is
one this environment's deployments already run (`recorded`, read from the server by deploy) or one
this process pushed itself; any other is built and pushed again, and the log says why.
`build: never` trusts the registry's tag as it is, and says so.

The stage prints nothing and knows nothing of the report layer: what happens is told as events to
`events` (`Events`: the report layer's reporter is one), and the variables it hands to Docker, git and
the registries come from the run's settings.

Errors: `Invalid` (exit 1) for what the user must fix in the manifest or inputs, always raised
before anything is written; `ImageError` when Docker or the registry fails on the way (no
deployment has been written yet either). Neither message ever holds a secret.
"""

from __future__ import annotations

import re
import subprocess
import tempfile
import time
from collections.abc import Callable, Iterable
from contextlib import AbstractContextManager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Protocol

from register.image import dockerfile as generated
from register.image import docker, registries
from register.image import context as build_context
from register.image.context import content_tag
from register.problems import Invalid, Problem, one_of
from register.settings import Settings

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
    why: str | None = None  # why the registry's image was reused, or why it was built anyway
    # image.repositories: work pool name -> the repository its deployments pull from (the default's otherwise)
    pools: dict[str, str] = field(default_factory=dict)
    # every repository the image is in -> its reference there (repository@sha256:...), the default's first
    references: dict[str, str] = field(default_factory=dict)

    def reference_for(self, pool: str | None) -> str | None:
        """What a deployment of work pool `pool` runs: its pool's repository's reference, else the default's."""
        repository = self.pools.get(pool) if pool else None
        return self.references.get(repository, self.reference) if repository else self.reference


# (repository, digest) of each image this process pushed: "the same run built it".
_PUSHED_HERE: set[tuple[str, str]] = set()


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
    pools: dict[str, registries.Repository] = field(default_factory=dict)  # image.repositories, parsed

    @property
    def others(self) -> list[registries.Repository]:
        """The repositories besides the default one the image is pushed to, once each, in the manifest's order."""
        seen, out = {self.repository.text}, []
        for repository in self.pools.values():
            if repository.text not in seen:
                seen.add(repository.text)
                out.append(repository)
        return out


class Events(Protocol):
    """What the image stage tells as it goes (register.report.reporters.Reporter is one)."""

    def phase(self, title: str) -> AbstractContextManager: ...  # a long step: the build, the push

    def note(self, text: str) -> None: ...  # one line of what happened

    def problems(self, problems: list[Problem]) -> None: ...  # warnings at the manifest's lines

    def secrets(self, secrets: list[str]) -> None: ...  # a registry password or token, before it is used

    def output(self, text: str) -> None: ...  # Docker's own output, as it comes


Say = Callable[[str], None]


class _Output:
    """Docker's output as a stream, handed to `events.output` line by line."""

    def __init__(self, events: Events):
        self.events = events

    def write(self, text: str) -> int:
        self.events.output(text)
        return len(text)

    def flush(self) -> None:
        pass


def _teller(image: Image, events: Events) -> Say:
    """What happened, kept in `image.notes` and told to `events` at once (a build takes minutes)."""
    def say(text: str) -> None:
        image.notes.append(text)
        events.note(f"image: {text}")
    return say


def secret_teller(events: Events) -> Callable[[str], None]:
    """The registries' `secret`: each value told to `events` as one secret."""
    return lambda value: events.secrets([value]) if value else None


def _problem(manifest, environment: str, key: str, message: str, rule: str, severity: str = "error") -> Problem:
    return manifest.source.problem(manifest.image_origin(environment, key), message, rule, severity=severity)


def value_problems(settings: dict) -> list[tuple[tuple, str]]:
    """(where under `image`, why) for each image setting whose text could add a line to a generated Dockerfile or an argument
    of its own to Docker: a control character anywhere, and `base`/`workdir` outside their grammar."""
    found = []
    for key in ("repository", "dockerfile", "context", "base", "workdir", "platform"):
        value = settings.get(key)
        if isinstance(value, str) and (char := generated.control_character(value)):
            found.append(((key,), f"image.{key} holds a control character ({char}); write it on one line, "
                               "without line breaks, tabs or NUL"))
        elif key in ("base", "workdir") and settings.get("dockerfile") == "auto" \
                and (why := generated.unsafe(key, value)):
            found.append(((key,), why))
    for name, value in (settings.get("build_args") or {}).items():
        if not re.fullmatch(r"[A-Za-z_][A-Za-z0-9_]*", str(name)):
            found.append((("build_args", name), f"build argument name {str(name)!r} must be letters, digits and '_', "
                                        "not starting with a digit"))
        elif isinstance(value, str) and (char := generated.control_character(value)):
            found.append((("build_args", name), f"build argument {name} holds a control character ({char}); give it "
                                        "on one line"))
    return found


def _spec(manifest, environment: str, settings: dict) -> _Spec:
    problems = [manifest.source.problem(manifest.image_origin(environment, where[0]) + where[1:], why, "image-value")
                for where, why in value_problems(settings)]
    if problems:
        raise Invalid(problems)  # before any of it is used as a path
    try:
        repository = registries.Repository.parse(settings["repository"])
    except ValueError as error:
        problems.append(_problem(manifest, environment, "repository", str(error), "image-repository"))
        repository = None
    pools = {}
    for pool, text in (settings.get("repositories") or {}).items():
        try:
            pools[pool] = registries.Repository.parse(text)
        except ValueError as error:
            problems.append(manifest.source.problem(manifest.image_origin(environment, "repositories") + (pool,),
                                                    f"image repository for work pool '{pool}': {error}",
                                                    "image-repository"))
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
                 base=settings.get("base"), create_repository=bool(settings.get("create_repository")),
                 pools=pools)


def _inside(path: Path, folder: Path) -> str | None:
    try:
        return path.relative_to(folder).as_posix()
    except ValueError:
        return None


def _git_sha(context: Path, settings: Settings, say: Say) -> str | None:
    """The commit the image is built from: GITHUB_SHA in CI; locally HEAD, if the context is committed."""
    sha = settings.github.sha or ""
    if re.fullmatch(r"[0-9a-f]{40}", sha):
        return sha
    env = settings.child_environment()
    try:
        head = subprocess.run(["git", "-C", str(context), "rev-parse", "HEAD"], capture_output=True, text=True,
                              timeout=30, env=env)
        if head.returncode != 0:
            return None
        dirty = subprocess.run(["git", "-C", str(context), "status", "--porcelain", "--", "."],
                               capture_output=True, text=True, timeout=60, env=env)
    except (OSError, subprocess.TimeoutExpired):
        return None
    if dirty.returncode != 0 or dirty.stdout.strip():
        say("not tagging the git commit: the build context has uncommitted changes")
        return None
    return head.stdout.strip()


@dataclass
class _Content:
    dockerfile: str | bytes  # its text (generated for `auto`)
    tag: str
    paths: list[str]  # what the context sends (for `auto`: exactly these, from a folder of their own)
    warnings: list[tuple[str, str]] = field(default_factory=list)  # (rule, text): what a custom context should leave out


def _lines(found: dict[str, list[str]]) -> tuple[str, str]:
    """The paths found, and the `.dockerignore` lines to add, one a line (the rule's name then on its own)."""
    shown = ", ".join(p for paths in found.values() for p in paths)
    return shown, "".join(f"\n    {line}" for line in found) + "\n   "


def _content(manifest, spec: _Spec) -> _Content:
    manifest_file = _inside(manifest.path.resolve(), spec.context) if getattr(manifest, "path", None) else None
    if spec.dockerfile is None:
        text = generated.generate(spec.context, base=spec.base, workdir=spec.workdir, project=manifest.project)
        paths = build_context.image_paths(spec.context, leave_out=(manifest_file,) if manifest_file else ())
        return _Content(text, content_tag(spec.context, text, build_args=spec.build_args, platform=spec.platform,
                                          paths=paths), paths)
    text = spec.dockerfile.read_bytes()
    paths = build_context.context_paths(spec.context, dockerfile=_inside(spec.dockerfile, spec.context))
    content = _Content(text, content_tag(spec.context, text, build_args=spec.build_args, platform=spec.platform,
                                         paths=paths), paths)
    leaked = build_context.leaks(([".git"] if build_context.sends_git(spec.context) else []) + paths)
    if leaked:
        shown, lines = _lines(leaked)
        content.warnings.append(("image-context-credentials",
            f"the build context {spec.context} sends credential files to Docker: {shown}; whatever the Dockerfile "
            f"copies ends up in the image for anyone who can pull it. Add to {spec.context / '.dockerignore'}:"
            f"{lines}"))
    extra = build_context.not_needed(paths, (manifest_file,) if manifest_file else ())
    if extra:
        shown, lines = _lines(extra)
        content.warnings.append(("image-context-not-needed",
            f"the build context sends {shown}, which the image does not need: editing them changes the content "
            f"tag, so every deployment's version moves and the image is built again. Add to "
            f"{spec.context / '.dockerignore'}:{lines}"))
    return content


def offline(manifest, environment: str) -> Image | None:
    """The content tag and `repository:tag`, from the files alone: no registry, no Docker (e.g. `render`)."""
    settings = manifest.image(environment)
    if settings is None:
        return None
    spec = _spec(manifest, environment, settings)
    content = _content(manifest, spec)
    return Image(reference=spec.repository.tagged(content.tag), content_tag=content.tag,
                 repository=spec.repository.text, pools={p: r.text for p, r in spec.pools.items()},
                 references={r.text: r.tagged(content.tag) for r in [spec.repository, *spec.others]})


def inputs(manifest, environment: str) -> tuple[Path, list[Path]] | None:
    """The build context and the files `environment`'s image is made of, as the content tag reads them
    (what Docker is sent, the Dockerfile): editing any of them makes a new image. None without an image."""
    settings = manifest.image(environment)
    if settings is None:
        return None
    spec = _spec(manifest, environment, settings)
    files = [spec.context / p for p in _content(manifest, spec).paths]
    return spec.context, files + ([spec.dockerfile] if spec.dockerfile else [])


def prepare(manifest, environment: str, *, settings: Settings, events: Events, build: str = "auto",
            push: bool = True, image_tag: str | None = None, dry_run: bool = False,
            recorded: Iterable[str] = (), pools: Iterable[str] | None = None) -> Image:
    """The image for `environment`'s deployments; Image() when the manifest has no image.

    `settings`: the run's variables (registry credentials, Docker's, GitHub's); `events`: told what happens.
    `recorded`: the images (repository@digest) this environment's deployments of this project already run,
    as the Prefect server has them: the only registry images `build: auto` reuses (see the module's doc).
    `pools`: the work pools the run's deployments go to (None: all): a repository of `image.repositories`
    that none of them pulls from is not pushed to (validate warns about it at its line)."""
    wanted = manifest.image(environment)
    if wanted is None:
        return Image()
    if build not in BUILD_MODES:
        raise Invalid([Problem("build", 0, 0, f"build must be {one_of(BUILD_MODES)}, not '{build}'", "input-build")])
    if image_tag is not None and not re.fullmatch(r"[A-Za-z0-9_][A-Za-z0-9_.-]{0,127}", image_tag):
        raise Invalid([Problem("image-tag", 0, 0, f"'{image_tag}' is not a Docker tag: up to 128 letters, digits, "
                                                  "'_', '.' and '-', not starting with '.' or '-'", "input-image-tag")])
    spec = _spec(manifest, environment, wanted)
    if pools is not None:
        used = set(pools)
        for pool in [p for p in spec.pools if p not in used]:
            events.note(f"not pushed to {spec.pools.pop(pool).text}: no deployment of this run goes to work pool "
                        f"'{pool}'")
    repository = spec.repository
    content = _content(manifest, spec)
    image = Image(content_tag=content.tag, repository=repository.text,
                  pools={p: r.text for p, r in spec.pools.items()})
    registry = registries.for_repository(repository, settings, secret_teller(events))
    recorded = list(recorded)
    trusted = _trusted(repository, recorded)

    try:
        with events.phase(f"Image {repository.tagged(content.tag)}"), docker.private_config(settings.environ):
            if content.warnings:  # at the manifest's dockerfile line, an annotation under GitHub Actions
                events.problems([_problem(manifest, environment, "dockerfile", text, rule, severity="warning")
                                 for rule, text in content.warnings])
            _prepare(image, spec, registry, manifest, environment, content, build=build, push=push,
                     image_tag=image_tag, dry_run=dry_run, trusted=trusted, settings=settings, events=events)
            image.references = {repository.text: image.reference, **image.references}
            if spec.others and image.reference:
                _others(image, spec, registry, manifest, environment, build=build, push=push, image_tag=image_tag,
                        dry_run=dry_run, recorded=recorded, settings=settings, events=events)
            return image
    except (registries.RegistryError, docker.DockerError) as error:
        raise ImageError(str(error)) from None


def _trusted(repository, recorded: list) -> dict[str, str]:
    """The digests `repository` may serve this environment under the content tag, and why (the rule is per
    repository: a digest this environment runs from one repository says nothing of another's tag)."""
    trusted = {r.split("@", 1)[1]: "which environment '{environment}''s deployments of this project already run "
                                   "on the Prefect server"
               for r in recorded if isinstance(r, str) and r.startswith(f"{repository.text}@")}
    trusted.update({digest: "which this run built and pushed" for text, digest in _PUSHED_HERE
                    if text == repository.text})
    return trusted


def _login(registry: registries.Registry, say: Say) -> None:
    credentials = registry.credentials()
    if credentials:
        docker.login(registry.login_server, credentials.username, credentials.password)
        say(f"logged Docker in to {registry.login_server} as {credentials.username} "
            f"(credentials from {credentials.source}; kept in a Docker config of this run's own, "
            "removed when it ends)")


def _ensure_repository(spec: _Spec, registry: registries.Registry, manifest, environment: str, say: Say,
                       key: str = "repository") -> None:
    if registry.repository_exists():
        return
    repository = registry.repository
    if not spec.create_repository:
        raise Invalid([_problem(manifest, environment, key,
                                f"the ECR repository '{repository.path}' does not exist in account "
                                f"{getattr(registry, 'account', '?')} ({getattr(registry, 'region', '?')}): "
                                "create it, or set image.create_repository: true", "image-repository-missing")])
    registry.create_repository()
    say(f"created the ECR repository {repository.path}")


def _others(image: Image, spec: _Spec, default: registries.Registry, manifest, environment: str, *, build: str,
            push: bool, image_tag: str | None, dry_run: bool, recorded: list, settings: Settings,
            events: Events) -> None:
    """The image in each other repository of `image.repositories`: built and pushed there with the default's
    build (see `_build_and_push`), else reused when that repository's tag is a digest this environment runs
    from it, else pulled from the default by digest, tagged and pushed (the same image, never rebuilt)."""
    say, out = _teller(image, events), _Output(events)
    tag = image.content_tag
    for repository in spec.others:
        if repository.text in image.references:  # pushed by this run's build already
            continue
        if not push:
            image.references[repository.text] = repository.tagged(tag)
            continue
        registry = registries.for_repository(repository, settings, secret_teller(events))
        trusted = _trusted(repository, recorded)
        try:
            digest = registry.digest(tag)
        except registries.RegistryError as error:
            if not dry_run:
                raise
            digest = None
            say(f"dry run: could not look {repository.tagged(tag)} up ({error}); the plan assumes it is not there")
        if digest is not None and (digest in trusted or build == "never"):
            why = trusted.get(digest, "used as the registry has it (build: never)").format(environment=environment)
            image.references[repository.text] = repository.pinned(digest)
            say(f"{repository.tagged(tag)} is in the registry as {digest}, {why}: no push")
            continue
        why = (f"{repository.tagged(tag)} is not in the registry" if digest is None else
               f"{repository.tagged(tag)} is in the registry as {digest}, but no deploy of project "
               f"'{manifest.project}' in environment '{environment}' runs that image from {repository.text}: the "
               "image is pushed there again, since whoever can push to that repository must not decide what this "
               "environment runs")
        if dry_run:
            image.references[repository.text] = repository.tagged(tag)
            say(f"dry run: would push {image.reference} to {repository.tagged(tag)}: {why}")
            continue
        if "@" not in image.reference:
            raise ImageError(f"cannot push to {repository.text}: the image has no digest ({image.reference})")
        _ensure_repository(spec, registry, manifest, environment, say, "repositories")
        _login(default, say)
        _login(registry, say)
        started = time.monotonic()
        docker.pull(image.reference, out=out)
        docker.tag(image.reference, repository.tagged(tag))
        docker.push(repository.tagged(tag), out=out)
        pushed = registry.digest(tag)
        if not pushed:
            raise ImageError(f"pushed {repository.tagged(tag)}, but the registry does not list it")
        if image_tag and registry.digest(image_tag) != pushed:
            registry.add_tag(pushed, image_tag)
        _PUSHED_HERE.add((repository.text, pushed))
        image.references[repository.text] = repository.pinned(pushed)
        image.pushed = True
        say(f"pushed {image.reference} to {repository.tagged(tag)} (pulled by digest, not built again) in "
            f"{time.monotonic() - started:.1f} s: {why}; deployments of its work pools run "
            f"{image.references[repository.text]}")


def _reuse(image: Image, repository, digest: str | None, build: str, trusted: dict[str, str], environment: str,
           project: str) -> bool:
    """Whether the registry's image under the content tag is what this environment runs; `image.why` says
    why it is, or why it is built again."""
    tagged = repository.tagged(image.content_tag)
    if digest is None:
        image.why = f"{tagged} is not in the registry"
        return False
    if build == "always":
        image.why = f"build: always (the registry has {tagged} as {digest})"
        return False
    if build == "never":
        image.why = (f"build: never: {tagged} is used as the registry has it ({digest}), whoever pushed it; "
                     f"with build: auto, environment '{environment}' would run only images its own deploys recorded")
        return True
    if digest in trusted:
        image.why = f"{tagged} is in the registry as {digest}, " + trusted[digest].format(environment=environment)
        return True
    image.why = (f"{tagged} is in the registry as {digest}, but no deploy of project '{project}' in environment "
                 f"'{environment}' registered that image: it is built here instead, since whoever can push to "
                 "the repository must not decide what this environment runs")
    return False


def _prepare(image: Image, spec: _Spec, registry: registries.Registry, manifest, environment: str,
             content: _Content, *, build: str, push: bool, image_tag: str | None, dry_run: bool,
             trusted: dict[str, str], settings: Settings, events: Events) -> Image:
    repository, tag = spec.repository, image.content_tag
    say = _teller(image, events)
    started = time.monotonic()
    try:
        digest = registry.digest(tag)
    except registries.RegistryError as error:
        if not dry_run:
            raise
        # A plan must not need the registry: a pull request's job often has no credentials for it.
        image.reference = repository.tagged(tag)
        say(f"dry run: could not look {repository.tagged(tag)} up ({error}); the plan assumes it is not "
                    f"there, so deploy would build{' and push' if push else ''} it")
        return image
    image.exists = digest is not None
    image.digest = digest
    looked = f"{time.monotonic() - started:.2f} s"
    reuse = _reuse(image, repository, digest, build, trusted, environment, manifest.project)

    if dry_run:
        image.reference = repository.pinned(digest) if reuse else repository.tagged(tag)
        if reuse:
            say(f"{image.why} (looked up in {looked}): no build, no push")
        elif build == "never":
            raise Invalid([_problem(manifest, environment, "repository",
                                    f"{repository.tagged(tag)} is not in the registry and build is 'never'",
                                    "image-missing")])
        else:
            if push and not registry.repository_exists():
                say(f"dry run: the repository {repository.path} does not exist"
                            + ("; it would be created" if spec.create_repository else
                               " and image.create_repository is not set: deploy would fail"))
            say(f"dry run: would build{' and push' if push else ''} "
                f"{', '.join(r.tagged(tag) for r in [repository, *spec.others])}: {image.why} "
                f"(looked up in {looked})")
            image.references.update({r.text: r.tagged(tag) for r in spec.others})
        return image

    if reuse:
        image.reference = repository.pinned(digest)
        say(f"{image.why} (looked up in {looked}): no build, no push")
        if image_tag and push and registry.digest(image_tag) != digest:
            registry.add_tag(digest, image_tag)
            image.tags.append(image_tag)
            say(f"tagged {digest} as {repository.tagged(image_tag)} in the registry (no build, no push)")
        return image
    if build == "never":
        raise Invalid([_problem(manifest, environment, "repository",
                                f"{repository.tagged(tag)} is not in the registry and build is 'never': build it "
                                "here (build: auto), or push that tag first", "image-missing")])
    say(f"building: {image.why}")

    problem = docker.daemon_answers()
    if problem:
        raise ImageError(f"cannot build {repository.tagged(tag)}: the Docker engine does not answer: {problem}")
    others = [registries.for_repository(r, settings, secret_teller(events)) for r in spec.others]
    if push:
        _ensure_repository(spec, registry, manifest, environment, say)
        for other in others:
            _ensure_repository(spec, other, manifest, environment, say, "repositories")
    _login(registry, say)
    for other in others if push else ():
        _login(other, say)

    with tempfile.TemporaryDirectory(prefix="flow-register-build-") as private:
        if spec.dockerfile is None:
            # Built from a folder of its own: exactly the files `content.paths` names, with the generated
            # Dockerfile beside them, not in the repository (where a planted symlink could redirect it).
            context = Path(private) / "context"
            context.mkdir()
            build_context.copy_context(spec.context, content.paths, context)
            dockerfile = Path(private) / "Dockerfile"
            with open(dockerfile, "x", encoding="utf-8") as out:
                out.write(content.dockerfile)
            image.dockerfile = content.dockerfile
            say("dockerfile: auto: built from this Dockerfile, with the context's files less credentials "
                        "and what the image does not need:\n  " + content.dockerfile.rstrip().replace("\n", "\n  "))
        else:
            context, dockerfile = spec.context, spec.dockerfile
        _build_and_push(image, spec, registry, manifest, context, dockerfile, push=push, image_tag=image_tag,
                        settings=settings, events=events, others=others)
    return image


def _build_and_push(image: Image, spec: _Spec, registry: registries.Registry, manifest, context: Path,
                    dockerfile: Path, *, push: bool, image_tag: str | None, settings: Settings, events: Events,
                    others=()) -> None:
    """One build, tagged in the default repository and in every other of `image.repositories`: buildx pushes
    them all in one go, the classic builder pushes each (the layers are the same, so the digest is too)."""
    repository, tag = spec.repository, image.content_tag
    say, out = _teller(image, events), _Output(events)
    tags = [tag]
    sha = _git_sha(spec.context, settings, say)
    if sha:
        tags.append(sha)
    if image_tag and image_tag not in tags:
        tags.append(image_tag)
    references = [repository.tagged(t) for t in tags]
    everywhere = references + [other.repository.tagged(t) for other in others for t in tags]
    request = docker.Build(context=str(context), dockerfile=str(dockerfile), tags=everywhere,
                           build_args=spec.build_args, platform=spec.platform,
                           labels={"flow-register.content-tag": tag, "flow-register.project": manifest.project},
                           cache_scope=f"flow-register-{repository.path.replace('/', '-')}")

    built = None  # the digest Docker reports for what it pushed
    if docker.has_buildx():
        image.builder = "buildx"
        cache, why_not = docker.gha_cache_available()
        if not cache and settings.github.active:
            say(f"building without the GitHub Actions cache: {why_not}")
        started = time.monotonic()
        built = docker.build_buildx(request, push=push, gha_cache=cache, out=out)
        image.built = True
        image.pushed = push
        say(f"built{' and pushed' if push else ''} {', '.join(everywhere)} with buildx "
                    f"in {time.monotonic() - started:.1f} s")
    else:
        # Always built: an image under this tag in the local engine may be one pulled from the registry, which
        # is whatever its last pusher put there (the layer cache makes an unchanged build quick).
        image.builder = "classic"
        started = time.monotonic()
        docker.build_classic(request, out=out)
        image.built = True
        say(f"built {', '.join(everywhere)} with the classic builder in {time.monotonic() - started:.1f} s")
        if push:
            started = time.monotonic()
            for reference in everywhere:
                docker.push(reference, out=out)
            image.pushed = True
            built = docker.pushed_digests(repository.tagged(tag), repository.text)
            say(f"pushed {', '.join(everywhere)} in {time.monotonic() - started:.1f} s")

    if not push:
        image.reference = repository.tagged(tag)
        image.references.update({other.repository.text: other.repository.tagged(tag) for other in others})
        say(f"not pushed (push: false): deployments run {image.reference}, which only this engine has")
        return
    digest = registry.digest(tag)
    if not digest:
        raise ImageError(f"pushed {repository.tagged(tag)}, but the registry does not list it")
    if built and digest not in built:
        # Someone pushed over the tag between our push and this look-up: run what was built here.
        say(f"warning: the registry's {repository.tagged(tag)} is {digest} now, not the image just pushed "
                    f"({', '.join(sorted(built))}): someone else pushed to that tag; the deployments run the one "
                    "built here")
        digest = sorted(built)[0]
    image.digest = digest
    image.tags = tags
    image.reference = repository.pinned(digest)
    _PUSHED_HERE.add((repository.text, digest))
    say(f"deployments run {image.reference}")
    for other in others:
        there = other.digest(tag)
        if not there:
            raise ImageError(f"pushed {other.repository.tagged(tag)}, but the registry does not list it")
        mine = built if image.builder == "buildx" else docker.pushed_digests(other.repository.tagged(tag),
                                                                             other.repository.text)
        if mine and there not in mine:  # someone pushed over the tag there since: run what was built here
            say(f"warning: the registry's {other.repository.tagged(tag)} is {there} now, not the image just pushed: "
                "someone else pushed to that tag; the deployments run the one built here")
            there = sorted(mine)[0]
        _PUSHED_HERE.add((other.repository.text, there))
        image.references[other.repository.text] = other.repository.pinned(there)
        pools = ", ".join(p for p, r in spec.pools.items() if r.text == other.repository.text)
        say(f"deployments of work pools {pools} run {image.references[other.repository.text]}")
