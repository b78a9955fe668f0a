"""`roster-pipeline status`: every district's last publish, staleness and quarantine, from files alone."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

from roster_pipeline.checks import expected_publish_since, is_stale, last_publishes
from roster_pipeline.lake import Lake
from roster_pipeline.quarantine import quarantine_state
from roster_pipeline.registry import Registry, data_dir, load_registry


@dataclass
class DistrictStatus:
    district_id: str
    enabled: bool
    last_published: datetime | None
    expected_since: datetime
    stale: bool
    quarantine: str | None


def district_status(registry: Registry | None = None, folder: Path | None = None) -> list[DistrictStatus]:
    """One row per registered district; reads the published roster read-only and the lake's state files."""
    registry = registry or load_registry()
    folder = folder or data_dir()
    database = str(folder / "roster.duckdb")
    lake = Lake(folder / "lake")
    now = datetime.now(UTC)
    last = last_publishes(database)
    rows = []
    for district in registry.districts:
        expected = expected_publish_since(district, registry.timezone, now)
        published = last.get(district.id)
        state = quarantine_state(lake, district.id)
        rows.append(
            DistrictStatus(
                district_id=district.id,
                enabled=district.enabled,
                last_published=published,
                expected_since=expected,
                stale=district.enabled and is_stale(published, expected),
                quarantine="; ".join(state["reasons"]) if state else None,
            )
        )
    return rows


def print_status(rows: list[DistrictStatus]) -> None:
    print(f"{'district':24} {'enabled':8} {'last published (UTC)':22} {'expected since (UTC)':22} state")
    for row in rows:
        published = row.last_published.astimezone(UTC).strftime("%Y-%m-%d %H:%M") if row.last_published else "never"
        state = "QUARANTINED: " + row.quarantine if row.quarantine else ("STALE" if row.stale else "ok")
        if not row.enabled:
            state = "disabled"
        expected = row.expected_since.astimezone(UTC).strftime("%Y-%m-%d %H:%M")
        print(f"{row.district_id:24} {row.enabled!s:8} {published:22} {expected:22} {state}")
