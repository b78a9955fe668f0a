"""Where the landing zone's objects live: a folder (`LakeFolder`) or an S3-compatible bucket (`LakeBucket`).

The lake names everything by key (`users/district=oak/<batch>/part-00000.parquet`, `_state/district=oak/…`), and
both stores replace a whole object atomically: a folder by writing beside the file and renaming it over, a bucket
because a PUT is atomic. A bucket cannot rename, so the lake stages a batch elsewhere and copies it into place
(lake.py); only a folder offers `rename_folder`.

`ROSTER_LAKE_URL=s3://bucket/prefix/` puts the lake on a bucket, with the credentials of the standard AWS variables
(the same ones as the roster's files, object_storage.py); any worker can then fetch or publish any district.
"""

from __future__ import annotations

import io
import os
import shutil
import time
from abc import ABC, abstractmethod
from collections.abc import Iterable, Mapping
from datetime import timedelta
from pathlib import Path
from typing import TYPE_CHECKING
from urllib.parse import urlsplit

import obstore
import polars as pl
from obstore.exceptions import NotFoundError
from obstore.store import S3Store

from roster_pipeline.store.object_storage import on_object_storage, s3_secret_options

if TYPE_CHECKING:
    from obstore.store import ClientConfig, RetryConfig, S3Config


class LakeStore(ABC):
    """Whole objects by key: read, replace atomically, list by prefix, delete."""

    renames = False  # whether a folder of objects can be renamed at once (a file system; not a bucket)

    @abstractmethod
    def read(self, key: str) -> bytes | None:
        """The object's bytes, or None when there is none."""

    @abstractmethod
    def write(self, key: str, content: bytes) -> None:
        """Replace the object whole: a reader sees the old content or the new, never a mix."""

    @abstractmethod
    def delete(self, keys: Iterable[str]) -> None:
        """Remove the objects (one already gone is not an error)."""

    @abstractmethod
    def keys(self, prefix: str) -> list[str]:
        """Every key under `prefix` (a folder, ending in `/`), at any depth, sorted."""

    @abstractmethod
    def age(self, key: str) -> float | None:
        """Seconds since the object was last written, or None when there is none."""

    @abstractmethod
    def location(self, key: str) -> str:
        """What a Parquet reader (DuckDB, Polars) opens for the object: a path, or an `s3://` URL."""

    @abstractmethod
    def copy(self, source: str, target: str) -> None:
        """Copy one object to another key (within the store)."""

    def remove_prefix(self, prefix: str) -> None:
        """Remove every object under `prefix` (a folder, ending in `/`)."""
        self.delete(self.keys(prefix))

    def write_parquet(self, key: str, frame: pl.DataFrame) -> int:
        """Write `frame` as a zstd Parquet object with statistics; returns its size in bytes."""
        buffer = io.BytesIO()
        frame.write_parquet(buffer, compression="zstd", statistics=True)
        self.write(key, buffer.getvalue())
        return buffer.tell()

    def scan_parquet(self, keys: list[str]) -> pl.LazyFrame:
        """The objects as one lazy frame (all of one schema)."""
        frames = []
        for key in keys:
            content = self.read(key)
            if content is None:
                raise FileNotFoundError(self.location(key))
            frames.append(pl.read_parquet(io.BytesIO(content)).lazy())
        return pl.concat(frames)


class LakeFolder(LakeStore):
    """The lake as a folder (the default `<data folder>/lake`, or a volume every worker mounts)."""

    renames = True

    def __init__(self, root: Path) -> None:
        self.root = Path(root)

    def path(self, key: str) -> Path:
        return self.root / key

    def read(self, key: str) -> bytes | None:
        try:
            return self.path(key).read_bytes()
        except FileNotFoundError:
            return None

    def write(self, key: str, content: bytes) -> None:
        write_atomic(self.path(key), content)

    def delete(self, keys: Iterable[str]) -> None:
        for key in keys:
            self.path(key).unlink(missing_ok=True)

    def keys(self, prefix: str) -> list[str]:
        folder = self.path(prefix)
        if not folder.is_dir():
            return []
        return sorted(str(p.relative_to(self.root)) for p in folder.rglob("*") if p.is_file())

    def age(self, key: str) -> float | None:
        try:
            return time.time() - self.path(key).stat().st_mtime
        except FileNotFoundError:
            return None

    def location(self, key: str) -> str:
        return str(self.path(key))

    def copy(self, source: str, target: str) -> None:
        self.path(target).parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(self.path(source), self.path(target))

    def scan_parquet(self, keys: list[str]) -> pl.LazyFrame:
        return pl.scan_parquet([self.location(key) for key in keys])

    def write_parquet(self, key: str, frame: pl.DataFrame) -> int:
        path = self.path(key)
        path.parent.mkdir(parents=True, exist_ok=True)
        frame.write_parquet(path, compression="zstd", statistics=True)
        return path.stat().st_size

    def rename_folder(self, source: str, target: str) -> None:
        """Move a folder into place in one step (a reader sees all of it or none)."""
        os.replace(self.path(source), self.path(target))

    def remove_prefix(self, prefix: str) -> None:
        shutil.rmtree(self.path(prefix), ignore_errors=True)


class LakeBucket(LakeStore):
    """The lake on S3-compatible object storage, `s3://bucket/prefix/` (`ROSTER_LAKE_URL`)."""

    def __init__(self, url: str, environ: Mapping[str, str] = os.environ) -> None:
        parts = urlsplit(url)
        if parts.scheme != "s3" or not parts.netloc:
            raise ValueError(f"ROSTER_LAKE_URL must be s3://bucket/prefix/, not {url!r}")
        self.url = f"s3://{parts.netloc}/{parts.path.strip('/')}".rstrip("/") + "/"
        self._store = _s3_store(url, environ)

    def read(self, key: str) -> bytes | None:
        try:
            return obstore.get(self._store, key).bytes().to_bytes()
        except (NotFoundError, FileNotFoundError):
            return None

    def write(self, key: str, content: bytes) -> None:
        obstore.put(self._store, key, content)

    def delete(self, keys: Iterable[str]) -> None:
        listed = list(keys)
        if listed:
            obstore.delete(self._store, listed)

    def keys(self, prefix: str) -> list[str]:
        found = [meta["path"] for chunk in obstore.list(self._store, prefix=prefix.rstrip("/")) for meta in chunk]
        return sorted(key for key in found if key.startswith(prefix))

    def age(self, key: str) -> float | None:
        try:
            written = obstore.head(self._store, key)["last_modified"]
        except (NotFoundError, FileNotFoundError):
            return None
        return time.time() - written.timestamp()

    def location(self, key: str) -> str:
        return self.url + key

    def copy(self, source: str, target: str) -> None:
        obstore.copy(self._store, source, target)


def open_lake_store(root: Path | str) -> LakeStore:
    """The store a lake root names: an `s3://` URL is a bucket, anything else a folder."""
    if isinstance(root, str) and on_object_storage(root):
        return LakeBucket(root)
    return LakeFolder(Path(root))


def _s3_store(url: str, environ: Mapping[str, str]) -> S3Store:
    """The bucket's client, with the credentials of the AWS variables read as for the roster's files (a missing one
    is an error naming it); retries are bounded so a dead endpoint fails the step instead of hanging it."""
    parts = urlsplit(url)
    options = s3_secret_options(url, environ, "the lake is")
    config: S3Config = {
        "access_key_id": str(options["KEY_ID"]),
        "secret_access_key": str(options["SECRET"]),
        "region": str(options["REGION"]),
    }
    client: ClientConfig = {"timeout": timedelta(seconds=60)}
    if "SESSION_TOKEN" in options:
        config["session_token"] = str(options["SESSION_TOKEN"])
    if "ENDPOINT" in options:
        scheme = "https" if options["USE_SSL"] else "http"
        config["endpoint"] = f"{scheme}://{options['ENDPOINT']}"
        client["allow_http"] = scheme == "http"
    retry: RetryConfig = {"max_retries": 3, "retry_timeout": timedelta(seconds=30)}
    prefix = parts.path.strip("/") or None
    return S3Store(parts.netloc, prefix=prefix, config=config, client_options=client, retry_config=retry)


def write_atomic(path: Path, content: bytes) -> None:
    """Replace ``path`` with ``content`` whole, durably: a crash leaves the old content or the new, never a mix.

    The temporary file is flushed to disk before the rename, and the folder after it: without the first, a power
    cut can leave the renamed file empty; without the second, the rename itself may be lost."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{os.urandom(4).hex()}.tmp")
    try:
        with tmp.open("wb") as file:
            file.write(content)
            file.flush()
            os.fsync(file.fileno())
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    folder = os.open(path.parent, os.O_RDONLY)
    try:
        os.fsync(folder)
    finally:
        os.close(folder)
