"""Whoever can push to an image repository controls what its layers hold: flow-register reads them to check
the deployments against the image, and that reading is untrusted input. Each image here is crafted and
pushed to the real OCI registry of `bash .ci/services up` over the distribution API, then read as a
deploy reads it (register/image/inspect.py).
"""

from __future__ import annotations

import gzip
import hashlib
import io
import json
import tarfile
import time
import uuid
from pathlib import Path

import httpx
import pytest

from register.image import inspect, registries
from register.report import github
from support import stages
from support.services import services_env

pytestmark = pytest.mark.e2e

OCI_MANIFEST = "application/vnd.oci.image.manifest.v1+json"
GZIP_LAYER = "application/vnd.oci.image.layer.v1.tar+gzip"


def layer(*entries) -> bytes:
    """A gzipped layer tar of (name, kind, data-or-target) entries: kind file, dir, link."""
    raw = io.BytesIO()
    with tarfile.open(fileobj=raw, mode="w") as tar:
        for name, kind, value in entries:
            info = tarfile.TarInfo(name)
            if kind == "dir":
                info.type = tarfile.DIRTYPE
                tar.addfile(info)
            elif kind == "link":
                info.type, info.linkname = tarfile.SYMTYPE, value
                tar.addfile(info)
            else:
                data = value if isinstance(value, bytes) else value.encode()
                info.size = len(data)
                tar.addfile(info, io.BytesIO(data))
    return gzip.compress(raw.getvalue(), compresslevel=9)


def push(registry: str, layers: list[bytes], workdir: str = "/app") -> tuple[registries.Registry, str]:
    """Push an image of `layers` to a fresh repository of `registry`; its registry and tag."""
    name = f"attack-{uuid.uuid4().hex[:8]}/flows"
    base = f"http://{registry}/v2/{name}"

    def blob(data: bytes) -> str:
        digest = "sha256:" + hashlib.sha256(data).hexdigest()
        started = httpx.post(f"{base}/blobs/uploads/", timeout=60)
        assert started.status_code == 202, started.text
        location = started.headers["Location"]
        location = location if location.startswith("http") else f"http://{registry}{location}"
        location += ("&" if "?" in location else "?") + f"digest={digest}"  # after the upload's own state
        done = httpx.put(location, content=data, timeout=120,
                         headers={"Content-Type": "application/octet-stream"})
        assert done.status_code == 201, done.text
        return digest

    config = json.dumps({"architecture": "amd64", "os": "linux", "config": {"WorkingDir": workdir},
                         "rootfs": {"type": "layers", "diff_ids": []}}).encode()
    manifest = {"schemaVersion": 2, "mediaType": OCI_MANIFEST,
                "config": {"mediaType": "application/vnd.oci.image.config.v1+json", "digest": blob(config),
                           "size": len(config)},
                "layers": [{"mediaType": GZIP_LAYER, "digest": blob(data), "size": len(data)} for data in layers]}
    answer = httpx.put(f"{base}/manifests/v1", content=json.dumps(manifest).encode(), timeout=60,
                       headers={"Content-Type": OCI_MANIFEST})
    assert answer.status_code == 201, answer.text
    return stages.registry(registries.Repository.parse(f"{registry}/{name}")), "v1"


@pytest.fixture(scope="module")
def registry() -> str:
    return services_env()["REGISTRY"]


def test_a_symlink_in_the_image_resolves_inside_the_image_never_on_the_host(registry):
    # /etc/hostname exists on this machine, not in the image: a link to it (absolute, or climbing out with
    # ..) does not make the flow file "exist"; a link to a file the image has does.
    files = inspect.read(*push(registry, [layer(
        ("app", "dir", ""), ("app/flows", "dir", ""), ("srv", "dir", ""), ("srv/real.py", "file", "x = 1\n"),
        ("app/flows/absolute.py", "link", "/etc/hostname"),
        ("app/flows/climbing.py", "link", "../../../../../../../../etc/hostname"),
        ("app/flows/inside.py", "link", "../../srv/real.py"),
        ("app/flows/loop.py", "link", "loop.py"),
    )]))
    assert Path("/etc/hostname").is_file()
    assert files.kind("/app/flows/absolute.py") is None
    assert files.kind("/app/flows/climbing.py") is None
    assert files.kind("/app/flows/inside.py") == "file"
    assert files.kind("/app/flows/loop.py") is None  # a loop ends, unresolved


def test_whiteouts_delete_what_lower_layers_had(registry):
    lower = layer(("app", "dir", ""), ("app/flows", "dir", ""), ("app/flows/sales.py", "file", "a"),
                  ("app/flows/forecast.py", "file", "b"), ("app/other", "dir", ""), ("app/other/kept.py", "file", ""))
    upper = layer(("app/flows", "dir", ""), ("app/flows/.wh.sales.py", "file", ""),
                  ("app/other", "dir", ""), ("app/other/.wh..wh..opq", "file", ""), ("app/other/new.py", "file", ""))
    files = inspect.read(*push(registry, [lower, upper]))
    assert files.kind("/app/flows/sales.py") is None
    assert files.kind("/app/flows/forecast.py") == "file"
    assert files.kind("/app/other/kept.py") is None and files.kind("/app/other/new.py") == "file"
    assert files.workdir == "/app"


def test_a_layer_is_never_extracted_and_a_name_that_climbs_out_is_dropped(registry, tmp_path):
    target = tmp_path / f"planted-{uuid.uuid4().hex[:6]}"
    climbing = "../" * 30 + str(target).lstrip("/")
    files = inspect.read(*push(registry, [layer((climbing, "file", "planted"), ("app/flow.py", "file", ""))]))
    assert not target.exists()
    assert files.kind("/app/flow.py") == "file"
    assert not any("planted" in path for path in files.entries)


def test_a_layer_that_inflates_past_the_bound_stops_the_reading_not_the_machine(registry, monkeypatch):
    bomb = layer(("app/zeros", "file", b"\0" * (64 << 20)))  # 64 MiB of zeros: about 64 KiB gzipped
    assert len(bomb) < 1 << 20
    pushed = push(registry, [bomb])
    monkeypatch.setattr(inspect, "MAX_BYTES", 8 << 20)
    started = time.monotonic()
    with pytest.raises(inspect.UnreadableImage, match="more than"):
        inspect.read(*pushed)
    assert time.monotonic() - started < 30


def test_a_layer_of_too_many_entries_is_refused(registry, monkeypatch):
    pushed = push(registry, [layer(*[(f"app/f{i}", "file", "") for i in range(2000)])])
    monkeypatch.setattr(inspect, "MAX_ENTRIES", 1000)
    with pytest.raises(inspect.UnreadableImage, match="more than 1,000 entries"):
        inspect.read(*pushed)


def test_an_image_that_cannot_be_read_is_named_and_the_deployments_are_not_failed_for_it(registry):
    # Not a tar at all: told as a note ("not checked"), never a crash or a traceback.
    registry_, tag = push(registry, [gzip.compress(b"not a tar archive" * 100)])

    class Manifest:
        pass

    problems, notes = inspect.check(Manifest(), "dev", [inspect.Expected(
        type("D", (), {"entrypoint": "flows/a.py:f", "index": 0, "manifest_name": "a", "code": None})(),
        f"{registry_.repository.text}:{tag}", "/app", False)], lambda ref: inspect.read(registry_, tag))
    assert problems == []
    assert notes and "was not checked against the deployments" in notes[0] and "not a tar archive" in notes[0]


def test_the_jobs_registry_password_never_goes_to_a_host_a_prebuilt_image_names(monkeypatch):
    # A pull request's manifest can name any image in job_variables; reading it for the check must not hand
    # REGISTRY_USERNAME/REGISTRY_PASSWORD (meant for the manifest's own repository) to that host.
    import http.server
    import threading

    seen: list[str] = []

    class Asking(http.server.BaseHTTPRequestHandler):
        def do_GET(self):
            seen.append(self.headers.get("Authorization") or "")
            self.send_response(401)
            self.send_header("WWW-Authenticate", 'Basic realm="give me your password"')
            self.send_header("Content-Length", "0")
            self.end_headers()

        def log_message(self, *args):
            pass

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Asking)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    monkeypatch.setenv("REGISTRY_USERNAME", "ci")
    monkeypatch.setenv("REGISTRY_PASSWORD", "the-jobs-registry-password")
    monkeypatch.setenv("DOCKER_CONFIG", "/nonexistent")
    try:
        with pytest.raises(inspect.UnreadableImage, match="refused"):
            inspect.reader(settings=stages.settings(), secret=github.mask)(f"127.0.0.1:{server.server_address[1]}/someone/else:v1")
    finally:
        server.shutdown()
    assert seen, "the host was never asked"
    assert all(not header for header in seen), seen
