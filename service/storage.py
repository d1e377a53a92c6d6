"""Local paths and Cloud Storage (`gs://bucket/prefix`) behind the same few functions, so the
service, training and the batch command read and write either. The only module that knows
what `gs://` means.

Uses the official `google-cloud-storage` client: on Google Cloud it finds the credentials of
the service account it runs as; `STORAGE_EMULATOR_HOST` points it at a local emulator (the
tests do). Every failure is a StorageError whose message is one line naming the URI.
"""

from __future__ import annotations

import functools
import shutil
import tempfile
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from google.cloud.storage import Client

SCHEME = "gs://"
# Downloads and uploads at once: Cloud Storage answers each small object in milliseconds, so
# a folder of photos goes as fast as the connection pool lets it.
TRANSFER_THREADS = 16


class StorageError(Exception):
    """A folder or file cannot be read or written; the message names it and says why."""


def is_remote(location: str | Path) -> bool:
    return str(location).startswith(SCHEME)


def split_uri(uri: str) -> tuple[str, str]:
    """`gs://bucket/some/prefix/` -> (`bucket`, `some/prefix`)."""
    bucket, _, prefix = uri.removeprefix(SCHEME).partition("/")
    if not bucket:
        raise StorageError(f"{uri}: no bucket name after {SCHEME}")
    return bucket, prefix.strip("/")


def join(location: str | Path, name: str) -> str:
    """`name` inside the folder `location`, local or remote."""
    if is_remote(location):
        return f"{str(location).rstrip('/')}/{name}"
    return str(Path(location) / name)


def list_files(location: str | Path) -> list[str]:
    """Every file below `location`, recursively, sorted; hidden names (starting with `.`)
    left out. Local paths come back as paths, remote ones as `gs://` URIs."""
    if not is_remote(location):
        root = Path(location)
        if not root.is_dir():
            raise StorageError(f"{root}: folder not found")
        return sorted(
            str(path)
            for path in root.rglob("*")
            if path.is_file() and not any(p.startswith(".") for p in path.relative_to(root).parts)
        )
    uri = str(location)
    bucket, prefix = split_uri(uri)
    names = [
        name
        for name in _object_names(uri, bucket, prefix)
        if not any(part.startswith(".") for part in name.split("/"))
    ]
    return [f"{SCHEME}{bucket}/{name}" for name in sorted(names)]


def read_bytes(location: str | Path) -> bytes:
    if not is_remote(location):
        return Path(location).read_bytes()
    uri = str(location)
    bucket, name = split_uri(uri)
    with _errors(uri):
        return _client().bucket(bucket).blob(name).download_as_bytes()


def write_file(local: Path, location: str | Path) -> None:
    """Put the local file `local` at `location` (a local path or a `gs://` object)."""
    if not is_remote(location):
        Path(location).parent.mkdir(parents=True, exist_ok=True)
        if Path(location).resolve() != local.resolve():
            shutil.copyfile(local, location)
        return
    uri = str(location)
    bucket, name = split_uri(uri)
    with _errors(uri):
        _client().bucket(bucket).blob(name).upload_from_filename(str(local))


def write_bytes(data: bytes, location: str | Path) -> None:
    """Put `data` at `location` (a local path, its folders made, or a `gs://` object)."""
    if not is_remote(location):
        Path(location).parent.mkdir(parents=True, exist_ok=True)
        Path(location).write_bytes(data)
        return
    uri = str(location)
    bucket, name = split_uri(uri)
    with _errors(uri):
        _client().bucket(bucket).blob(name).upload_from_string(data)


def fetch_folder(location: str | Path, required_file: str | None = None) -> Path:
    """A local folder with the contents of `location`: the path itself when local, else a
    fresh temporary copy of everything below the `gs://` prefix. With `required_file`, a
    remote folder without that file is refused before anything is downloaded."""
    if not is_remote(location):
        return Path(location)
    uri = str(location).rstrip("/")
    files = list_files(uri)
    if not files:
        raise StorageError(f"{uri}: no such folder (nothing stored under this prefix)")
    if required_file and join(uri, required_file) not in files:
        raise StorageError(f"{uri}: not a model folder (no {required_file})")
    target = Path(tempfile.mkdtemp(prefix="gcs-"))
    _, prefix = split_uri(uri)

    def download(file_uri: str) -> None:
        _, name = split_uri(file_uri)
        local = target / name.removeprefix(prefix).lstrip("/")
        local.parent.mkdir(parents=True, exist_ok=True)
        local.write_bytes(read_bytes(file_uri))

    with ThreadPoolExecutor(TRANSFER_THREADS) as pool:
        list(pool.map(download, files))
    return target


def upload_folder(local: Path, location: str | Path, last: str | None = None) -> None:
    """Copy every file below the local folder `local` to `location` (local or `gs://`); the
    file named `last` (relative to `local`) only once every other one is there, so a reader
    that waits for it never sees the folder half written."""
    files = [path for path in sorted(local.rglob("*")) if path.is_file()]
    if not is_remote(location):
        if Path(location).resolve() != local.resolve():
            shutil.copytree(local, location, dirs_exist_ok=True)
        return

    def upload(path: Path) -> None:
        write_file(path, join(location, path.relative_to(local).as_posix()))

    final = [path for path in files if path.relative_to(local).as_posix() == last]
    with ThreadPoolExecutor(TRANSFER_THREADS) as pool:
        list(pool.map(upload, [path for path in files if path not in final]))
    for path in final:
        upload(path)


def _object_names(uri: str, bucket: str, prefix: str) -> Iterator[str]:
    folder = f"{prefix}/" if prefix else ""
    with _errors(uri):
        blobs = list(_client().list_blobs(bucket, prefix=folder))
    return (blob.name for blob in blobs if not blob.name.endswith("/"))


@functools.cache
def _client() -> Client:
    """One client per process (it holds a connection pool), made on first use: a service
    that serves a local model never imports the library."""
    from google.cloud import storage

    return storage.Client()


@contextmanager
def _errors(uri: str) -> Iterator[None]:
    """Turn the client's exceptions into one StorageError line naming `uri`."""
    from google.api_core import exceptions as api
    from google.auth import exceptions as auth

    try:
        yield
    except auth.DefaultCredentialsError as error:
        reason = (
            "no access: no Google Cloud credentials found (run on Google Cloud, or "
            "`gcloud auth application-default login`)"
        )
        raise StorageError(f"{uri}: {reason}") from error
    except (api.Forbidden, api.Unauthorized) as error:
        raise StorageError(f"{uri}: no access ({_first_line(error)})") from error
    except api.NotFound as error:
        bucket, _ = split_uri(uri)
        reason = "not found" if _bucket_exists(bucket) else f"no such bucket: {bucket}"
        raise StorageError(f"{uri}: {reason}") from error
    except (api.GoogleAPICallError, auth.GoogleAuthError, OSError) as error:
        raise StorageError(f"{uri}: {_first_line(error)}") from error


def _bucket_exists(bucket: str) -> bool:
    from google.api_core import exceptions as api

    try:
        return _client().lookup_bucket(bucket) is not None
    except api.GoogleAPICallError:
        return False


def _first_line(error: BaseException) -> str:
    text = str(error).strip()
    return text.splitlines()[0] if text else type(error).__name__
