"""Code in object storage: the upload before the plan's writes (`code: {s3: ...}` or `code: {gcs: ...}`).

What is uploaded is what `dockerfile: auto` would copy into an image (register/image/context.py's
`image_paths`: never a credential file, `.git`, the manifest or caches), laid out as in the manifest's folder,
under `FOLDER/ct-HASH/`: the hash is the image stage's content tag of exactly those files, so a prefix, once
complete, never changes. A marker, `FOLDER/.flow-register/ct-HASH`, is written after the last file: its
presence means the upload is complete, and the next deploy of the same files uploads nothing. It lies outside
the prefix the runs pull, so runs never download it.

The deploy uploads with the credentials of its own environment (boto3's chain for S3, `AWS_ENDPOINT_URL`
included; Application Default Credentials for GCS, or `STORAGE_EMULATOR_HOST` as Google's own clients read
it). Runs pull with the block the manifest names (register/code/__init__.py). A plan (`--dry-run`) only reads: it says
what would be uploaded, or that it is there already.
"""

from __future__ import annotations

import json
import os
import uuid
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import quote

from register import code
from register.image import context as build_context

MARKERS = ".flow-register"


class UploadError(Exception):
    """The code could not be uploaded (or read back): nothing was registered."""


@dataclass
class Upload:
    """The flow files of one manifest bound for one `code:` storage place."""

    where: code.Storage
    prefix: str  # ct-HASH: the folder under `where.folder` named by the content
    files: list[str]  # relative to the manifest's folder
    root: Path
    present: bool | None = None  # already complete there; None: not known (it could not be read)
    uploaded: int = 0  # files written by this deploy
    why: str | None = None  # why `present` is not known

    @property
    def url(self) -> str:
        return self.where.url(self.prefix)

    def line(self, dry_run: bool) -> str:
        """What the plan says about it."""
        count = f"{len(self.files)} file{'s' if len(self.files) != 1 else ''}"
        if self.present:
            return f"Code: {self.url} ({count}, already uploaded: nothing to upload)"
        if self.uploaded or not dry_run:
            return f"Code: {self.url} ({self.uploaded} of {count} uploaded)"
        unknown = f"; could not tell whether it is there: {self.why}" if self.why else ""
        return f"Code: {self.url} (would upload {count}: dry run{unknown})"

    def as_dict(self) -> dict:
        return {"url": self.url, "files": len(self.files), "present": self.present, "uploaded": self.uploaded}


def _key(where: code.Storage, *parts: str) -> str:
    return "/".join(p for p in (where.folder, *parts) if p)


def uploads_for(manifest, deployments) -> list[Upload]:
    """One Upload per storage place the deployments name, with its files and content prefix (offline)."""
    places = {}
    for d in deployments:
        where = code.storage(d.code)
        if where is not None:
            places.setdefault(where.key, where)
    if not places:
        return []
    root = manifest.root
    manifest_file = _relative(manifest, root)
    # Regular files only: a symbolic link is not followed (it could point at the deployer's credentials)
    files = [p for p in build_context.image_paths(root, leave_out=(manifest_file,) if manifest_file else ())
             if (root / p).is_file() and not (root / p).is_symlink()]
    prefix = build_context.content_tag(root, b"", paths=files)
    return [Upload(where, prefix, files, root) for where in places.values()]


def _relative(manifest, root: Path) -> str | None:
    path = getattr(manifest, "path", None)
    try:
        return Path(path).resolve().relative_to(root.resolve()).as_posix() if path else None
    except ValueError:
        return None


class _S3:
    def __init__(self, settings):
        # the deployer's credentials and endpoint, as the AWS CLI takes them, from the run's settings
        self.client = settings.aws_client("s3")

    def exists(self, bucket: str, key: str) -> bool:
        from botocore.exceptions import ClientError

        try:
            self.client.head_object(Bucket=bucket, Key=key)
        except ClientError as error:
            if error.response.get("Error", {}).get("Code") in ("404", "NoSuchKey", "NotFound"):
                return False
            raise
        return True

    def put(self, bucket: str, key: str, body: bytes) -> None:
        self.client.put_object(Bucket=bucket, Key=key, Body=body)


class _GCS:
    """The JSON API through google-auth's session (google-cloud-storage is not a dependency)."""

    def __init__(self, settings):
        import requests

        emulator = settings.environ.get("STORAGE_EMULATOR_HOST")
        if emulator:  # Google's clients send no credentials to an emulator either
            self.endpoint = emulator.rstrip("/") if "://" in emulator else f"http://{emulator}"
            self.session = requests.Session()
        else:
            from google.auth.transport.requests import AuthorizedSession

            credentials = settings.google_credentials(["https://www.googleapis.com/auth/devstorage.read_write"])
            self.endpoint = "https://storage.googleapis.com"
            self.session = AuthorizedSession(credentials)

    def exists(self, bucket: str, key: str) -> bool:
        response = self.session.get(f"{self.endpoint}/storage/v1/b/{quote(bucket, safe='')}/o/{quote(key, safe='')}",
                                    timeout=60)
        if response.status_code == 404:
            return False
        self._ok(response)
        return True

    def put(self, bucket: str, key: str, body: bytes) -> None:
        # A multipart upload (the object's name in its JSON part): gcp-storage-emulator fails a media upload
        # of an empty file, such as an __init__.py, which Cloud Storage takes either way.
        boundary = uuid.uuid4().hex
        while boundary.encode() in body:
            boundary = uuid.uuid4().hex
        data = (f"--{boundary}\r\nContent-Type: application/json; charset=UTF-8\r\n\r\n{json.dumps({'name': key})}"
                f"\r\n--{boundary}\r\nContent-Type: application/octet-stream\r\n\r\n").encode() + body + \
            f"\r\n--{boundary}--\r\n".encode()
        response = self.session.post(f"{self.endpoint}/upload/storage/v1/b/{quote(bucket, safe='')}/o",
                                     params={"uploadType": "multipart"}, data=data,
                                     headers={"Content-Type": f"multipart/related; boundary={boundary}"}, timeout=300)
        self._ok(response)

    @staticmethod
    def _ok(response) -> None:
        if response.status_code >= 400:
            raise UploadError(f"GCS answered {response.status_code}: {response.text[:200]}")


STORES = {"s3": _S3, "gcs": _GCS}


def _read(root: Path, relative: str) -> bytes:
    """A regular file of the project, never through a symbolic link (one planted since it was listed)."""
    if (root / relative).resolve() != root.resolve() / relative:
        raise OSError(f"{relative}: a folder above it is a symbolic link")
    fd = os.open(root / relative, os.O_RDONLY | os.O_NOFOLLOW)
    with os.fdopen(fd, "rb") as reader:
        return reader.read()


def _failure(upload: Upload, error: Exception) -> str:
    return f"{type(error).__name__}: {str(error)[:300]}"


def prepare(uploads: list[Upload], *, dry_run: bool, settings) -> list[Upload]:
    """Find out whether each upload is there; unless a dry run, upload what is not (each file, then the
    marker). Raises UploadError when an upload fails; a dry run that cannot read says so instead.
    `settings`: the run's, whose credentials and endpoints the clients are given."""
    for upload in uploads:
        where = upload.where
        try:
            store = STORES[where.kind](settings)
            upload.present = store.exists(where.bucket, _key(where, MARKERS, upload.prefix))
        except Exception as error:  # noqa: BLE001: any client failure is the user's to see, by its name
            if not dry_run:
                raise UploadError(f"could not read {where.url()}: {_failure(upload, error)}") from None
            upload.why = _failure(upload, error)
            continue
        if upload.present or dry_run:
            continue
        try:
            for relative in upload.files:
                store.put(where.bucket, _key(where, upload.prefix, relative), _read(upload.root, relative))
                upload.uploaded += 1
            store.put(where.bucket, _key(where, MARKERS, upload.prefix), "\n".join(upload.files).encode() + b"\n")
        except Exception as error:  # noqa: BLE001
            raise UploadError(f"could not upload the code to {upload.url} ({upload.uploaded} of "
                              f"{len(upload.files)} files written): {_failure(upload, error)}") from None
    return uploads
