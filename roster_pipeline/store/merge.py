"""Applying landed batches to the state tables, inside a district's publish transaction.

Batches may be applied in an order other than the one their snapshots were taken in (a slow weekly full sync
overlapping a nightly delta; a delta bundle delivered late), so applying is order-independent: see
``sql/merge_batch.sql``.
"""

from __future__ import annotations

from typing import Any

import duckdb

from roster_pipeline.store.catalogue import STATE_TABLES
from roster_pipeline.store.lake import Batch, Lake
from roster_pipeline.store.ops_log import applied_batches, newest_applied_full, record_applied
from roster_pipeline.store.publish_result import EndpointPublish, PublishResult
from roster_pipeline.store.sql_files import load_sql, used_params

MERGE_SQL = load_sql("merge_batch")


def apply_batches(con: duckdb.DuckDBPyConnection, lake: Lake, district_id: str, result: PublishResult) -> None:
    """Apply every landed batch of the district not applied yet, endpoint by endpoint, noting each in ``result``."""
    applied = applied_batches(con, district_id)
    for endpoint, table in STATE_TABLES.items():
        summary = result.endpoints.setdefault(endpoint, EndpointPublish(endpoint))
        # Every landed batch not applied yet, in commit order — not only those after the newest applied one,
        # since a slow run can commit its batch after a faster, later run's batch was published.
        pending = [b for b in lake.batches(endpoint, district_id) if (endpoint, b.batch_id) not in applied]
        for batch in pending:
            active, tombstoned, duplicates, held = apply_batch(con, table, batch)
            result.applied.append(batch)
            result.malformed += batch.malformed
            summary.batches += 1
            summary.records += batch.records
            summary.tombstoned += tombstoned
            summary.held += held
            record_applied(
                con,
                district_id,
                endpoint,
                batch,
                applied_mode(batch, held),
                active=active,
                tombstoned=tombstoned,
                duplicates=duplicates,
            )


def apply_batch(con: duckdb.DuckDBPyConnection, table: str, batch: Batch) -> tuple[int, int, int, int]:
    """Merge one batch into its state table; returns its active records, tombstones, duplicates and held
    (unconfirmed) tombstones."""
    if batch.records == 0 and not tombstones_unseen(batch):
        # An empty delta (a nightly sync that found nothing changed): nothing to read, and it may tombstone
        # nothing, so its statements would change nothing. An empty full batch still runs them.
        return 0, 0, 0, 0
    params: dict[str, Any] = {
        "district": batch.district_id,
        "files": batch.files,
        "batch_id": batch.batch_id,
        "snapshot_at": batch.snapshot_at,
        "full": tombstones_unseen(batch),
        "spared": list(batch.malformed_ids or []),
        "confirm": batch.confirm_unseen,
        "gone": list(batch.confirmed_gone),
    }
    staged = ""

    def run(name: str) -> int:
        """Run a statement of merge_batch.sql; returns the first value it answers (0 if none)."""
        statement = MERGE_SQL[name].format(table=table, staged=staged)
        row = con.execute(statement, used_params(statement, params)).fetchone()
        return int(row[0]) if row and row[0] is not None else 0

    duplicates = run("count_duplicates")
    if duplicates:
        run("keep_newest")
    staged = MERGE_SQL["staged" if duplicates else "staged_unique"]
    active = run("count_staged")
    run("find_unseen")
    held = run("count_held")
    tombstoned = run("tombstone_unseen")
    for name in ("find_newer", "remove_replaced", "insert_staged"):
        run(name)
    check_one_row_per_record(con, table, batch)
    return active, tombstoned, duplicates, held


class StateTableBroken(RuntimeError):
    """A state table would hold a record twice: the publish rolls back rather than commit it."""


def check_one_row_per_record(con: duckdb.DuckDBPyConnection, table: str, batch: Batch) -> None:
    """What a primary key on (district_id, sourced_id) would enforce, checked once a batch is merged."""
    row = con.execute(MERGE_SQL["duplicate_rows"].format(table=table), {"district": batch.district_id}).fetchone()
    if row and row[0]:
        raise StateTableBroken(
            f"district '{batch.district_id}', endpoint {batch.endpoint}: {row[0]} record(s) would be held twice in "
            f"{table} after applying batch {batch.batch_id}; nothing was published"
        )


def superseded_batches(con: duckdb.DuckDBPyConnection, lake: Lake, district_id: str) -> list[Batch]:
    """Applied batches committed before their endpoint's newest applied full batch began its snapshot.

    What remains (that full batch and every batch committed after its snapshot began) rebuilds the
    district's current records; a delta committed while that full sync was paging may hold newer versions,
    so it is kept. Records deleted before the full snapshot are not rebuilt as tombstones.
    """
    newest_full = newest_applied_full(con, district_id)
    applied = applied_batches(con, district_id)
    superseded = []
    for endpoint, full_id in newest_full.items():
        batches = lake.batches(endpoint, district_id)
        full = next((b for b in batches if b.batch_id == full_id), None)
        if full is None or full.snapshot_at is None:
            continue
        superseded += [
            b
            for b in batches
            if (endpoint, b.batch_id) in applied and b.batch_id < full_id and b.committed < full.snapshot_at
        ]
    return superseded


def tombstones_unseen(batch: Batch) -> bool:
    """Whether a batch may tombstone what it did not see: only a full batch, and only if every source record it
    dropped as malformed is known by sourcedId (those are spared) — a record missing because its row was
    unreadable has not been deleted."""
    return batch.mode == "full" and (batch.malformed == 0 or batch.malformed_ids is not None)


def applied_mode(batch: Batch, held: int = 0) -> str:
    """The batch's mode as ``ops.applied_batches`` shows it, with why it tombstoned less than it did not see."""
    if batch.mode == "full" and not tombstones_unseen(batch):
        return f"full, no tombstones ({batch.malformed} malformed records, not all identifiable)"
    notes = []
    if batch.mode == "full" and batch.malformed:
        notes.append(f"{batch.malformed} malformed records spared")
    if held:
        notes.append(f"{held} unseen records held (not confirmed gone)")
    return ", ".join([batch.mode, *notes])
