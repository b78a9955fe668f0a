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
  telling (deltas cannot see hard deletes). Both schedules look back 24 h, so a fire missed while the daemon was
  down is caught up once (the run key names district and fire time); the per-district run limit queues a delta
  and a full sync that fall due together.
- `freshness_check_schedule` evaluates the per-district freshness check hourly.
- `abandoned_runs_sensor` marks failed, every minute, the runs whose process was killed (they would otherwise
  hold the `roster_duckdb` slot and their district's run limit forever) and removes their half-written files.

Each run is one district's whole sync (all endpoints, then its roster tables) in one process: the fetch step
lands the endpoints concurrently (see endpoint_assets.py), then the roster step publishes, so the eight
subprocesses (each importing Dagster) of the multiprocess executor would buy nothing. The roster step still
waits for the `roster_duckdb` pool slot: the in-process executor claims pool slots like the others. Runs carry the
tag `roster/provider`, which `dagster.yaml` limits per provider (so one SIS vendor is not hammered).
"""

from collections.abc import Callable
from datetime import datetime, timedelta
from zoneinfo import ZoneInfo

import dagster as dg

from roster_pipeline.config.registry import Registry
from roster_pipeline.defs.asset_checks import districts_fresh
from roster_pipeline.defs.partitions import district_partitions, missing_district_partitions
from roster_pipeline.defs.resources import RosterSettings
from roster_pipeline.defs.roster_assets import ROSTER_POOL
from roster_pipeline.defs.run_recovery import recover_dead_runs
from roster_pipeline.defs.run_tags import sync_run_tags
from roster_pipeline.defs.slot_wait import assign_stranded_waits, initialize_pool

LOOKBACK = timedelta(hours=24)

district_sync_job = dg.define_asset_job(
    "district_sync",
    selection=dg.AssetSelection.groups("oneroster", "roster", "derived"),
    description="A district's whole sync: every endpoint, then its roster and derived tables, with their checks.",
    executor_def=dg.in_process_executor,
)

freshness_check_job = dg.define_asset_job(
    "freshness_check",
    selection=dg.AssetSelection.checks(districts_fresh),
    description="Evaluates the per-district freshness check.",
)


def fired_between(cron: str, timezone: str, start: datetime, end: datetime) -> datetime | None:
    """The latest fire time of `cron` (in `timezone`) in (start, end], if any."""
    from dagster._utils.schedules import cron_string_iterator

    latest = None
    for fire in cron_string_iterator(start.timestamp() + 1, cron, timezone):
        if fire > end:
            break
        latest = fire
    return latest


def due_run_requests(
    registry: Registry,
    tick: datetime,
    *,
    full: bool,
    requested: Callable[[str], bool] = lambda run_key: False,
    paused: list[str] | None = None,
) -> list[dg.RunRequest]:
    """One RunRequest per enabled district whose delta (or full) cron fired within LOOKBACK of `tick` and has no
    run yet (`requested(run_key)`). Looking back, rather than at this tick's 15 minutes only, catches up a fire
    that a stopped daemon or a failed tick missed; the run key (district and fire time) keeps it to one run.

    A district in a pause or blackout window at `tick` is left out (and named in `paused`): its due fire runs at
    the first tick after the window, if it is still within LOOKBACK."""
    requests = []
    local_tick = tick.astimezone(ZoneInfo(registry.timezone))
    for district in registry.enabled:
        cron = district.full_schedule if full else district.schedule
        fire = fired_between(cron, registry.timezone, tick - LOOKBACK, tick)
        if fire is None:
            continue
        run_key = f"{'full' if full else 'delta'}:{district.id}:{fire.isoformat()}"
        if requested(run_key):
            continue
        if why := district.schedule_paused(local_tick):
            if paused is not None:
                paused.append(f"{district.id}: {why}")
            continue
        requests.append(
            dg.RunRequest(run_key=run_key, partition_key=district.id, tags=sync_run_tags(district, full=full))
        )
    return requests


def run_key_used(instance: dg.DagsterInstance) -> Callable[[str], bool]:
    """Whether a run with this run key exists (Dagster dedupes schedule run keys only within one tick)."""
    return lambda run_key: bool(instance.get_run_ids(dg.RunsFilter(tags={"dagster/run_key": run_key}), limit=1))


def build_sync_schedule(name: str, *, full: bool, description: str) -> dg.ScheduleDefinition:
    """A schedule ticking every 15 minutes that requests the districts whose delta (or full) cron is due."""
    kind = "full" if full else "delta"

    @dg.schedule(
        name=name,
        cron_schedule="*/15 * * * *",
        job=district_sync_job,
        default_status=dg.DefaultScheduleStatus.RUNNING,
        description=description,
    )
    def sync_schedule(context: dg.ScheduleEvaluationContext, settings: RosterSettings):
        assert context.scheduled_execution_time is not None
        tick, used = context.scheduled_execution_time, run_key_used(context.instance)
        paused: list[str] = []
        requests = due_run_requests(settings.registry(), tick, full=full, requested=used, paused=paused)
        if paused:
            context.log.info(f"not started, paused: {'; '.join(paused)} (a sync started by hand still runs)")
        if requests:
            return requests
        reason = f"no enabled district is due for a {kind} sync"
        return dg.SkipReason(reason + (f"; paused: {'; '.join(paused)}" if paused else ""))

    return sync_schedule


nightly_delta_sync = build_sync_schedule(
    "nightly_delta_sync",
    full=False,
    description="Delta sync of each enabled district when its registry `schedule` is due (default 02:00 nightly, "
    "registry timezone); a fire missed in the last 24 h is caught up once.",
)

weekly_full_reconciliation = build_sync_schedule(
    "weekly_full_reconciliation",
    full=True,
    description="Full reconciliation of each enabled district when its registry `full_schedule` is due (default "
    "Sunday 03:00, registry timezone): tombstones what deltas cannot see; a missed fire is caught up once.",
)


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
    missing = missing_district_partitions(context.instance, registry.enabled)
    if not missing:
        return dg.SkipReason(f"all {len(registry.enabled)} enabled districts have partitions")
    return dg.SensorResult(dynamic_partitions_requests=[district_partitions.build_add_request(missing)])


@dg.sensor(
    minimum_interval_seconds=60,
    default_status=dg.DefaultSensorStatus.RUNNING,
    description="Marks failed the runs whose process is gone (killed, out of memory) and frees their pool slots, "
    "so no later sync waits for them; removes the files they left half-written.",
)
def abandoned_runs_sensor(context: dg.SensorEvaluationContext, settings: RosterSettings):
    initialize_pool(context.instance, ROSTER_POOL)  # within a minute of a new deployment, before its first night
    recovered = recover_dead_runs(context.instance, context.log.warning)
    leftovers = settings.lake().clean_abandoned()
    for leftover in leftovers:
        context.log.warning(f"removed {leftover}, left by a killed run")
    unstuck = assign_stranded_waits(context.instance, ROSTER_POOL)
    for run_id in unstuck:
        context.log.warning(f"run {run_id[:8]} waited for a '{ROSTER_POOL}' slot that was free: handed it the slot")
    if not recovered and not leftovers and not unstuck:
        return dg.SkipReason("no abandoned runs")
    return dg.SkipReason(
        f"recovered {len(recovered)} abandoned run(s), removed {len(leftovers)} leftover(s), "
        f"handed {len(unstuck)} stranded step(s) a free slot"
    )
