"""A self-contained DuckDB copy of the roster (`data/roster.duckdb`), for a laptop, a hand-off or the demo.

The roster itself is a DuckLake; this file is a snapshot of it at one moment, written beside and renamed into
place, so a reader never sees half of it. It costs the whole roster, so syncs never write it; `roster-pipeline
export` and the demo do.
"""

from __future__ import annotations

import os
import uuid
from pathlib import Path

from roster_pipeline.config.settings import Settings
from roster_pipeline.store.lakehouse import CATALOG, connect, quoted_path


def export_roster(settings: Settings, target: Path | None = None) -> Path:
    """Copy every table and view of the published roster into one DuckDB file (default `<data>/roster.duckdb`)."""
    target = (target or settings.roster_path).resolve()
    target.parent.mkdir(parents=True, exist_ok=True)
    partial = target.with_name(f".{target.name}.{uuid.uuid4().hex[:8]}.exporting")
    try:
        with connect(settings) as con:
            con.execute(f"ATTACH '{quoted_path(partial)}' AS snapshot")
            con.execute(f"COPY FROM DATABASE {CATALOG} TO snapshot")
            con.execute("DETACH snapshot")
        with open(partial, "rb") as handle:
            os.fsync(handle.fileno())
        os.replace(partial, target)
    finally:
        partial.unlink(missing_ok=True)
        partial.with_name(partial.name + ".wal").unlink(missing_ok=True)
    return target
