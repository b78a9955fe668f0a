"""A work database's schema: built once per version of the DDL, grown when the DDL changes."""

from __future__ import annotations

from pathlib import Path

import duckdb

from roster_pipeline.store.roster_schema import STATE_SCHEMA, ensure_schema


def columns(con: duckdb.DuckDBPyConnection, table: str) -> set[str]:
    return {row[0] for row in con.execute(f"DESCRIBE {table}").fetchall()}


def test_a_database_built_by_an_older_ddl_gets_what_the_new_one_adds(tmp_path: Path) -> None:
    with duckdb.connect(str(tmp_path / "work.duckdb")) as con:
        ensure_schema(con)
        # As an older version left it: without a column the lake schema has since gained, another DDL's digest.
        con.execute("DROP VIEW IF EXISTS users")
        con.execute("ALTER TABLE users_all DROP COLUMN username")
        con.execute(f"UPDATE {STATE_SCHEMA}.schema_ddl SET digest = 'an older version'")
        ensure_schema(con)
        assert "username" in columns(con, "users_all")
        assert con.execute("SELECT count(*) FROM users").fetchone() == (0,)


def test_a_database_built_by_this_ddl_is_not_built_again(tmp_path: Path) -> None:
    with duckdb.connect(str(tmp_path / "work.duckdb")) as con:
        ensure_schema(con)
        # Nothing of ours drops a column; if the DDL ran again, it would add this one back.
        con.execute("DROP VIEW IF EXISTS users")
        con.execute("ALTER TABLE users_all DROP COLUMN username")
        ensure_schema(con)
        assert "username" not in columns(con, "users_all")
        assert con.execute(f"SELECT count(*) FROM {STATE_SCHEMA}.schema_ddl").fetchone() == (1,)
