"""The lineage the UI draws is read from the SQL that builds each table, and is checked against the catalogue."""

from __future__ import annotations

from roster_pipeline.oneroster import ENDPOINT_NAMES
from roster_pipeline.store.catalogue import DERIVED_SOURCES, DERIVED_TABLES, ROSTER_TABLES, STATE_TABLES, TABLE_SOURCES
from roster_pipeline.store.sql_files import load_sql, sql_blocks


def test_every_endpoint_has_a_state_table_named_for_it_in_snake_case():
    assert list(STATE_TABLES) == list(ENDPOINT_NAMES)
    assert STATE_TABLES["academicSessions"] == "academic_sessions_all"


def test_analyst_tables_are_fed_by_endpoints_and_every_endpoint_feeds_one():
    assert {source for sources in TABLE_SOURCES.values() for source in sources} == set(ENDPOINT_NAMES)
    assert TABLE_SOURCES["user_orgs"] == ("users", "orgs")


def test_derived_tables_come_after_every_table_they_are_computed_from():
    seen = set(ROSTER_TABLES)
    for table in DERIVED_TABLES:
        assert set(DERIVED_SOURCES[table]) <= seen, table
        seen.add(table)


def test_a_sources_line_is_lineage_not_sql():
    (block,) = [b for b in sql_blocks("views") if b.name == "user_orgs"]
    assert block.sources == ("users", "orgs")
    assert "sources" not in block.sql and "sources" not in load_sql("views")["user_orgs"]
    helper = next(b for b in sql_blocks("views") if b.name == "class_terms")
    assert helper.sources is None and "class_terms" not in ROSTER_TABLES
