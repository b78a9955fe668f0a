"""Schedules and sensors: the project runs itself.

- `district_registry_sensor` keeps the `district` partitions in step with the registry: it adds a partition
  for every enabled district (adding a district needs no code change) and never deletes one, so a disabled
  district keeps its data and history; the schedules simply stop requesting it.
- `nightly_delta_sync` ticks every 15 minutes and requests a delta run for each enabled district whose own
  cron (`schedule` in the registry; default 02:00 nightly, in the registry's timezone) fired since the
  previous tick. One `@schedule` serves every district, since `build_schedule_from_partitioned_job` cannot
  take dynamic partitions, and a per-district cron (e.g. every 3 days for a very large district) stays data.
- `weekly_full_reconciliation` requests a full sync of each enabled district when its `full_schedule` fires
  (default Sunday 03:00 in the registry's timezone); a full sync tombstones records a provider deleted without
  telling (deltas cannot see hard deletes). Where both are due at once only the full sync is requested.
- `freshness_check_schedule` evaluates the per-district freshness check hourly.

Each run is one district's whole sync (all endpoints, then its roster tables). Runs carry the tag
`roster/provider`, which `dagster.yaml` limits per provider (so one SIS vendor is not hammered).
"""

from datetime import datetime, timedelta

import dagster as dg

from roster_pipeline.assets.fetch import FULL_SYNC_TAG
from roster_pipeline.checks import districts_fresh
from roster_pipeline.partitions import district_partitions
from roster_pipeline.registry import DistrictConfig, Registry
from roster_pipeline.resources import RosterSettings

PROVIDER_TAG = "roster/provider"
TICK = timedelta(minutes=15)

district_sync_job = dg.define_asset_job(
    "district_sync",
    selection=dg.AssetSelection.groups("oneroster", "roster", "derived"),
    description="A district's whole sync: every endpoint, then its roster and derived tables, with their checks.",
)

freshness_check_job = dg.define_asset_job(
    "freshness_check",
    selection=dg.AssetSelection.checks(districts_fresh),
    description="Evaluates the per-district freshness check.",
)


def run_tags(district: DistrictConfig, *, full: bool) -> dict[str, str]:
    return {PROVIDER_TAG: district.provider.key, FULL_SYNC_TAG: str(full).lower(), "roster/district": district.id}


def fired_between(cron: str, timezone: str, start: datetime, end: datetime) -> datetime | None:
    """The latest fire time of `cron` (in `timezone`) in (start, end], if any."""
    from dagster._utils.schedules import cron_string_iterator

    latest = None
    for fire in cron_string_iterator(start.timestamp() + 1, cron, timezone):
        if fire > end:
            break
        latest = fire
    return latest


def due_run_requests(registry: Registry, tick: datetime, *, full: bool) -> list[dg.RunRequest]:
    """One RunRequest per enabled district whose delta (or full) cron fired in the tick window ending at `tick`.

    When both are due in the same window, only the full sync is requested: it supersedes the delta, and two
    runs of one district at once would only queue behind each other (`roster/district` is limited to one).
    """
    requests = []
    for district in registry.enabled:
        fire = fired_between(
            district.full_schedule if full else district.schedule, registry.timezone, tick - TICK, tick
        )
        if fire is None:
            continue
        if not full and fired_between(district.full_schedule, registry.timezone, tick - TICK, tick) is not None:
            continue
        kind = "full" if full else "delta"
        requests.append(
            dg.RunRequest(
                run_key=f"{kind}:{district.id}:{fire.isoformat()}",
                partition_key=district.id,
                tags=run_tags(district, full=full),
            )
        )
    return requests


@dg.schedule(
    cron_schedule="*/15 * * * *",
    job=district_sync_job,
    default_status=dg.DefaultScheduleStatus.RUNNING,
    description="Delta sync of each enabled district when its registry `schedule` is due (default 02:00 nightly, "
    "registry timezone).",
)
def nightly_delta_sync(context: dg.ScheduleEvaluationContext, settings: RosterSettings):
    assert context.scheduled_execution_time is not None
    requests = due_run_requests(settings.registry(), context.scheduled_execution_time, full=False)
    return requests or dg.SkipReason("no enabled district is due for a delta in this 15-minute window")


@dg.schedule(
    cron_schedule="*/15 * * * *",
    job=district_sync_job,
    default_status=dg.DefaultScheduleStatus.RUNNING,
    description="Full reconciliation of each enabled district when its registry `full_schedule` is due (default "
    "Sunday 03:00, registry timezone): tombstones what deltas cannot see.",
)
def weekly_full_reconciliation(context: dg.ScheduleEvaluationContext, settings: RosterSettings):
    assert context.scheduled_execution_time is not None
    requests = due_run_requests(settings.registry(), context.scheduled_execution_time, full=True)
    return requests or dg.SkipReason("no enabled district is due for a full sync in this 15-minute window")


freshness_check_schedule = dg.ScheduleDefinition(
    name="freshness_check_schedule",
    cron_schedule="30 * * * *",
    job=freshness_check_job,
    default_status=dg.DefaultScheduleStatus.RUNNING,
    description="Hourly: names every district whose last publish is older than its schedule allows.",
)


@dg.sensor(
    minimum_interval_seconds=60,
    default_status=dg.DefaultSensorStatus.RUNNING,
    description="Adds a `district` partition for each enabled district in the registry; never deletes one.",
)
def district_registry_sensor(context: dg.SensorEvaluationContext, settings: RosterSettings):
    registry = settings.registry()
    existing = set(context.instance.get_dynamic_partitions(district_partitions.name or "district"))
    missing = [d.id for d in registry.enabled if d.id not in existing]
    if not missing:
        return dg.SkipReason(f"all {len(registry.enabled)} enabled districts have partitions")
    return dg.SensorResult(dynamic_partitions_requests=[district_partitions.build_add_request(missing)])
