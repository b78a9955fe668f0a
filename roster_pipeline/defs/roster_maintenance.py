"""The roster store's upkeep: after a night of small district commits, compact files and reclaim space."""

import dagster as dg

from roster_pipeline.defs.asset_keys import roster_asset_key
from roster_pipeline.defs.resources import RosterSettings
from roster_pipeline.store.lakehouse import FILE_GRACE_HOURS, SNAPSHOT_RETENTION_DAYS, maintain, roster_exists

MAINTENANCE_KEY = dg.AssetKey(["roster_store", "maintenance"])
# District publishes after which the roster is compacted again, not only at 05:30. Each publish adds a data file
# per table to the catalog, and DuckLake reads every file's rows of its SQLite catalog (it cannot use an index there)
# before each statement: a district's publish took 1.32 s at the start of a 200-district night and 1.67 s at its end
# (bench/results/fleet.md); compacted, the catalog holds a file per table again.
COMPACT_AFTER_PUBLISHES = 100


class MaintenanceConfig(dg.Config):
    """`compact_only`: merge the tables' small files and nothing else (the sensor's runs during the night; expiring
    snapshots and deleting files beside publishes failed in bench/fleet.py, so that waits for 05:30)."""

    compact_only: bool = False


@dg.asset(
    key=MAINTENANCE_KEY,
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
def roster_store_maintenance(config: MaintenanceConfig, settings: RosterSettings) -> dg.MaterializeResult:
    paths = settings.paths
    if not roster_exists(paths):
        return dg.MaterializeResult(metadata={"note": "nothing published yet"})
    done = maintain(paths, compact_only=config.compact_only)
    return dg.MaterializeResult(metadata={name: dg.MetadataValue.int(count) for name, count in done.items()})


# One step: run in the run's own process (the default executor would start a second one, ~200 MB, for it).
roster_maintenance_job = dg.define_asset_job(
    "roster_maintenance", selection=[roster_store_maintenance], executor_def=dg.in_process_executor
)
IN_FLIGHT = [
    dg.DagsterRunStatus.NOT_STARTED,
    dg.DagsterRunStatus.QUEUED,
    dg.DagsterRunStatus.STARTING,
    dg.DagsterRunStatus.STARTED,
    dg.DagsterRunStatus.CANCELING,
]
# After the nightly deltas (02:00) and the weekly full reconciliation (03:00 on Sundays) have published.
roster_maintenance_schedule = dg.ScheduleDefinition(
    name="roster_maintenance_daily",
    job=roster_maintenance_job,
    cron_schedule="30 5 * * *",
    default_status=dg.DefaultScheduleStatus.RUNNING,
)


@dg.sensor(
    job=roster_maintenance_job,
    minimum_interval_seconds=60,
    default_status=dg.DefaultSensorStatus.RUNNING,
    description=f"Compacts the roster during a long night: requests a `roster_maintenance` run once "
    f"{COMPACT_AFTER_PUBLISHES} district publishes have landed since the roster was last compacted (or a compaction "
    "last failed), unless one is already queued or running.",
)
def roster_compaction_sensor(context: dg.SensorEvaluationContext) -> dg.RunRequest | dg.SkipReason:
    return compaction_request(context.instance)


def compaction_request(instance: dg.DagsterInstance) -> dg.RunRequest | dg.SkipReason:
    """A merge-only `roster_maintenance` run once COMPACT_AFTER_PUBLISHES district publishes have landed since the
    roster was last compacted (or a compaction last failed), unless one is already queued or running; else why not.
    The sensor asks the daemon for it; `roster-pipeline sync`, run without the daemon, runs it itself."""
    if instance.get_run_records(dg.RunsFilter(job_name=roster_maintenance_job.name, statuses=IN_FLIGHT), limit=1):
        return dg.SkipReason("a roster_maintenance run is already queued or running")
    since = _last_attempt(instance)
    publishes = instance.fetch_materializations(
        dg.AssetRecordsFilter(asset_key=roster_asset_key("students"), after_timestamp=since),
        limit=COMPACT_AFTER_PUBLISHES,
    ).records
    if len(publishes) < COMPACT_AFTER_PUBLISHES:
        return dg.SkipReason(
            f"{len(publishes)} district publish(es) since the roster was last compacted (or a compaction failed); "
            f"it is compacted after {COMPACT_AFTER_PUBLISHES}"
        )
    # The key names the newest publish counted: asked again before the run exists, it is the same request.
    return dg.RunRequest(
        run_key=f"compact-after-publish-{max(record.storage_id for record in publishes)}",
        run_config=dg.RunConfig(ops={roster_store_maintenance.op.name: MaintenanceConfig(compact_only=True)}),
    )


def _last_attempt(instance: dg.DagsterInstance) -> float:
    """When the roster was last compacted, or a compaction last failed (it is tried again only after as many more
    publishes, not every minute): the later of the two, as a timestamp."""
    compactions = instance.fetch_materializations(dg.AssetRecordsFilter(asset_key=MAINTENANCE_KEY), limit=1).records
    compacted = compactions[0].timestamp if compactions else 0.0
    failures = instance.get_run_records(
        dg.RunsFilter(job_name=roster_maintenance_job.name, statuses=[dg.DagsterRunStatus.FAILURE]), limit=1
    )
    failed = (failures[0].end_time or failures[0].update_timestamp.timestamp()) if failures else 0.0
    return max(compacted, failed)
