"""Running one district's whole sync in-process against the Dagster instance, and summarising it."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import dagster as dg

from roster_pipeline.assets.fetch import FULL_SYNC_TAG, fetch_assets
from roster_pipeline.assets.roster import ROSTER_POOL, roster_tables
from roster_pipeline.oneroster import ENDPOINTS_V1P1
from roster_pipeline.partitions import district_partitions
from roster_pipeline.recovery import PID_TAG, process_tags, recover_dead_runs
from roster_pipeline.resources import RosterSettings
from roster_pipeline.slot_wait import SlotWait, SlotWaitTimeout, pool_limited, wait_for_room

ENDPOINT_ORDER = {spec.name: position for position, spec in enumerate(ENDPOINTS_V1P1)}
# How long a sync waits for the roster store's pool slot while another live run holds it.
DEFAULT_SLOT_TIMEOUT_S = 900.0


@dataclass
class SyncResult:
    district_id: str
    success: bool
    run_id: str
    endpoints: dict[str, dict[str, Any]] = field(default_factory=dict)
    tables: dict[str, int] = field(default_factory=dict)
    checks: dict[str, bool] = field(default_factory=dict)
    error: str | None = None


def sync_district(
    district_id: str,
    *,
    full: bool = False,
    instance: dg.DagsterInstance | None = None,
    settings: RosterSettings | None = None,
    log_level: str = "INFO",
    slot_timeout: float = DEFAULT_SLOT_TIMEOUT_S,
    say: Callable[[str], None] = print,
) -> SyncResult:
    """Materialise every fetch and roster asset of one district in one run; failures are reported, not raised.

    First it recovers from killed runs (marks them failed, frees their pool slots, removes their half-written
    files) and says what it cleaned; while it waits for the roster store's pool slot it says who holds it, and it
    gives up after ``slot_timeout`` seconds.
    """
    settings = settings or RosterSettings()
    registry = settings.registry()
    provider = registry.district(district_id).provider.key  # a clear error for an unknown district first
    instance = instance or dg.DagsterInstance.get()
    recover_dead_runs(instance, say)
    for leftover in settings.lake().clean_abandoned():
        say(f"removed {leftover}, left by a killed run")
    partitions = instance.get_dynamic_partitions(district_partitions.name or "district")
    if district_id not in partitions:
        instance.add_dynamic_partitions(district_partitions.name or "district", [district_id])
    tags = {FULL_SYNC_TAG: str(full).lower(), "roster/district": district_id, "roster/provider": provider}
    tags.update(process_tags())
    try:
        wait_for_room(instance, ROSTER_POOL, timeout=slot_timeout, district_id=district_id, log=say)
    except SlotWaitTimeout as error:
        return SyncResult(district_id, False, "", error=str(error))
    watch = SlotWait(instance, ROSTER_POOL, tags[PID_TAG], timeout=slot_timeout, district_id=district_id, log=say)
    if pool_limited(instance, ROSTER_POOL):  # without a limit there is nothing to wait for
        watch.start()
    try:
        outcome = dg.materialize(
            [*fetch_assets, roster_tables],
            partition_key=district_id,
            instance=instance,
            resources={"settings": settings},
            tags=tags,
            run_config={"loggers": {"console": {"config": {"log_level": log_level}}}},
            raise_on_error=False,
        )
    except SlotWaitTimeout:
        assert watch.gave_up is not None
        return SyncResult(
            district_id, False, _fail_own_runs(instance, tags[PID_TAG], watch.gave_up), error=watch.gave_up
        )
    finally:
        watch.stop()
    result = SyncResult(district_id, outcome.success, outcome.run_id)
    for event in outcome.get_asset_materialization_events():
        materialization = event.step_materialization_data.materialization
        assert materialization is not None
        path = materialization.asset_key.path
        values = {key: value.value for key, value in materialization.metadata.items()}
        if path[0] == "oneroster":
            result.endpoints[path[1]] = values
        else:
            rows = values.get("rows", 0)
            result.tables[path[1]] = rows if isinstance(rows, int) else 0
    for event in outcome.all_events:
        if event.event_type_value == "ASSET_CHECK_EVALUATION":
            evaluation = event.asset_check_evaluation_data
            result.checks[evaluation.check_name] = evaluation.passed
    if not outcome.success:
        failures = [e for e in outcome.all_events if e.is_step_failure]
        result.error = "; ".join(_failure_message(e) for e in failures) or "run failed"
    if watch.gave_up:  # the execution ended on SlotWaitTimeout and reported it as its own failure
        _fail_own_runs(instance, tags[PID_TAG], watch.gave_up)
        result.success, result.error = False, watch.gave_up
    return result


def _fail_own_runs(instance: dg.DagsterInstance, pid_tag: str, reason: str) -> str:
    """Mark this process's unfinished runs failed (a run given up on must not hold a slot); return the last id."""
    run_id = ""
    unfinished = [dg.DagsterRunStatus.STARTED, dg.DagsterRunStatus.STARTING, dg.DagsterRunStatus.NOT_STARTED]
    for record in instance.get_run_records(dg.RunsFilter(tags={PID_TAG: pid_tag}, statuses=unfinished)):
        instance.report_run_failed(record.dagster_run, reason)
        instance.event_log_storage.free_concurrency_slots_for_run(record.dagster_run.run_id)
        run_id = record.dagster_run.run_id
    return run_id


def _failure_message(event: dg.DagsterEvent) -> str:
    data = event.step_failure_data
    error = data.error if data else None
    # Dagster wraps the asset's own exception; that one, not what it was raised from, says what happened.
    while error is not None and error.cause is not None and (error.cls_name or "").startswith("Dagster"):
        error = error.cause
    message = error.message.strip() if error else "failed"
    return f"{event.step_key}: {message.splitlines()[0] if message else 'failed'}"


def print_summary(result: SyncResult) -> None:
    """Print per-endpoint fetch results and per-table row counts as two plain tables."""
    print(f"\nDistrict {result.district_id} — run {result.run_id[:8]} — {'OK' if result.success else 'FAILED'}")
    print(f"{'endpoint':18} {'mode':6} {'records':>9} {'pages':>6} {'offered':>8}")
    for endpoint, values in sorted(result.endpoints.items(), key=lambda item: ENDPOINT_ORDER.get(item[0], 99)):
        if values.get("offered") is False:
            values = {**values, "mode": "-"}
        print(
            f"{endpoint:18} {values.get('mode', ''):6} {values.get('records', 0):>9} "
            f"{values.get('pages', 0):>6} {values.get('offered', '')!s:>8}"
        )
    if result.tables:
        print(f"\n{'table':24} {'rows':>9}")
        for table, rows in result.tables.items():
            print(f"{table:24} {rows:>9}")
    failed = [name for name, passed in result.checks.items() if not passed]
    if result.checks:
        print(
            f"\nchecks: {len(result.checks) - len(failed)} passed"
            + (f", failed: {', '.join(failed)}" if failed else "")
        )
    if result.error:
        print(f"\nerror: {result.error}")
