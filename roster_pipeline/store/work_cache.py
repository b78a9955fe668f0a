"""A district's work database as a cache of what the roster holds for it, for workers that share no folder.

With the lake on a bucket (`ROSTER_LAKE_URL`), each worker keeps its own work databases, so the one a run finds
may be missing (the worker's first run of the district), behind the roster (another worker published the district
since), or ahead of it (its merge committed but its roster commit did not). The roster's newest `ops.publishes`
row for the district names the state every run starts from: a work database whose newest publish is another one
is rebuilt from the district's rows in the roster before the merge. Nothing is lost: the batches the roster has
not seen are still in the lake, since a batch is pruned only after a publish that applied it.

The publish then commits only if the roster still names that publish (`district_publish.Baseline`), so two
workers publishing one district at once cannot overwrite each other's batches.
"""

from __future__ import annotations

import duckdb

from roster_pipeline.config.settings import Settings
from roster_pipeline.store.district_publish import Baseline, current_database, note_as_published
from roster_pipeline.store.lakehouse import CATALOG, attach, database_tables
from roster_pipeline.store.ops_log import latest_publish
from roster_pipeline.store.roster_schema import STATE_SCHEMA


def bring_up_to_date(con: duckdb.DuckDBPyConnection, settings: Settings, district_id: str) -> tuple[Baseline, int]:
    """Make the work database open on `con` hold the roster's newest publish of the district; returns that
    publish and how many rows were copied from the roster (0 when the work database already held it)."""
    attach(con, settings, read_only=False)  # as the publish will: the first writer creates the roster
    try:
        published = latest_publish(con, district_id, CATALOG)
        if published is None or published == latest_publish(con, district_id):
            return Baseline(published), 0
        copied = _copy_from_roster(con, district_id)
        note_as_published(con, district_id)
        return Baseline(published), copied
    finally:
        con.execute(f"DETACH {CATALOG}")


def _copy_from_roster(con: duckdb.DuckDBPyConnection, district_id: str) -> int:
    """Replace the district's rows in every published table of the work database by the roster's, in one
    transaction. Only the columns both have are copied (either may be of a newer version)."""
    work = current_database(con)
    in_roster = set(database_tables(con, CATALOG))
    copied = 0
    con.execute("BEGIN TRANSACTION")
    try:
        for schema, table in database_tables(con, work):
            if schema == STATE_SCHEMA:
                continue
            target = f'"{work}".{schema}.{table}'
            con.execute(f"DELETE FROM {target} WHERE district_id = ?", [district_id])
            if (schema, table) not in in_roster:
                continue
            source = f"{CATALOG}.{schema}.{table}"
            shared = _columns(con, target) & _columns(con, source)
            listed = ", ".join(f'"{name}"' for name in sorted(shared))
            row = con.execute(
                f"INSERT INTO {target} ({listed}) SELECT {listed} FROM {source} WHERE district_id = ?", [district_id]
            ).fetchone()
            copied += int(row[0]) if row else 0
        con.execute("COMMIT")
    except BaseException:
        con.execute("ROLLBACK")
        raise
    return copied


def _columns(con: duckdb.DuckDBPyConnection, table: str) -> set[str]:
    return {row[0] for row in con.execute(f"DESCRIBE {table}").fetchall()}
