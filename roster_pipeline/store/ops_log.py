"""The ``ops`` schema of the roster database: which batches were applied, each publish, and a mirror of the
lake's watermarks and fetch-run records, so an analyst can ask SQL what each sync did."""

from __future__ import annotations

from typing import Any

import duckdb
import orjson

from roster_pipeline.store.lake import Batch, Lake
from roster_pipeline.store.sql_files import load_sql

OPS_SQL = load_sql("ops")

# The fetch-run record fields that are columns of ops.sync_runs as they are.
RUN_COLUMNS = (
    "run_id",
    "mode",
    "started_at",
    "finished_at",
    "outcome",
    "records",
    "pages",
    "bytes",
    "tombstones",
    "watermark_from",
    "watermark_to",
    "batch_id",
    "error",
)


def applied_batches(con: duckdb.DuckDBPyConnection, district_id: str) -> set[tuple[str, str]]:
    """The (endpoint, batch id) of every batch applied to the district."""
    return set(con.execute(OPS_SQL["applied_batches"], {"district": district_id}).fetchall())


def newest_applied_full(con: duckdb.DuckDBPyConnection, district_id: str) -> dict[str, str]:
    """Per endpoint, the batch id of the newest applied full batch that tombstoned what it did not see."""
    return dict(con.execute(OPS_SQL["newest_applied_full"], {"district": district_id}).fetchall())


def record_applied(
    con: duckdb.DuckDBPyConnection,
    district_id: str,
    endpoint: str,
    batch: Batch,
    mode: str,
    *,
    active: int,
    tombstoned: int,
    duplicates: int,
) -> None:
    """Note a batch as applied, with its mode as ``applied_mode`` describes it and what it changed."""
    con.execute(
        OPS_SQL["record_applied"],
        {
            "district": district_id,
            "endpoint": endpoint,
            "batch_id": batch.batch_id,
            "mode": mode,
            "records": batch.records,
            "active": active,
            "tombstoned": tombstoned,
            "duplicates": duplicates,
        },
    )


def record_publish(
    con: duckdb.DuckDBPyConnection,
    district_id: str,
    *,
    batches: int,
    students_removed: int,
    links_removed: int,
    released: bool,
) -> None:
    """Note a district's publish and what the mass-deletion guard measured."""
    con.execute(
        OPS_SQL["record_publish"],
        {
            "district": district_id,
            "batches": batches,
            "students_removed": students_removed,
            "links_removed": links_removed,
            "released": released,
        },
    )


def latest_publish(con: duckdb.DuckDBPyConnection, district_id: str, catalog: str | None = None) -> str | None:
    """The id of the district's newest publish in the work database open on `con`, or in the attached `catalog`
    (None when it has none, or no `ops.publishes` table yet)."""
    if catalog is None:
        statement = OPS_SQL["latest_publish"].format(publishes="ops.publishes")
    elif _has_publishes(con, catalog):
        statement = OPS_SQL["latest_publish"].format(publishes=f"{catalog}.ops.publishes")
    else:  # a roster nothing has been published to yet
        return None
    row = con.execute(statement, {"district": district_id}).fetchone()
    return str(row[0]) if row and row[0] is not None else None


def _has_publishes(con: duckdb.DuckDBPyConnection, catalog: str) -> bool:
    query = "SELECT 1 FROM duckdb_tables() WHERE database_name = ? AND schema_name = 'ops' AND table_name = 'publishes'"
    return con.execute(query, [catalog]).fetchone() is not None


def mirror_ops(con: duckdb.DuckDBPyConnection, lake: Lake, district_id: str) -> int:
    """Copy the district's watermarks and its fetch-run records not yet imported; returns the runs imported."""
    for endpoint, state in lake.watermarks(district_id).items():
        con.execute(
            OPS_SQL["upsert_watermark"],
            {
                "district": district_id,
                "endpoint": endpoint,
                "watermark": state.get("watermark"),
                "batch_id": state.get("batch_id"),
                "updated_at": state.get("updated_at"),
            },
        )
    known = {row[0] for row in con.execute(OPS_SQL["known_runs"], {"district": district_id}).fetchall()}
    imported = 0
    for key, run in lake.run_records(district_id):
        if key in known:
            continue
        con.execute(OPS_SQL["insert_run"], _run_params(key, run))
        imported += 1
    return imported


def _run_params(key: str, run: dict[str, Any]) -> dict[str, Any]:
    params = {name: run.get(name) for name in RUN_COLUMNS}
    details = run.get("extra") or None  # e.g. a CSV bundle's name, malformed row count and first problems
    params.update(
        record_key=key,
        district=run["district_id"],
        endpoint=run["endpoint"],
        details=orjson.dumps(details).decode() if details else None,
    )
    return params
