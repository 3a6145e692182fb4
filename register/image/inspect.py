"""What an image holds, read without running it: its files and its working directory.

    files = read(reference, registry)      # the local engine (`docker image save`), else the registry
    files.kind("/opt/prefect/sales-etl/flows/sales.py")   # "file", "dir" or None
    files.workdir                                        # the image config's WorkingDir

Used to check that every deployment's entrypoint is where its pull step (`set_working_directory`)
says, before any deployment is written (see `check`).

An image is untrusted input (whoever can push to the repository decides it): its layers are read as
streams, never extracted and never written to disk; the bytes read and the entries kept are bounded
(`MAX_BYTES`, `MAX_ENTRIES`, `MAX_LAYERS`); symbolic links resolve inside the image's own tree (an
absolute or `..` target stops at the image's root, as in a container); whiteouts (`.wh.NAME`,
`.wh..wh..opq`) delete what lower layers had, as overlayfs does.
"""

from __future__ import annotations

import functools
import io
import json
import posixpath
import re
import shlex
import subprocess
import tarfile
import zlib
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

from register import http
from register.image import docker, registries

MAX_BYTES = 8 << 30  # layer bytes read per image (decompressed): a Prefect base image is about 1.2 GiB
MAX_ENTRIES = 500_000  # tar entries read per image (a Prefect base image has about 21,000)
MAX_LAYERS = 256  # Docker's own limit is 127 layers
MAX_JSON = 4 << 20  # a manifest or config
LAYER_SECONDS = 900  # one layer's download, whole (a slow registry, a 1 GiB layer)
MAX_HOPS = 40  # symbolic links followed while resolving one path (Linux: 40)
WHITEOUT = ".wh."
OPAQUE = ".wh..wh..opq"
PLATFORM = "linux/amd64"


class UnreadableImage(Exception):
    """The image could not be read (too large, a format not known, the registry or engine failed)."""


# -- the tree --------------------------------------------------------------------------------------

@dataclass
class Files:
    """An image's merged filesystem: each path's kind ('file', 'dir', 'link') and a link's target."""

    entries: dict[str, tuple[str, str]] = field(default_factory=lambda: {"/": ("dir", "")})
    children: dict[str, set[str]] = field(default_factory=dict)
    workdir: str | None = None  # the image config's WorkingDir ('' or None: the root)

    def _remove(self, path: str) -> None:
        """`path` and everything under it (a loop, not recursion: a crafted layer nests as deep as it likes)."""
        if path not in self.entries:
            return
        self.children.get(posixpath.dirname(path), set()).discard(path)
        stack = [path]
        while stack:
            here = stack.pop()
            stack.extend(self.children.pop(here, ()))
            self.entries.pop(here, None)

    def _add(self, path: str, kind: str, target: str) -> None:
        missing = []
        parent = posixpath.dirname(path)
        while parent not in self.entries:
            missing.append(parent)
            parent = posixpath.dirname(parent)
        for folder in reversed(missing):
            self.entries[folder] = ("dir", "")
            self.children.setdefault(posixpath.dirname(folder), set()).add(folder)
        if kind == "dir" and self.entries.get(path, ("",))[0] == "dir":
            return  # a folder again (its metadata, which the check does not need)
        if path in self.entries:
            self._remove(path)
        self.entries[path] = (kind, target)
        self.children.setdefault(posixpath.dirname(path), set()).add(path)

    def apply(self, layer: list[tuple[str, str, str]]) -> None:
        """One layer's entries (path, kind, target) over the lower ones: whiteouts first, as overlayfs."""
        for path, kind, _ in layer:
            name = posixpath.basename(path)
            if name == OPAQUE:
                for child in list(self.children.get(posixpath.dirname(path), ())):
                    self._remove(child)
            elif name.startswith(WHITEOUT):
                self._remove(posixpath.join(posixpath.dirname(path), name[len(WHITEOUT):]))
        for path, kind, target in layer:
            if not posixpath.basename(path).startswith(WHITEOUT):
                self._add(path, kind, target)

    def resolve(self, path: str) -> str | None:
        """`path` with every symbolic link followed inside the image; None when it does not exist."""
        parts = [p for p in path.split("/") if p]
        here = "/"
        hops = 0
        while parts:
            part = parts.pop(0)
            if part == ".":
                continue
            if part == "..":
                here = posixpath.dirname(here)  # the root's parent is the root
                continue
            candidate = posixpath.join(here, part)
            entry = self.entries.get(candidate)
            if entry is None:
                return None
            if entry[0] == "link":
                hops += 1
                if hops > MAX_HOPS:
                    return None
                target = entry[1]
                parts = [p for p in target.split("/") if p] + parts
                if target.startswith("/"):
                    here = "/"
                continue
            if parts and entry[0] != "dir":
                return None
            here = candidate
        return here

    def kind(self, path: str) -> str | None:
        resolved = self.resolve(path)
        return None if resolved is None else self.entries[resolved][0]

    def find(self, relative: str, limit: int = 3) -> list[str]:
        """Where the image has a file whose path ends with `relative` (for the fix a message suggests)."""
        suffix = "/" + relative.strip("/")
        found = sorted(p for p, (kind, _) in self.entries.items() if kind == "file" and p.endswith(suffix))
        return found[:limit]


# -- reading layers --------------------------------------------------------------------------------

class _Budget:
    """What one image's reading may take, shared by its layers."""

    def __init__(self):
        self.bytes = 0
        self.entries = 0

    def spend(self, count: int) -> None:
        self.bytes += count
        if self.bytes > MAX_BYTES:
            raise UnreadableImage(f"its layers hold more than {MAX_BYTES >> 30} GiB")


class _Chunks(io.RawIOBase):
    """A read-only stream over an iterator of byte chunks, counted against `budget` when given."""

    def __init__(self, chunks: Iterable[bytes], budget: _Budget | None = None):
        self._chunks: Iterator[bytes] = iter(chunks)
        self._buffer = b""
        self._budget = budget

    def readable(self) -> bool:
        return True

    def readinto(self, target) -> int:
        while not self._buffer:
            chunk = next(self._chunks, None)
            if chunk is None:
                return 0
            if self._budget is not None:
                self._budget.spend(len(chunk))
            self._buffer = chunk
        size = min(len(target), len(self._buffer))
        target[:size] = self._buffer[:size]
        self._buffer = self._buffer[size:]
        return size


def _stream(chunks: Iterable[bytes], budget: _Budget | None = None) -> io.BufferedReader:
    return io.BufferedReader(_Chunks(chunks, budget), 1 << 16)


def _file_chunks(stream, size: int = 1 << 16) -> Iterator[bytes]:
    while chunk := stream.read(size):
        yield chunk


def _gunzip(chunks: Iterable[bytes]) -> Iterator[bytes]:
    """gzip decompressed in bounded pieces (a small layer that inflates hugely is stopped by the budget)."""
    inflate = zlib.decompressobj(16 + zlib.MAX_WBITS)
    for chunk in chunks:
        data = chunk
        while data:
            out = inflate.decompress(data, 1 << 20)
            if out:
                yield out
            data = inflate.unconsumed_tail
    if tail := inflate.flush():
        yield tail


def _normal(name: str) -> str | None:
    """A tar member's path as an absolute path in the image; None for one with `..` (no layer Docker
    writes has one: it is a crafted name, dropped whole)."""
    parts = [p for p in name.split("/") if p not in ("", ".")]
    if ".." in parts:
        return None
    return "/" + "/".join(parts)


def _layer_entries(stream, budget: _Budget) -> list[tuple[str, str, str]]:
    """The entries of one uncompressed layer tar, read as a stream."""
    out = []
    try:
        with tarfile.open(fileobj=stream, mode="r|") as layer:
            for member in layer:
                budget.entries += 1
                if budget.entries > MAX_ENTRIES:
                    raise UnreadableImage(f"its layers hold more than {MAX_ENTRIES:,} entries")
                path = _normal(member.name)
                if path is None or path == "/":
                    continue
                if member.issym():
                    out.append((path, "link", member.linkname))
                elif member.isdir():
                    out.append((path, "dir", ""))
                elif member.isfile() or member.islnk():
                    out.append((path, "file", ""))
                # devices, fifos: never an entrypoint
    except tarfile.TarError as error:
        raise UnreadableImage(f"a layer is not a tar archive ({error})") from None
    return out


# -- from the local engine -------------------------------------------------------------------------

def _prefixed(head: bytes, stream) -> Iterator[bytes]:
    if head:
        yield head
    yield from _file_chunks(stream)


def from_engine(reference: str, environ) -> Files:
    """`docker image save REFERENCE`, read as it streams (layers come before the manifest.json that orders
    them, so each layer's entries are kept, then applied in that order). Both of Docker's formats: the
    classic one (`ID/layer.tar`, a repeated layer linked to its first copy) and the OCI layout
    (`blobs/sha256/...`, Docker 25 and later)."""
    process = subprocess.Popen([docker.docker_binary(), "image", "save", reference], stdout=subprocess.PIPE,
                               stderr=subprocess.PIPE, stdin=subprocess.DEVNULL, env=dict(environ))
    budget = _Budget()
    layers: dict[str, list] = {}
    documents: dict[str, bytes] = {}
    links: dict[str, str] = {}
    error = ""
    try:
        assert process.stdout is not None
        with tarfile.open(fileobj=_stream(_file_chunks(process.stdout), budget), mode="r|") as outer:
            for member in outer:
                if len(layers) + len(documents) + len(links) > 4 * MAX_LAYERS:
                    raise UnreadableImage("the saved image has too many parts")
                if member.issym():
                    links[member.name] = posixpath.normpath(posixpath.join(posixpath.dirname(member.name),
                                                                           member.linkname))
                    continue
                if not member.isfile():
                    continue
                inner = outer.extractfile(member)
                head = inner.read(512)
                if member.size <= MAX_JSON and head.lstrip()[:1] in (b"{", b"["):
                    documents[member.name] = head + inner.read(MAX_JSON)
                    continue
                chunks, gzipped = _prefixed(head, inner), head[:2] == b"\x1f\x8b"
                try:
                    layers[member.name] = _layer_entries(
                        _stream(_gunzip(chunks), budget) if gzipped else _stream(chunks), budget)
                except UnreadableImage:
                    if budget.bytes > MAX_BYTES or budget.entries > MAX_ENTRIES:
                        raise
                    # not a layer (a VERSION file, an attestation): needed only if the manifest names it
    except tarfile.TarError as caught:
        error = f"no archive ({caught})"
    finally:
        if process.poll() is None:
            process.kill()
        process.wait()
        if process.stderr is not None:
            error = process.stderr.read(4096).decode(errors="replace").strip() or error
    if "manifest.json" not in documents:
        raise UnreadableImage(f"`docker image save {reference}` failed: {error.splitlines()[-1] if error else '?'}")
    try:
        saved = json.loads(documents["manifest.json"])[0]
        config = json.loads(documents[saved["Config"]])
        order = [links.get(name, name) for name in saved["Layers"]]
    except (ValueError, KeyError, IndexError, TypeError):
        raise UnreadableImage("`docker image save` wrote a manifest.json of a form not known") from None
    if len(order) > MAX_LAYERS:
        raise UnreadableImage(f"it has more than {MAX_LAYERS} layers")
    files = Files(workdir=(config.get("config") or {}).get("WorkingDir") or None)
    for name in order:
        if name not in layers:
            raise UnreadableImage(f"the saved image lacks its layer {name}")
        files.apply(layers[name])
    return files


# -- from the registry -----------------------------------------------------------------------------

def _json(registry: registries.Registry, path: str, doing: str) -> tuple[dict, str]:
    response = registry._request("GET", path, headers={"Accept": registries.MANIFEST_TYPES})
    registry._raise_for(response, doing)
    if len(response.content) > MAX_JSON:
        raise UnreadableImage(f"its {doing.split()[-1]} is larger than {MAX_JSON >> 20} MiB")
    try:
        return response.json(), response.headers.get("Content-Type", "").split(";")[0]
    except ValueError:
        raise UnreadableImage(f"the registry's answer to {doing} is not JSON") from None


def _platform_manifest(registry: registries.Registry, index: dict, platform: str) -> str:
    os_name, _, arch = platform.partition("/")
    arch, _, variant = arch.partition("/")
    for entry in index.get("manifests") or []:
        p = entry.get("platform") or {}
        if p.get("os") == os_name and p.get("architecture") == arch and (not variant or p.get("variant") == variant):
            return entry["digest"]
    raise UnreadableImage(f"it has no image for the platform {platform}")


def _blob_chunks(registry: registries.Registry, digest: str) -> Iterator[bytes]:
    """A blob's bytes as they arrive (the pull token was fetched by the manifest's request)."""
    import httpx

    scope = f"repository:{registry.repository.path}:pull"
    auth = registry._tokens.get(scope)
    url = f"{registry.base_url}/blobs/{digest}"
    try:
        # A layer is far larger than the registry client's answer cap: its own client, bounded by the bytes this
        # reader takes at most and a deadline for a large pull. Registries serve layers by a redirect to storage
        # (ECR to S3, Artifact Registry to GCS); httpx drops the Authorization header when one leaves the host.
        with http.client(seconds=LAYER_SECONDS, cap=MAX_BYTES, timeout=60, follow_redirects=True) as client, \
                client.stream("GET", url, headers={"Authorization": auth} if auth else {}) as response:
            if response.status_code >= 400:
                raise UnreadableImage(f"the registry refused its layer {digest} (HTTP {response.status_code})")
            yield from response.iter_bytes(1 << 16)
    except httpx.HTTPError as error:
        raise UnreadableImage(f"reading its layer {digest} failed: {type(error).__name__}") from None


def from_registry(registry: registries.Registry, reference: str, platform: str | None = None) -> Files:
    """The manifest, the config and every layer over the OCI distribution API."""
    manifest, media_type = _json(registry, f"manifests/{reference}", f"read the manifest {reference}")
    if "manifests" in manifest:  # an index: the platform the deployments run on
        digest = _platform_manifest(registry, manifest, platform or PLATFORM)
        manifest, media_type = _json(registry, f"manifests/{digest}", f"read the manifest {digest}")
    layers = manifest.get("layers") or []
    if len(layers) > MAX_LAYERS:
        raise UnreadableImage(f"it has more than {MAX_LAYERS} layers")
    config_digest = (manifest.get("config") or {}).get("digest")
    if not config_digest:
        raise UnreadableImage(f"its manifest ({media_type or 'no media type'}) names no config")
    config, _ = _json(registry, f"blobs/{config_digest}", "read the image config")
    files = Files(workdir=(config.get("config") or {}).get("WorkingDir") or None)
    budget = _Budget()
    for layer in layers:
        kind = str(layer.get("mediaType") or "")
        if "zstd" in kind:
            raise UnreadableImage("its layers are zstd-compressed, which cannot be read here")
        if "foreign" in kind or "nondistributable" in kind:
            continue
        chunks = _blob_chunks(registry, str(layer.get("digest")))
        if "gzip" in kind:
            chunks = _gunzip(chunks)
        # counted decompressed: a small layer that inflates hugely stops at the budget
        files.apply(_layer_entries(_stream(chunks, budget), budget))
    return files


def read(registry: registries.Registry, reference: str, platform: str | None = None) -> Files:
    """The image `reference` (a tag or a digest) of `registry`'s repository."""
    try:
        return from_registry(registry, reference, platform)
    except registries.RegistryError as error:
        raise UnreadableImage(str(error)) from None


# -- the Dockerfile's WORKDIR ----------------------------------------------------------------------

def dockerfile_workdir(text: str) -> str | None:
    """The working directory the Dockerfile's last stage ends in, when its own text says: the last
    `WORKDIR` (relative ones joined; a stage `FROM` an earlier one inherits its). None when it does not
    (no WORKDIR: the base image's decides; or one made of a variable)."""
    stages: dict[str, str | None] = {}
    current: str | None = None
    stage: str | None = None
    for line in re.sub(r"\\[ \t]*\r?\n", " ", text).splitlines():
        instruction, _, rest = line.strip().partition(" ")
        instruction = instruction.upper()
        if instruction == "FROM":
            words = [w for w in rest.split() if not w.startswith("--")]
            current = stages.get(words[0].lower()) if words else None
            stage = words[2].lower() if len(words) >= 3 and words[1].lower() == "as" else None
        elif instruction == "WORKDIR":
            try:
                value = " ".join(shlex.split(rest.strip()))
            except ValueError:
                value = ""
            if not value or "$" in value:
                current = None
            elif value.startswith("/"):
                current = posixpath.normpath(value)
            else:
                current = posixpath.normpath(posixpath.join(current, value)) if current else None
        else:
            continue
        if stage:
            stages[stage] = current
    return current


def default_workdir(root: Path, dockerfile: str) -> str | None:
    """The last WORKDIR of the manifest's Dockerfile (relative to `root`), when it can be read."""
    if dockerfile == "auto":
        return None
    try:
        path = (root / dockerfile).resolve()
        if not path.is_relative_to(root.resolve()) or not path.is_file() or path.stat().st_size > 1 << 20:
            return None
        return dockerfile_workdir(path.read_text(encoding="utf-8", errors="replace"))
    except OSError:
        return None


# -- the check -------------------------------------------------------------------------------------

STEP = "prefect.deployments.steps."
CHECK_RULE = "image-entrypoint"


@dataclass
class Expected:
    """Where a deployment's run looks for its flow file: `directory` (its `set_working_directory` step; None:
    the image's WorkingDir) in `image`."""

    deployment: object  # register.manifest.resolve.Deployment
    image: str
    directory: str | None
    from_code: bool  # the directory is code.directory (a prebuilt image), not image.workdir

    @property
    def file(self) -> str:
        return self.deployment.entrypoint.rsplit(":", 1)[0]


def expected(deployment, fields: dict) -> Expected | None:
    """What a deployment's desired state (plan `fields`) expects of its image; None when its code is not in
    an image (cloned at run time) or it names no image (the pool's own)."""
    image = (fields.get("job_variables") or {}).get("image")
    if not isinstance(image, str) or not image or "{{" in image:
        return None
    directory = None
    for step in fields.get("pull_steps") or []:
        name, inputs = next(iter(step.items()))
        if name != STEP + "set_working_directory":
            return None  # a clone, an install: the code is not (only) the image's
        directory = (inputs or {}).get("directory")
    if directory is not None and (not isinstance(directory, str) or "{{" in directory):
        return None
    from_code = bool((deployment.code or {}).get("directory"))
    return Expected(deployment, image, directory, from_code)


def _fix(files: Files, want: Expected, directory: str) -> str:
    found = files.find(want.file)
    setting = "code.directory" if want.from_code else "image.workdir"
    if found:
        folder = found[0][: -len(want.file.strip("/")) - 1] or "/"
        return f"the image has it at {found[0]}: set {setting}: {folder}"
    name = posixpath.basename(want.file)
    elsewhere = files.find(name)
    if elsewhere:
        return (f"the image has {name} at {', '.join(elsewhere)}, but the entrypoint is relative to the manifest's "
                f"folder: copy the code so that {want.file} lies under {directory} (a build context that is a "
                "subfolder drops its name from the paths), or move the flow")
    return (f"the image has no {name} anywhere: the Dockerfile does not copy it (or .dockerignore leaves it out); "
            f"copy it to {posixpath.join(directory, want.file)}")


def check(manifest, environment: str, wanted: list[Expected], files_of) -> tuple[list, list[str]]:
    """Each deployment's flow file in the image it runs, where its pull step starts the run. `files_of(image)`
    reads an image (raises UnreadableImage). Returns the problems (errors at each entrypoint's line, a
    warning where image.workdir and the image's WORKDIR disagree) and notes (images that could not be read)."""
    problems, notes = [], []
    by_image: dict[str, list[Expected]] = {}
    for want in wanted:
        by_image.setdefault(want.image, []).append(want)
    for image, wants in by_image.items():
        try:
            files = files_of(image)
        except UnreadableImage as error:
            notes.append(f"the image {image} was not checked against the deployments: {error}")
            continue
        workdir = posixpath.normpath(files.workdir) if files.workdir else "/"
        for want in wants:
            directory = posixpath.normpath(want.directory) if want.directory else workdir
            path = posixpath.normpath(posixpath.join(directory, want.file))
            if files.kind(path) == "file":
                continue
            d = want.deployment
            where = "its pull step's working directory, " + ("code.directory" if want.from_code else "image.workdir") \
                if want.directory else "the image's WORKDIR"
            problems.append(manifest.source.problem(
                ("deployments", d.index, "entrypoint"),
                f"deployment '{d.manifest_name}' runs {want.file} from {directory} ({where}), but the image {image} "
                f"has no file {path}; {_fix(files, want, directory)}", CHECK_RULE))
        ours = [w for w in wants if w.directory and not w.from_code]
        if ours and files.workdir and posixpath.normpath(ours[0].directory) != workdir and not problems:
            problems.append(manifest.source.problem(
                manifest.image_origin(environment, "workdir"),
                f"image.workdir is {ours[0].directory} but the image's working directory (its Dockerfile's last "
                f"WORKDIR) is {workdir}: runs start in {ours[0].directory}; make them the same", "image-workdir",
                severity="warning"))
    return problems, notes


def needs_check(action) -> bool:
    """A deployment about to be written whose image, entrypoint or working directory is new to the server (an
    unchanged one was checked when it was written; reading an image again costs its whole download)."""
    if action.kind == "create":
        return True
    if action.kind != "update":
        return False
    for change in action.changes:
        if change.field in ("entrypoint", "pull_steps"):
            return True
        if change.field == "job_variables" and (change.before or {}).get("image") != (change.after or {}).get("image"):
            return True
    return False


def _split(reference: str) -> tuple[registries.Repository, str]:
    """A whole image reference: its repository, and its digest, else its tag ('latest' when none)."""
    name, _, digest = reference.partition("@")
    head, _, tag = name.rpartition(":")
    if not head or "/" in tag:
        head, tag = name, "latest"
    return registries.Repository.parse(head), digest or tag


class _Anonymous(registries.Registry):
    """A registry asked without credentials: a prebuilt image's host is whatever the manifest names, and the
    job's registry password is for the manifest's own image repository, never for another host."""

    def credentials(self):
        return None

    def _basic(self):
        return None


def _registry_of(repository: registries.Repository, settings, secret) -> registries.Registry:
    found = registries.for_repository(repository, settings, secret)
    # ECR and Artifact Registry hosts are the clouds' own (their tokens go nowhere else); any other: anonymous
    return found if found.kind in ("ecr", "gcp") else _Anonymous(repository, settings, secret)


def reader(image=None, platform: str | None = None, *, settings, secret):
    """How to read an image a deployment runs: ours (register.image.Image) from its registry by digest, or from
    the local engine by its content tag when it was not pushed; any other from the local engine, else from
    its own registry, without the job's registry credentials. `settings`: the run's variables (for Docker and
    the registries); `secret`: told every registry token before it is used."""
    environ = settings.environ

    @functools.cache
    def engine() -> bool:
        return bool(docker.shutil.which("docker")) and docker.daemon_answers(environ) is None

    def files_of(reference: str) -> Files:
        if image is not None and reference in (getattr(image, "references", None) or {}).values():
            reference = image.reference  # the same build, pushed to another repository (image.repositories)
        if image is not None and reference == image.reference and image.repository:
            if image.digest:  # the registry streams layers faster than `docker image save` writes them
                return read(registries.for_repository(registries.Repository.parse(image.repository), settings, secret),
                            image.digest, platform)
            local = f"{image.repository}:{image.content_tag}"
            if engine() and docker.image_exists(local, environ):
                return from_engine(local, environ)
            raise UnreadableImage("it is not built yet (dry run)")
        if engine() and docker.image_exists(reference, environ):
            return from_engine(reference, environ)
        try:
            repository, at = _split(reference)
        except ValueError as error:
            raise UnreadableImage(str(error)) from None
        return read(_registry_of(repository, settings, secret), at, platform)

    return files_of
