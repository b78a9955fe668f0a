"""`roster-pipeline status`: every district's last publish, staleness and quarantine, from files alone."""

from __future__ import annotations

from datetime import UTC

from roster_pipeline.store.freshness import DistrictStatus


def print_status(rows: list[DistrictStatus]) -> None:
    print(f"{'district':24} {'enabled':8} {'last published (UTC)':22} {'expected since (UTC)':22} state")
    for row in rows:
        published = row.last_published.astimezone(UTC).strftime("%Y-%m-%d %H:%M") if row.last_published else "never"
        state = "QUARANTINED: " + row.quarantine if row.quarantine else ("STALE" if row.stale else "ok")
        if not row.enabled:
            state = "disabled"
        expected = row.expected_since.astimezone(UTC).strftime("%Y-%m-%d %H:%M")
        print(f"{row.district_id:24} {row.enabled!s:8} {published:22} {expected:22} {state}")
