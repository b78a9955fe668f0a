"""The freshness rule: has each district published since the latest run its own schedule says should have?

One rule for the `districts_fresh` asset check, `roster-pipeline status` and the alerts sensor. It reads the
published roster read-only and the district state files, so it needs neither Dagster nor a running daemon.
"""

from __future__ import annotations

import itertools
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import duckdb

from roster_pipeline.config.cron import fires_before
from roster_pipeline.config.registry import DistrictConfig, Registry
from roster_pipeline.config.settings import Settings
from roster_pipeline.store.guard import quarantine_state
from roster_pipeline.store.lake import Lake
from roster_pipeline.store.lakehouse import connect

# Past a district's own schedule interval, how late a publish may be before the district counts as stale.
FRESHNESS_GRACE = timedelta(hours=2)
# How many paused fires to step back over (a nightly schedule's whole summer break, and then some).
MAX_PAUSED_FIRES = 400


def expected_publish_since(district: DistrictConfig, timezone: str, now: datetime) -> datetime:
    """The start of the latest scheduled run that should have published by `now` (one that fired at least
    FRESHNESS_GRACE ago), in the registry's timezone. A weekday-only schedule is not due at weekends, and a fire
    inside one of the district's pauses or blackout windows is not due at all (the schedules hold it)."""
    fires = fires_before(district.schedule, timezone, now - FRESHNESS_GRACE)
    latest = next(fires)
    for _, fire in zip(range(MAX_PAUSED_FIRES), itertools.chain([latest], fires), strict=False):
        if district.schedule_paused(fire.astimezone(ZoneInfo(timezone))) is None:
            return fire
    return latest  # paused for longer than we look back: judge by the schedule alone


def is_stale(published: datetime | None, expected_since: datetime) -> bool:
    """Never published, or not since the latest run that should have published."""
    return published is None or published < expected_since


def last_publishes(settings: Settings) -> dict[str, datetime]:
    """Each district's latest publish, read from the published roster (empty before the first publish)."""
    try:
        with connect(settings) as con:
            return dict(con.execute("SELECT district_id, max(published_at) FROM ops.publishes GROUP BY ALL").fetchall())
    except (duckdb.Error, FileNotFoundError):
        return {}  # nothing published yet: every district is stale


@dataclass
class DistrictStatus:
    district_id: str
    enabled: bool
    last_published: datetime | None
    expected_since: datetime
    stale: bool
    quarantine: str | None


def district_status(
    registry: Registry, settings: Settings | None = None, now: datetime | None = None
) -> list[DistrictStatus]:
    """One row per registered district: its last publish, when it should have published, and its quarantine."""
    settings = settings or Settings.from_env()
    lake = Lake(settings.lake_root)
    rows = _publish_status(registry, settings, now or datetime.now(UTC))
    for row in rows:
        state = quarantine_state(lake, row.district_id)
        row.quarantine = "; ".join(state["reasons"]) if state else None
    return rows


def stale_districts(registry: Registry, settings: Settings, now: datetime | None = None) -> list[dict[str, Any]]:
    """Enabled districts that have not published since the latest run their schedule says should have (or never)."""
    now = now or datetime.now(UTC)
    return [
        {
            "district": row.district_id,
            "last_published": row.last_published.isoformat() if row.last_published else "never",
            "age_hours": round((now - row.last_published).total_seconds() / 3600, 1) if row.last_published else None,
            "expected_since": row.expected_since.isoformat(),
        }
        for row in _publish_status(registry, settings, now)
        if row.stale
    ]


def _publish_status(registry: Registry, settings: Settings, now: datetime) -> list[DistrictStatus]:
    """The freshness rule applied to every registered district (a disabled district is never stale)."""
    last = last_publishes(settings)
    rows = []
    for district in registry.districts:
        expected = expected_publish_since(district, registry.timezone, now)
        published = last.get(district.id)
        stale = district.enabled and is_stale(published, expected)
        rows.append(DistrictStatus(district.id, district.enabled, published, expected, stale, quarantine=None))
    return rows
