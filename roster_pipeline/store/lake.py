"""The Parquet landing zone and the per-(district, endpoint) sync state.

Each fetch lands one immutable *batch*: ``lake/<endpoint>/district=<id>/<batch_id>/part-NNNNN.parquet`` plus a
``_batch.json`` manifest. A batch is written under a temporary name and renamed into place only when complete,
so a fetch that fails half-way leaves nothing a publish could pick up. Batch ids sort by time, and the DuckDB
publish applies every batch it has not applied yet, in order — the lake is the log, DuckDB the state.

Watermarks and sync-run records are small files in each district's state folder (see district_state.py): fetch
assets never open DuckDB, so many districts fetch in parallel. The publish mirrors them into ``ops.watermarks``
and ``ops.sync_runs``.
"""

from __future__ import annotations

import os
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
from roster_pipeline.store.district_state import STATE_FOLDER, DistrictState, write_atomic
from roster_pipeline.store.process_owners import owner_gone, owner_record

BATCH_MANIFEST = "_batch.json"
BATCH_OWNER = "_owner.json"  # in a batch being written: which process writes it (see clean_abandoned)
# A temporary batch without an owner record (written by an older version) counts as abandoned after this long.
ABANDONED_AFTER_S = 24 * 3600
# A state file's temporary copy lives for the milliseconds of one write; one this old was left by a killed writer.
STATE_TMP_ABANDONED_AFTER_S = 3600
PART_ROWS = 50_000


@dataclass(frozen=True)
class Batch:
    """A complete landed batch of one endpoint for one district."""

    endpoint: str
    district_id: str
    batch_id: str
    path: Path
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

    @property
    def files(self) -> list[str]:
        return sorted(str(p) for p in self.path.glob("part-*.parquet"))


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
    """Buffers flattened pages and writes them as Parquet parts of one batch; `commit` publishes the batch."""

    def __init__(self, lake: Lake, endpoint: str, district_id: str, batch_id: str) -> None:
        self.lake, self.endpoint, self.district_id, self.batch_id = lake, endpoint, district_id, batch_id
        self.tmp_path = lake.district_dir(endpoint, district_id) / f".tmp-{batch_id}"
        self.tmp_path.mkdir(parents=True, exist_ok=True)
        write_atomic(self.tmp_path / BATCH_OWNER, orjson.dumps(owner_record()))
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
        part = self.tmp_path / f"part-{self._parts:05d}.parquet"
        frame.write_parquet(part, compression="zstd", statistics=True)
        self.bytes += part.stat().st_size
        self._parts += 1
        self._buffer, self._buffered = [], 0

    def commit(
        self, mode: str, watermark_from: str | None, watermark_to: str | None, *, malformed: int = 0, **extra: Any
    ) -> Batch:
        """Write the remaining rows and the manifest, then rename the batch into place (atomic).

        ``malformed`` counts source records that could not be landed (the mass-deletion guard weighs them);
        ``extra`` is kept in the manifest (e.g. the CSV bundle a batch came from)."""
        self._flush()
        # The batch is named when it is committed, not when it started, so batch ids sort in commit order:
        # the order the publish applies them in.
        self.batch_id = new_batch_id()
        final_path = self.lake.district_dir(self.endpoint, self.district_id) / self.batch_id
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
        (self.tmp_path / BATCH_MANIFEST).write_bytes(orjson.dumps(manifest, option=orjson.OPT_INDENT_2))
        (self.tmp_path / BATCH_OWNER).unlink()
        os.replace(self.tmp_path, final_path)
        return self.lake.read_batch(final_path)

    def abort(self) -> None:
        shutil.rmtree(self.tmp_path, ignore_errors=True)


class Lake:
    """The landing zone rooted at ``<data folder>/lake``."""

    def __init__(self, root: Path) -> None:
        self.root = Path(root)

    def district_dir(self, endpoint: str, district_id: str) -> Path:
        return self.root / endpoint / f"district={district_id}"

    def state(self, district_id: str) -> DistrictState:
        """The district's state folder: watermarks, run records, markers and logs."""
        return DistrictState(self.root, district_id)

    def new_batch(self, endpoint: str, district_id: str) -> BatchWriter:
        return BatchWriter(self, endpoint, district_id, new_batch_id())

    def read_batch(self, path: Path) -> Batch:
        manifest = orjson.loads((path / BATCH_MANIFEST).read_bytes())
        return Batch(
            endpoint=manifest["endpoint"],
            district_id=manifest["district_id"],
            batch_id=manifest["batch_id"],
            path=path,
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
        folder = self.district_dir(endpoint, district_id)
        if not folder.exists():
            return []
        found = []
        for path in sorted(folder.iterdir()):
            if path.name.startswith("."):
                continue
            try:
                found.append(self.read_batch(path))
            except FileNotFoundError:  # not committed (no manifest), or pruned while we listed
                continue
        return found

    def live_ids(self, endpoint: str, district_id: str) -> set[str]:
        """The sourcedIds whose newest landed observation is active: what a full sync that does not see them
        must ask about before they may be tombstoned.

        Replays the kept batches in commit order; a record leaves the set only when a batch lands it inactive
        or a full batch confirmed it gone, never merely by being unseen (that is what confirmation decides).
        """
        live: set[str] = set()
        for batch in self.batches(endpoint, district_id):
            if batch.files:
                frame = pl.read_parquet(batch.files, columns=["sourced_id", "status"])
                active = frame.filter(pl.col("status") == "active")["sourced_id"]
                live.difference_update(frame.filter(pl.col("status") != "active")["sourced_id"].to_list())
                live.update(active.to_list())
            live.update(batch.held)
            live.difference_update(batch.confirmed_gone)
        return live

    def prune(self, batches: list[Batch]) -> int:
        """Delete landed batches (the publish decides which are superseded); returns how many went.

        Each is first renamed to a hidden name, so a half-deleted batch never looks like a complete one."""
        for batch in batches:
            doomed = batch.path.with_name(f".pruned-{batch.batch_id}")
            os.replace(batch.path, doomed)
            shutil.rmtree(doomed, ignore_errors=True)
        return len(batches)

    def clean_abandoned(self) -> list[Path]:
        """Delete what killed runs left in the lake: batches half-written by a process that no longer exists, and
        half-deleted pruned batches. A batch a live process is still writing is never touched. Returns what went."""
        removed = []
        for path in sorted(self.root.glob("*/district=*/.*")):
            if path.name.startswith(".pruned-") or (path.name.startswith(".tmp-") and _abandoned(path)):
                shutil.rmtree(path, ignore_errors=True)
                removed.append(path)
        for path in sorted((self.root / STATE_FOLDER).glob("district=*/**/.*.tmp")):
            if _older_than(path, STATE_TMP_ABANDONED_AFTER_S):  # a state write killed between write and rename
                path.unlink(missing_ok=True)
                removed.append(path)
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
