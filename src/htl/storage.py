"""The storage layer: atomic local writes (a step's output appears whole or not at all) and
gs:// objects through google-cloud-storage, the only module that imports it.

With `STORAGE_EMULATOR_HOST` set (a local gcp-storage-emulator) the client talks to the
emulator without credentials. Every gs:// failure is a `DataError` naming the URI.
"""

from __future__ import annotations

import json
import os
import shutil
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import IO, Any

from htl.errors import DataError

#: A temporary sibling older than this is a killed writer's leftover, removed by the next write.
STALE_AFTER_S = 3600


def _sweep(target: Path) -> None:
    """Remove the stale temporary siblings (`.<name>.tmp-*`) that killed writers left."""
    for leftover in target.parent.glob(f".{target.name}.tmp-*"):
        try:
            if time.time() - leftover.stat().st_mtime > STALE_AFTER_S:
                shutil.rmtree(leftover) if leftover.is_dir() else leftover.unlink()
        except FileNotFoundError:  # another writer swept it first
            pass


@contextmanager
def atomic_file(path: str | Path) -> Iterator[Path]:
    """Yield a temporary sibling path, unique to this writer, renamed to `path` if the block
    succeeds: concurrent writers never share a temporary name, and a reader sees a whole file."""
    target = Path(path)
    target.parent.mkdir(parents=True, exist_ok=True)
    _sweep(target)
    fd, name = tempfile.mkstemp(prefix=f".{target.name}.tmp-", dir=target.parent)
    os.close(fd)
    tmp = Path(name)
    try:
        yield tmp
        os.replace(tmp, target)
    finally:
        tmp.unlink(missing_ok=True)


@contextmanager
def atomic_directory(path: str | Path) -> Iterator[Path]:
    """Yield a temporary sibling directory that replaces `path` only if the block succeeds."""
    target = Path(path)
    target.parent.mkdir(parents=True, exist_ok=True)
    _sweep(target)
    tmp = Path(tempfile.mkdtemp(prefix=f".{target.name}.tmp-", dir=target.parent))
    try:
        yield tmp
        if target.exists():
            shutil.rmtree(target) if target.is_dir() else target.unlink()
        os.replace(tmp, target)
    finally:
        if tmp.exists():
            shutil.rmtree(tmp)


def atomic_write_text(path: str | Path, text: str) -> None:
    """Write a text file through a temporary name and a rename."""
    with atomic_file(path) as tmp:
        tmp.write_text(text)


def write_json(path: str | Path, data: Any) -> None:
    atomic_write_text(path, json.dumps(data, indent=2, sort_keys=True) + "\n")


def read_json(path: str | Path) -> Any:
    return json.loads(Path(path).read_text())


def is_gcs(uri: str) -> bool:
    return uri.startswith("gs://")


def join(base: str, name: str) -> str:
    """`base/name` for a local path or a gs:// prefix."""
    return f"{base.rstrip('/')}/{name}" if is_gcs(base) else str(Path(base) / name)


def split_gcs(uri: str) -> tuple[str, str]:
    """(bucket, key) of a gs:// URI."""
    bucket, _, key = uri[len("gs://") :].partition("/")
    if not bucket:
        raise DataError(f"{uri}: expected gs://<bucket>/<path>")
    return bucket, key


def gcs_client() -> Any:
    """A storage client: default credentials, or anonymous against STORAGE_EMULATOR_HOST."""
    from google.auth.exceptions import DefaultCredentialsError
    from google.cloud import storage

    if os.environ.get("STORAGE_EMULATOR_HOST"):
        from google.auth.credentials import AnonymousCredentials

        project = os.environ.get("GOOGLE_CLOUD_PROJECT", "local")
        return storage.Client(project=project, credentials=AnonymousCredentials())
    try:
        return storage.Client()
    except DefaultCredentialsError as exc:
        raise DataError(
            f"gs://: no Google Cloud credentials ({exc}); run `gcloud auth application-default "
            "login` or set GOOGLE_APPLICATION_CREDENTIALS"
        ) from exc


def gcs_list(uri: str, prefix: str) -> list[str]:
    """Names of the objects under `prefix` in the bucket of `uri`."""
    from google.api_core.exceptions import GoogleAPICallError

    bucket, _ = split_gcs(uri)
    try:
        return [b.name for b in gcs_client().list_blobs(bucket, prefix=prefix)]
    except GoogleAPICallError as exc:  # no such bucket, no permission, ...
        raise DataError(f"{uri}: cannot be listed: {exc}") from exc


def open_binary(uri: str) -> IO[bytes]:
    """A readable binary stream of a local file or a gs:// object (streamed, not downloaded)."""
    if is_gcs(uri):
        from google.api_core.exceptions import GoogleAPICallError, NotFound

        bucket, key = split_gcs(uri)
        try:
            return gcs_client().bucket(bucket).blob(key).open("rb")
        except NotFound as exc:
            raise DataError(f"{uri}: no such object") from exc
        except GoogleAPICallError as exc:
            raise DataError(f"{uri}: cannot be read: {exc}") from exc
    if not Path(uri).is_file():
        raise DataError(f"{uri}: no such file")
    return open(uri, "rb")  # noqa: SIM115 - the caller closes it


def exists(uri: str) -> bool:
    """Whether a local file or a gs:// object is there."""
    if is_gcs(uri):
        from google.api_core.exceptions import GoogleAPICallError

        bucket, key = split_gcs(uri)
        try:
            return bool(key) and gcs_client().bucket(bucket).blob(key).exists()
        except GoogleAPICallError as exc:
            raise DataError(f"{uri}: cannot be checked: {exc}") from exc
    return Path(uri).is_file()


def gcs_upload(local: str | Path, uri: str) -> None:
    """Upload a finished local file to a gs:// object (GCS objects appear whole or not at all)."""
    from google.api_core.exceptions import GoogleAPICallError

    bucket, key = split_gcs(uri)
    try:
        gcs_client().bucket(bucket).blob(key).upload_from_filename(str(local))
    except GoogleAPICallError as exc:
        raise DataError(f"{uri}: cannot be written: {exc}") from exc
