"""Creating the roster database's tables and views, and growing a database an older version built.

The DDL is in ``sql/tables.sql``, ``sql/ops.sql`` and the view files. Only a state table's record columns are
generated: they are the lake schema of its endpoint (flatten.py's column specs), typed from Polars dtypes, so a
column added there reaches DuckDB without being written twice.
"""

from __future__ import annotations

import functools
import hashlib
from typing import Any

import duckdb
import polars as pl

from roster_pipeline.oneroster.flatten import lake_schema
from roster_pipeline.store.catalogue import STATE_TABLES
from roster_pipeline.store.sql_files import load_sql, sql_blocks, statements

TABLES_SQL = load_sql("tables")
OPS_SCHEMA_SQL = load_sql("ops")["schema"]
# The analyst views' SQL files: created in each work database here, and in the roster by district_publish.py.
VIEW_FILES = ("views", "derived_views")
# The work database's own bookkeeping (the DDL it was built with, what it last published); never published.
STATE_SCHEMA = "publish_state"


def ensure_schema(con: duckdb.DuckDBPyConnection) -> None:
    """Create the state tables (typed from the lake schema), link tables, ops schema and views if missing.

    The DDL's digest is kept in the work database (`publish_state.schema_ddl`): a database already built by this
    DDL is left alone, so a publish does not re-run some 150 idempotent statements every time; a changed DDL (a
    new column, a new view) runs again in full, which adds what is missing."""
    blocks, digest = schema_blocks(), schema_digest()
    con.execute(f"CREATE SCHEMA IF NOT EXISTS {STATE_SCHEMA}")
    con.execute(f"CREATE TABLE IF NOT EXISTS {STATE_SCHEMA}.schema_ddl (digest VARCHAR)")
    # What the work database last published (district_publish.py), by table.
    con.execute(f"CREATE TABLE IF NOT EXISTS {STATE_SCHEMA}.digests (roster VARCHAR, tbl VARCHAR, digest VARCHAR)")
    if con.execute(f"SELECT 1 FROM {STATE_SCHEMA}.schema_ddl WHERE digest = ?", [digest]).fetchone():
        return
    for block in blocks:
        for statement in statements(block):
            con.execute(statement)
    con.execute(f"DELETE FROM {STATE_SCHEMA}.schema_ddl")
    con.execute(f"INSERT INTO {STATE_SCHEMA}.schema_ddl VALUES (?)", [digest])


@functools.cache
def schema_blocks() -> tuple[str, ...]:
    """Every DDL block `ensure_schema` runs, in order."""
    blocks = []
    for endpoint, table in STATE_TABLES.items():
        columns = [f'"{name}" {duckdb_type(dtype)}' for name, dtype in lake_schema(endpoint).items()]
        blocks.append(TABLES_SQL["state_table"].format(table=table, columns=", ".join(columns)))
        blocks += [TABLES_SQL["add_state_column"].format(table=table, column=column) for column in columns]
        blocks.append(TABLES_SQL["add_state_bookkeeping"].format(table=table))
    blocks += [TABLES_SQL["link_tables"], OPS_SCHEMA_SQL]
    blocks += [block.sql for file in VIEW_FILES for block in sql_blocks(file)]
    return tuple(blocks)


@functools.cache
def schema_digest() -> str:
    """The digest of `schema_blocks()`, made once per process."""
    return hashlib.sha256("\n".join(schema_blocks()).encode()).hexdigest()


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
