"""The roster store's upkeep: after a night of small district commits, compact files and reclaim space."""

from __future__ import annotations

import dagster as dg

from roster_pipeline.defs.resources import RosterSettings
from roster_pipeline.store.lakehouse import FILE_GRACE_HOURS, SNAPSHOT_RETENTION_DAYS, maintain, roster_exists


@dg.asset(
    key=["roster_store", "maintenance"],
    group_name="roster_store",  # not in district_sync's selection: it runs on its own schedule
    kinds={"ducklake"},
    owners=["team:data-engineering"],
    description=(
        "Compacts the roster (a DuckLake) after the night's district commits: merges small adjacent files, rewrites "
        f"files most of whose rows were replaced, expires snapshots older than {SNAPSHOT_RETENTION_DAYS} days (time "
        f"travel reaches back that far) and deletes files no snapshot needs once they are {FILE_GRACE_HOURS} h old "
        "(including those of publishes killed mid-commit). Safe beside running syncs: conflicts are retried."
    ),
)
def roster_store_maintenance(settings: RosterSettings) -> dg.MaterializeResult:
    paths = settings.paths
    if not roster_exists(paths):
        return dg.MaterializeResult(metadata={"note": "nothing published yet"})
    done = maintain(paths)
    return dg.MaterializeResult(metadata={name: dg.MetadataValue.int(count) for name, count in done.items()})


roster_maintenance_job = dg.define_asset_job("roster_maintenance", selection=[roster_store_maintenance])
# After the nightly deltas (02:00) and the weekly full reconciliation (03:00 on Sundays) have published.
roster_maintenance_schedule = dg.ScheduleDefinition(
    name="roster_maintenance_daily",
    job=roster_maintenance_job,
    cron_schedule="30 5 * * *",
    default_status=dg.DefaultScheduleStatus.RUNNING,
)
