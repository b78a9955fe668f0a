"""The Parquet landing zone and the per-(district, endpoint) sync state.

Each fetch lands one immutable *batch*: ``lake/<endpoint>/district=<id>/<batch_id>/part-NNNNN.parquet`` plus a
``_batch.json`` manifest. A batch is staged elsewhere and put into place only when complete (renamed in a
folder; copied, manifest last, on a bucket), so a fetch that fails half-way leaves nothing a publish could pick
up. Batch ids sort by time, and the DuckDB publish applies every batch it has not applied yet, in order — the
lake is the log, DuckDB the state.

Watermarks and sync-run records are small files in each district's state folder (see district_state.py): fetch
assets never open DuckDB, so many districts fetch in parallel. The publish mirrors them into ``ops.watermarks``
and ``ops.sync_runs``.
"""

from __future__ import annotations

import shutil
import time
import uuid
from collections.abc import Iterator
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import orjson
import polars as pl

from roster_pipeline.oneroster.flatten import lake_schema
from roster_pipeline.store.district_state import STATE_FOLDER, DistrictState
from roster_pipeline.store.lake_store import LakeFolder, open_lake_store
from roster_pipeline.store.process_owners import owner_gone, owner_record

BATCH_MANIFEST = "_batch.json"
INCOMING = "_incoming"  # on a bucket: batches being written (see BatchWriter)
PRUNING = "_pruning"  # on a bucket: batches being deleted (see Lake.prune)
BATCH_OWNER = "_owner.json"  # in a batch being written: which process writes it (see clean_abandoned)
# A temporary batch without an owner record (written by an older version) counts as abandoned after this long.
ABANDONED_AFTER_S = 24 * 3600
# A state file's temporary copy lives for the milliseconds of one write; one this old was left by a killed writer.
STATE_TMP_ABANDONED_AFTER_S = 3600
# Rows a batch writer holds before writing them as one Parquet part. A large district's endpoints land side by side,
# each buffering this many rows and briefly several times that while a part is concatenated and encoded: at 50,000
# a 20,000-student district's fetch peaked ~55 MB higher than at 10,000 (bench/large_district.py).
PART_ROWS = 10_000


@dataclass(frozen=True)
class Batch:
    """A complete landed batch of one endpoint for one district."""

    endpoint: str
    district_id: str
    batch_id: str
    prefix: str  # the batch's folder in the lake (`<endpoint>/district=<id>/<batch_id>/`)
    files: list[str]  # its Parquet parts, as a reader opens them (paths, or `s3://` URLs)
    mode: str
    records: int
    watermark_from: str | None
    watermark_to: str | None
    malformed: int = 0
    committed_at: str | None = None
    malformed_ids: tuple[str, ...] | None = None  # sourcedIds of the malformed records, when all are known
    # A REST full batch may tombstone only the unseen records it confirmed gone (see confirmations.py); the
    # unseen ones it could not confirm are held, and named so the next full sync asks about them again.
    confirm_unseen: bool = False
    confirmed_gone: tuple[str, ...] = ()
    held: tuple[str, ...] = ()

    @property
    def snapshot_at(self) -> datetime | None:
        """When the batch's source snapshot began: the fetch start as the server saw it (a CSV bundle's delivery
        time), else its commit time."""
        return _instant(self.watermark_to or self.committed_at)

    @property
    def committed(self) -> datetime:
        """When the batch was committed (the far future for a manifest that lacks it, so it is never pruned)."""
        return _instant(self.committed_at) or datetime.max.replace(tzinfo=UTC)


@dataclass
class SyncRunRecord:
    """One fetch attempt, as ``ops.sync_runs`` will show it."""

    run_id: str
    district_id: str
    endpoint: str
    mode: str
    started_at: str
    finished_at: str
    outcome: str
    records: int = 0
    pages: int = 0
    bytes: int = 0
    tombstones: int = 0
    watermark_from: str | None = None
    watermark_to: str | None = None
    batch_id: str | None = None
    error: str | None = None
    extra: dict[str, Any] = field(default_factory=dict)


class BatchWriter:
    """Buffers flattened pages and writes them as Parquet parts of one batch; `commit` publishes the batch.

    The parts are staged where no listing of batches looks: in a folder lake, a dot-named folder beside the
    batches, renamed into place on commit; on a bucket (which cannot rename), under `_incoming/`, copied into
    place on commit with the manifest written last — a batch exists only once its manifest does."""

    def __init__(self, lake: Lake, endpoint: str, district_id: str, batch_id: str) -> None:
        self.lake, self.endpoint, self.district_id, self.batch_id = lake, endpoint, district_id, batch_id
        self.staging = lake.staging_prefix(endpoint, district_id, batch_id)
        lake.store.write(self.staging + BATCH_OWNER, orjson.dumps(owner_record()))
        self._buffer: list[pl.DataFrame] = []
        self._buffered = 0
        self._parts = 0
        self.records = 0
        self.bytes = 0

    def append(self, frame: pl.DataFrame) -> None:
        if frame.height == 0:
            return
        self._buffer.append(frame)
        self._buffered += frame.height
        self.records += frame.height
        if self._buffered >= PART_ROWS:
            self._flush()

    def _flush(self) -> None:
        if not self._buffer and self._parts:
            return
        frame = pl.concat(self._buffer) if self._buffer else pl.DataFrame(schema=lake_schema(self.endpoint))
        self.bytes += self.lake.store.write_parquet(f"{self.staging}part-{self._parts:05d}.parquet", frame)
        self._parts += 1
        self._buffer, self._buffered = [], 0

    def commit(
        self, mode: str, watermark_from: str | None, watermark_to: str | None, *, malformed: int = 0, **extra: Any
    ) -> Batch:
        """Write the remaining rows and the manifest, then put the batch into place (atomic).

        ``malformed`` counts source records that could not be landed (the mass-deletion guard weighs them);
        ``extra`` is kept in the manifest (e.g. the CSV bundle a batch came from)."""
        self._flush()
        # The batch is named when it is committed, not when it started, so batch ids sort in commit order:
        # the order the publish applies them in.
        self.batch_id = new_batch_id()
        final = self.lake.batch_prefix(self.endpoint, self.district_id, self.batch_id)
        manifest = {
            "endpoint": self.endpoint,
            "district_id": self.district_id,
            "batch_id": self.batch_id,
            "mode": mode,
            "records": self.records,
            "watermark_from": watermark_from,
            "watermark_to": watermark_to,
            "malformed": malformed,
            "committed_at": now_iso(),
            **extra,
        }
        content = orjson.dumps(manifest, option=orjson.OPT_INDENT_2)
        store = self.lake.store
        if isinstance(store, LakeFolder):
            store.write(self.staging + BATCH_MANIFEST, content)
            store.delete([self.staging + BATCH_OWNER])
            store.rename_folder(self.staging, final)
        else:
            # Where the copies go is noted first, so a commit killed half-way is cleaned up whole.
            store.write(self.staging + BATCH_OWNER, orjson.dumps({**owner_record(), "committing_to": final}))
            parts = [key for key in store.keys(self.staging) if key.endswith(".parquet")]
            for key in parts:
                store.copy(key, final + key[len(self.staging) :])
            store.write(final + BATCH_MANIFEST, content)
            store.delete([*parts, self.staging + BATCH_OWNER])
        return self.lake.read_batch(final)

    def abort(self) -> None:
        self.lake.store.remove_prefix(self.staging)


class Lake:
    """The landing zone: a folder (``<data folder>/lake`` by default) or an `s3://` bucket (`ROSTER_LAKE_URL`)."""

    def __init__(self, root: Path | str) -> None:
        self.store = open_lake_store(root)

    @property
    def root(self) -> Path:
        """The lake's folder (a lake on a bucket has none)."""
        assert isinstance(self.store, LakeFolder), "a lake on object storage has no folder"
        return self.store.root

    def district_prefix(self, endpoint: str, district_id: str) -> str:
        return f"{endpoint}/district={district_id}/"

    def batch_prefix(self, endpoint: str, district_id: str, batch_id: str) -> str:
        return f"{self.district_prefix(endpoint, district_id)}{batch_id}/"

    def staging_prefix(self, endpoint: str, district_id: str, batch_id: str) -> str:
        if isinstance(self.store, LakeFolder):
            return f"{self.district_prefix(endpoint, district_id)}.tmp-{batch_id}/"
        return f"{INCOMING}/{self.district_prefix(endpoint, district_id)}{batch_id}/"

    def state(self, district_id: str) -> DistrictState:
        """The district's state folder: watermarks, run records, markers and logs."""
        return DistrictState(self.store, district_id)

    def new_batch(self, endpoint: str, district_id: str) -> BatchWriter:
        return BatchWriter(self, endpoint, district_id, new_batch_id())

    def read_batch(self, prefix: str, keys: list[str] | None = None) -> Batch:
        """The batch whose folder is `prefix` (its keys, when already listed); FileNotFoundError when it has no
        manifest (not committed, or being pruned)."""
        content = self.store.read(prefix + BATCH_MANIFEST)
        if content is None:
            raise FileNotFoundError(self.store.location(prefix + BATCH_MANIFEST))
        manifest = orjson.loads(content)
        listed = self.store.keys(prefix) if keys is None else keys
        return Batch(
            endpoint=manifest["endpoint"],
            district_id=manifest["district_id"],
            batch_id=manifest["batch_id"],
            prefix=prefix,
            files=[self.store.location(key) for key in listed if _is_part(key, prefix)],
            mode=manifest["mode"],
            records=manifest["records"],
            watermark_from=manifest.get("watermark_from"),
            watermark_to=manifest.get("watermark_to"),
            malformed=manifest.get("malformed", 0),
            committed_at=manifest.get("committed_at"),
            malformed_ids=tuple(manifest["malformed_ids"]) if manifest.get("malformed_ids") is not None else None,
            confirm_unseen=bool(manifest.get("confirm_unseen", False)),
            confirmed_gone=tuple(manifest.get("confirmed_gone") or ()),
            held=tuple(manifest.get("held") or ()),
        )

    def batches(self, endpoint: str, district_id: str) -> list[Batch]:
        """Complete batches in landing order."""
        under = self.district_prefix(endpoint, district_id)
        folders: dict[str, list[str]] = {}
        for key in self.store.keys(under):
            name = key[len(under) :].split("/", 1)[0]
            if not name.startswith("."):
                folders.setdefault(name, []).append(key)
        found = []
        for name, keys in sorted(folders.items()):
            if f"{under}{name}/{BATCH_MANIFEST}" not in keys:  # not committed, or being pruned
                continue
            try:
                found.append(self.read_batch(f"{under}{name}/", keys))
            except FileNotFoundError:  # pruned while we listed
                continue
        return found

    def scan(self, batch: Batch) -> pl.LazyFrame:
        """The batch's records."""
        return self.store.scan_parquet([batch.prefix + file.rsplit("/", 1)[-1] for file in batch.files])

    def live_ids(self, endpoint: str, district_id: str) -> set[str]:
        """The sourcedIds whose newest landed observation is active: what a full sync that does not see them
        must ask about before they may be tombstoned.

        Replays the kept batches in commit order; a record leaves the set only when a batch lands it inactive
        or a full batch confirmed it gone, never merely by being unseen (that is what confirmation decides).
        """
        live: set[str] = set()
        for batch in self.batches(endpoint, district_id):
            if batch.files:
                frame = self.scan(batch).select("sourced_id", "status").collect()
                active = frame.filter(pl.col("status") == "active")["sourced_id"]
                live.difference_update(frame.filter(pl.col("status") != "active")["sourced_id"].to_list())
                live.update(active.to_list())
            live.update(batch.held)
            live.difference_update(batch.confirmed_gone)
        return live

    def prune(self, batches: list[Batch]) -> int:
        """Delete landed batches (the publish decides which are superseded); returns how many went.

        A half-deleted batch must never look like a complete one: in a folder, each is first renamed to a hidden
        name; on a bucket, its manifest goes first (after a note under `_pruning/`, so a prune killed half-way
        is finished by `clean_abandoned`)."""
        for batch in batches:
            if isinstance(self.store, LakeFolder):
                doomed = f"{batch.prefix.rsplit('/', 2)[0]}/.pruned-{batch.batch_id}/"
                self.store.rename_folder(batch.prefix, doomed)
                self.store.remove_prefix(doomed)
            else:
                note = f"{PRUNING}/{batch.prefix.rstrip('/')}"
                self.store.write(note, b"")
                self.store.delete([batch.prefix + BATCH_MANIFEST])
                self.store.remove_prefix(batch.prefix)
                self.store.delete([note])
        return len(batches)

    def clean_abandoned(self) -> list[str]:
        """Delete what killed runs left in the lake: batches half-written by a process that no longer exists, and
        half-deleted pruned batches. A batch a live process is still writing is never touched. Returns what went."""
        if isinstance(self.store, LakeFolder):
            return self._clean_folder(self.store)
        return self._clean_bucket()

    def _clean_folder(self, store: LakeFolder) -> list[str]:
        removed = []
        for path in sorted(store.root.glob("*/district=*/.*")):
            if path.name.startswith(".pruned-") or (path.name.startswith(".tmp-") and _abandoned(path)):
                shutil.rmtree(path, ignore_errors=True)
                removed.append(str(path))
        for path in sorted((store.root / STATE_FOLDER).glob("district=*/**/.*.tmp")):
            if _older_than(path, STATE_TMP_ABANDONED_AFTER_S):  # a state write killed between write and rename
                path.unlink(missing_ok=True)
                removed.append(str(path))
        return removed

    def _clean_bucket(self) -> list[str]:
        """Staged batches whose writer is gone (or silent for a day: a writer on another host cannot be asked),
        with whatever a killed commit had copied into place; and prunes killed half-way, finished."""
        removed = []
        staged: dict[str, list[str]] = {}
        for key in self.store.keys(f"{INCOMING}/"):
            staged.setdefault(key.rsplit("/", 1)[0] + "/", []).append(key)
        for prefix, keys in sorted(staged.items()):
            owner = self.store.read(prefix + BATCH_OWNER)
            record = _owner(owner)
            age = self.store.age(keys[0]) or 0.0
            if not (owner_gone(record) or age > ABANDONED_AFTER_S):
                continue
            target = record.get("committing_to")
            if isinstance(target, str) and self.store.read(target + BATCH_MANIFEST) is None:
                self.store.remove_prefix(target)
            self.store.delete(keys)
            removed.append(self.store.location(prefix))
        for note in self.store.keys(f"{PRUNING}/"):
            prefix = note[len(PRUNING) + 1 :] + "/"
            self.store.delete([prefix + BATCH_MANIFEST])
            self.store.remove_prefix(prefix)
            self.store.delete([note])
            removed.append(self.store.location(prefix))
        return removed

    def watermark(self, district_id: str, endpoint: str) -> str | None:
        state = self.state(district_id).watermark(endpoint).read()
        return state.get("watermark") if state else None

    def set_watermark(self, district_id: str, endpoint: str, watermark: str, batch_id: str) -> None:
        state = {"watermark": watermark, "batch_id": batch_id, "updated_at": now_iso()}
        self.state(district_id).watermark(endpoint).write(state)

    def watermarks(self, district_id: str) -> dict[str, dict[str, Any]]:
        return self.state(district_id).watermarks()

    def record_run(self, run: SyncRunRecord) -> None:
        """Keep a fetch attempt's record (one file per attempt: parallel fetches never share a file)."""
        self.state(run.district_id).new_run_record(run.started_at, run.endpoint).write(asdict(run))

    def run_records(self, district_id: str) -> Iterator[tuple[str, dict[str, Any]]]:
        """(file name, record) of the district's fetch attempts, oldest first."""
        return self.state(district_id).run_records()


def _older_than(path: Path, seconds: float) -> bool:
    try:
        return time.time() - path.stat().st_mtime > seconds
    except FileNotFoundError:  # renamed into place (committed) or removed meanwhile
        return False


def _is_part(key: str, prefix: str) -> bool:
    name = key[len(prefix) :]
    return name.startswith("part-") and name.endswith(".parquet") and "/" not in name


def _owner(content: bytes | None) -> dict[str, Any]:
    try:
        record = orjson.loads(content) if content else {}
    except orjson.JSONDecodeError:  # half of one: judged by age
        return {}
    return record if isinstance(record, dict) else {}


def _abandoned(tmp_batch: Path) -> bool:
    try:
        return owner_gone(orjson.loads((tmp_batch / BATCH_OWNER).read_bytes()))
    except (FileNotFoundError, orjson.JSONDecodeError):  # no owner record, or half of one: judge by age
        return _older_than(tmp_batch, ABANDONED_AFTER_S)


def new_batch_id() -> str:
    """A batch id that sorts by landing time and never collides between parallel fetches."""
    return datetime.now(UTC).strftime("%Y%m%dT%H%M%S%fZ") + "-" + uuid.uuid4().hex[:8]


def _instant(text: str | None) -> datetime | None:
    return datetime.fromisoformat(text.replace("Z", "+00:00")) if text else None


def now_iso(timespec: str = "microseconds") -> str:
    """The current UTC instant as ISO-8601 with a `Z`, the form every timestamp we write takes."""
    return datetime.now(UTC).isoformat(timespec=timespec).replace("+00:00", "Z")
