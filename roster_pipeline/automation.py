"""Schedules and sensors: the project runs itself.

- `district_registry_sensor` keeps the `district` partitions in step with the registry: it adds a partition
  for every enabled district (adding a district needs no code change) and never deletes one, so a disabled
  district keeps its data and history; the schedules simply stop requesting it.
- `nightly_delta_sync` ticks every 15 minutes and requests a delta run for each enabled district whose own
  cron (`schedule` in the registry; default 02:00 nightly, in the registry's timezone) fired since the
  previous tick. One `@schedule` serves every district, since `build_schedule_from_partitioned_job` cannot
  take dynamic partitions, and a per-district cron (e.g. every 3 days for a very large district) stays data.
- `weekly_full_reconciliation` requests a full sync of every enabled district on Sunday at 03:00; a full sync
  tombstones records a provider deleted without telling (deltas cannot see hard deletes).
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


def fired_between(district: DistrictConfig, timezone: str, start: datetime, end: datetime) -> datetime | None:
    """The district's latest cron fire time in (start, end], if any."""
    from dagster._utils.schedules import cron_string_iterator

    latest = None
    for fire in cron_string_iterator(start.timestamp() + 1, district.schedule, timezone):
        if fire > end:
            break
        latest = fire
    return latest


def due_run_requests(registry: Registry, tick: datetime) -> list[dg.RunRequest]:
    """One delta RunRequest per enabled district whose schedule fired in the tick window ending at `tick`."""
    requests = []
    for district in registry.enabled:
        fire = fired_between(district, registry.timezone, tick - TICK, tick)
        if fire is not None:
            requests.append(
                dg.RunRequest(
                    run_key=f"delta:{district.id}:{fire.isoformat()}",
                    partition_key=district.id,
                    tags=run_tags(district, full=False),
                )
            )
    return requests


@dg.schedule(
    cron_schedule="*/15 * * * *",
    job=district_sync_job,
    default_status=dg.DefaultScheduleStatus.RUNNING,
    description="Delta sync of each enabled district when its registry cron is due (default 02:00 nightly).",
)
def nightly_delta_sync(context: dg.ScheduleEvaluationContext, settings: RosterSettings):
    registry = settings.registry()
    assert context.scheduled_execution_time is not None
    requests = due_run_requests(registry, context.scheduled_execution_time)
    return requests or dg.SkipReason("no enabled district is due in this 15-minute window")


@dg.schedule(
    cron_schedule="0 3 * * 0",
    job=district_sync_job,
    default_status=dg.DefaultScheduleStatus.RUNNING,
    description="Weekly full reconciliation of every enabled district (tombstones what deltas cannot see).",
)
def weekly_full_reconciliation(context: dg.ScheduleEvaluationContext, settings: RosterSettings):
    assert context.scheduled_execution_time is not None
    stamp = context.scheduled_execution_time.date().isoformat()
    return [
        dg.RunRequest(run_key=f"full:{d.id}:{stamp}", partition_key=d.id, tags=run_tags(d, full=True))
        for d in settings.registry().enabled
    ]


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
