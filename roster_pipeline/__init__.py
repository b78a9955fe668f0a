"""roster_pipeline: OneRoster school rosters kept in sync with Dagster; see README.md.

`roster_pipeline.connect()` opens the published roster read-only (for notebooks and scripts).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from roster_pipeline import allocator  # noqa: F401  (before anything imports Polars)

if TYPE_CHECKING:
    import duckdb

    from roster_pipeline.config.settings import Settings


def connect(settings: Settings | None = None) -> duckdb.DuckDBPyConnection:
    """A read-only DuckDB connection to the published roster (`select * from students`)."""
    from roster_pipeline.store.lakehouse import connect as connect_roster

    return connect_roster(settings)
