"""Creating the roster database's tables and views, and growing a database an older version built.

The DDL is in ``sql/tables.sql``, ``sql/ops.sql`` and the view files. Only a state table's record columns are
generated: they are the lake schema of its endpoint (flatten.py's column specs), typed from Polars dtypes, so a
column added there reaches DuckDB without being written twice.
"""

from __future__ import annotations

from typing import Any

import duckdb
import polars as pl

from roster_pipeline.oneroster.flatten import lake_schema
from roster_pipeline.store.catalogue import STATE_TABLES
from roster_pipeline.store.sql_files import load_sql, sql_blocks, statements

TABLES_SQL = load_sql("tables")
OPS_SCHEMA_SQL = load_sql("ops")["schema"]


def ensure_schema(con: duckdb.DuckDBPyConnection) -> None:
    """Create the state tables (typed from the lake schema), link tables, ops schema and views if missing."""
    for endpoint, table in STATE_TABLES.items():
        columns = [f'"{name}" {duckdb_type(dtype)}' for name, dtype in lake_schema(endpoint).items()]
        _run(con, TABLES_SQL["state_table"].format(table=table, columns=", ".join(columns)))
        for column in columns:
            _run(con, TABLES_SQL["add_state_column"].format(table=table, column=column))
        _run(con, TABLES_SQL["add_state_bookkeeping"].format(table=table))
    _run(con, TABLES_SQL["link_tables"])
    _run(con, OPS_SCHEMA_SQL)
    for file in ("views", "derived_views"):
        for block in sql_blocks(file):
            _run(con, block.sql)


def duckdb_type(dtype: Any) -> str:  # a polars DataType instance or class
    """The DuckDB column type of a lake column's Polars dtype."""
    if isinstance(dtype, pl.List):
        return f"{duckdb_type(dtype.inner)}[]"
    if isinstance(dtype, pl.Struct):
        return "STRUCT(" + ", ".join(f'"{f.name}" {duckdb_type(f.dtype)}' for f in dtype.fields) + ")"
    if isinstance(dtype, pl.Datetime):
        return "TIMESTAMPTZ" if dtype.time_zone else "TIMESTAMP"
    if isinstance(dtype, pl.Boolean):
        return "BOOLEAN"
    return "VARCHAR"


def _run(con: duckdb.DuckDBPyConnection, block: str) -> None:
    for statement in statements(block):
        con.execute(statement)
