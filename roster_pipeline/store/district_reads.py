"""What a publish reads back from the district's committed work database: each table's rows and the data checks.

The work database holds exactly the rows the publish commits to the roster, so both are read there, on a cursor of
the publish's own connection (its buffers still warm), while that connection writes the roster: the second core
reads while the first commits. The data checks' queries are the blocks of ``sql/checks.sql``; the Dagster layer
names and grades them (defs/asset_checks.py). Every query here names only the work database's own tables: the
publish attaches and detaches the roster on the same DuckDB instance meanwhile, and a query over all catalogs (such
as ``duckdb_tables()``) can fail while it does.
"""

from __future__ import annotations

from dataclasses import dataclass

import duckdb

from roster_pipeline.store.catalogue import DERIVED_TABLES, ROSTER_TABLES
from roster_pipeline.store.sql_files import load_sql

CHECKS_SQL = load_sql("checks")


@dataclass(frozen=True)
class CheckFinding:
    """One data check's result for a district: how many problems, and the first sourcedIds concerned."""

    problems: int
    samples: tuple[str, ...] = ()


@dataclass(frozen=True)
class DistrictReads:
    row_counts: dict[str, int]
    findings: dict[str, CheckFinding]


def read_district(con: duckdb.DuckDBPyConnection, district_id: str) -> DistrictReads:
    """The district's rows per table and every data check's finding, read on a new cursor of `con` (so a thread
    may read while `con` itself is busy), from what `con`'s database has committed."""
    cursor = con.cursor()
    try:
        return DistrictReads(row_counts(cursor, district_id), check_findings(cursor, district_id))
    finally:
        cursor.close()


def row_counts(con: duckdb.DuckDBPyConnection, district_id: str) -> dict[str, int]:
    """The district's rows in each roster and derived table (one statement: each costs more to plan than to count
    a district's rows)."""
    tables = (*ROSTER_TABLES, *DERIVED_TABLES)
    counts = ", ".join(f"(SELECT count(*) FROM {table} WHERE district_id = $district)" for table in tables)
    row = con.execute(f"SELECT {counts}", {"district": district_id}).fetchone()
    return {table: int(row[i]) if row else 0 for i, table in enumerate(tables)}


def check_findings(con: duckdb.DuckDBPyConnection, district_id: str) -> dict[str, CheckFinding]:
    """Every data check of checks.sql for the district."""
    return {name: _finding(con, sql, district_id) for name, sql in CHECKS_SQL.items()}


def _finding(con: duckdb.DuckDBPyConnection, sql: str, district_id: str) -> CheckFinding:
    row = con.execute(sql, {"district": district_id}).fetchone()
    if row is None:
        return CheckFinding(0)
    return CheckFinding(int(row[0] or 0), tuple(str(sample) for sample in row[1] or ()))
