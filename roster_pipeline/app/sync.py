"""Running one district's whole sync in-process against the Dagster instance, and summarising it."""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from typing import Any

import dagster as dg
from dagster._core.storage.defs_state.base import set_defs_state_storage
from rich.console import Console
from rich.live import Live
from rich.table import Table
from rich.text import Text

from roster_pipeline.app.progress import RunLog, SyncBoard, findings, listening_logger, terminal
from roster_pipeline.app.sync_results import CheckOutcome, SyncResult
from roster_pipeline.defs.asset_keys import fetch_asset_key
from roster_pipeline.defs.endpoint_assets import FETCH_STEP, oneroster_endpoints
from roster_pipeline.defs.partitions import ensure_district_partitions
from roster_pipeline.defs.resources import RosterSettings
from roster_pipeline.defs.roster_assets import ROSTER_POOL, roster_tables
from roster_pipeline.defs.roster_maintenance import compaction_request, roster_maintenance_job, roster_store_maintenance
from roster_pipeline.defs.run_recovery import fail_run, recover_dead_runs
from roster_pipeline.defs.run_tags import PID_TAG, process_tags, sync_run_tags
from roster_pipeline.defs.slot_wait import SlotWait, SlotWaitTimeout, pool_limited, wait_for_room
from roster_pipeline.defs.step_failures import failure_cause, failure_message

# The name `dg.materialize` gives its runs, which in-process syncs have always carried.
SYNC_JOB_NAME = "__ephemeral_asset_job__"
# How long a sync waits for the roster store's pool slot while another live run holds it.
DEFAULT_SLOT_TIMEOUT_S = 900.0


def sync_district(
    district_id: str,
    *,
    full: bool = False,
    instance: dg.DagsterInstance | None = None,
    settings: RosterSettings | None = None,
    log_level: str = "INFO",
    slot_timeout: float = DEFAULT_SLOT_TIMEOUT_S,
    say: Callable[[str], None] = print,
    listener: Callable[[RunLog], None] | None = None,
) -> SyncResult:
    """Materialise every fetch and roster asset of one district in one run; failures are reported, not raised.

    First it recovers from killed runs (marks them failed, frees their pool slots, removes their half-written
    files) and says what it cleaned; while it waits for the roster store's pool slot it says who holds it, and it
    gives up after ``slot_timeout`` seconds. Dagster's console lines are logged at ``log_level``; ``listener``
    receives every event of the run as it happens (the live progress display).
    """
    started = time.monotonic()
    settings = settings or RosterSettings()
    registry = settings.registry()
    district = registry.district(district_id)  # a clear error for an unknown district first
    instance = instance or dg.DagsterInstance.get()
    recover_dead_runs(instance, say)
    for leftover in settings.lake().clean_abandoned():
        say(f"removed {leftover}, left by a killed run")
    ensure_district_partitions(instance, [district])
    tags = {**sync_run_tags(district, full=full), **process_tags()}
    try:
        wait_for_room(instance, ROSTER_POOL, timeout=slot_timeout, district_id=district_id, log=say)
    except SlotWaitTimeout as error:
        return SyncResult(district_id, False, "", error=str(error))
    watch = SlotWait(instance, ROSTER_POOL, tags[PID_TAG], timeout=slot_timeout, district_id=district_id, log=say)
    if pool_limited(instance, ROSTER_POOL):  # without a limit there is nothing to wait for
        watch.start()
    try:
        outcome = _materialize(district_id, instance, settings, tags, log_level, listener)
    except SlotWaitTimeout:
        assert watch.gave_up is not None
        return SyncResult(
            district_id, False, _fail_own_runs(instance, tags[PID_TAG], watch.gave_up), error=watch.gave_up
        )
    finally:
        watch.stop()
    result = SyncResult(district_id, outcome.success, outcome.run_id, seconds=time.monotonic() - started)
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
            result.check_outcomes[evaluation.check_name] = CheckOutcome(
                evaluation.check_name,
                evaluation.passed,
                evaluation.severity.value,
                evaluation.description,
                {key: value.value for key, value in evaluation.metadata.items()},
            )
    if not outcome.success:
        failures = [e for e in outcome.all_events if e.is_step_failure]
        messages, result.step_errors = [], {}
        for failure in failures:
            if failed := failed_endpoints(failure):  # the fetch step: each failed endpoint on its own
                result.step_errors.update(failed)
                messages += [f"{key}: {cause}" for key, cause in failed.items()]
            else:
                result.step_errors[failure.step_key or ""] = failure_cause(failure)
                messages.append(failure_message(failure))
        result.error = "; ".join(messages) or "run failed"
    if watch.gave_up:  # the execution ended on SlotWaitTimeout and reported it as its own failure
        _fail_own_runs(instance, tags[PID_TAG], watch.gave_up)
        result.success, result.error = False, watch.gave_up
    return result


def _materialize(
    district_id: str,
    instance: dg.DagsterInstance,
    settings: RosterSettings,
    tags: dict[str, str],
    log_level: str,
    listener: Callable[[RunLog], None] | None,
) -> dg.ExecuteInProcessResult:
    """`dg.materialize` of every asset for one partition, with a listening logger beside the console one
    (`materialize` takes no loggers)."""
    loggers = {"console": dg.colored_console_logger}
    logger_config: dict[str, Any] = {"console": {"config": {"log_level": log_level}}}
    if listener is not None:
        loggers["progress"] = listening_logger(listener)
        logger_config["progress"] = {}
    defs = dg.Definitions(
        assets=[oneroster_endpoints, roster_tables],
        jobs=[dg.define_asset_job(SYNC_JOB_NAME)],
        resources={"settings": settings},
        loggers=loggers,
    )
    # Dagster reads definitions state from whichever instance was last entered in this context; pin it to the one
    # this run uses, so an instance disposed earlier (in a long-lived process, or a test) is never consulted.
    with set_defs_state_storage(instance.defs_state_storage):
        return defs.resolve_job_def(SYNC_JOB_NAME).execute_in_process(
            run_config={"loggers": logger_config},
            instance=instance,
            partition_key=district_id,
            raise_on_error=False,
            tags=tags,
        )


def failed_endpoints(failure: dg.DagsterEvent) -> dict[str, str]:
    """The endpoints a failed fetch step names (see `oneroster_endpoints`), each by its asset key as a step key
    would name it (`oneroster__users`), with its error; empty for any other failure."""
    data = failure.step_failure_data.user_failure_data if failure.step_failure_data else None
    named = data.metadata.get("failed_endpoints") if data and failure.step_key == FETCH_STEP else None
    if named is None or not isinstance(named.value, dict):
        return {}
    return {fetch_asset_key(endpoint).to_python_identifier(): str(error) for endpoint, error in named.value.items()}


def _fail_own_runs(instance: dg.DagsterInstance, pid_tag: str, reason: str) -> str:
    """Mark this process's unfinished runs failed (a run given up on must not hold a slot); return the last id."""
    run_id = ""
    unfinished = [dg.DagsterRunStatus.STARTED, dg.DagsterRunStatus.STARTING, dg.DagsterRunStatus.NOT_STARTED]
    for record in instance.get_run_records(dg.RunsFilter(tags={PID_TAG: pid_tag}, statuses=unfinished)):
        fail_run(instance, record.dagster_run, reason)
        run_id = record.dagster_run.run_id
    return run_id


def compact_if_due(
    instance: dg.DagsterInstance,
    settings: RosterSettings,
    say: Callable[[str], None] = print,
    log_level: str = "CRITICAL",
) -> bool | None:
    """Compact the roster as the daemon's `roster_compaction_sensor` would have asked for by now: syncs run without the
    daemon (`roster-pipeline sync` from cron, one district after another) would otherwise let every publish read
    more catalog rows than the one before. The run is a `roster_maintenance` run, so the sensor and the next sync see
    it; it names this process, so a sync killed during it leaves a run the next sync's recovery fails, not one that
    blocks every later compaction as "already running". Returns whether it succeeded, or None when none was due.

    Two syncs finishing together may both find it due; maintenance runs one at a time, so the second waits for the
    first and then finds little to merge."""
    request = compaction_request(instance)
    if isinstance(request, dg.SkipReason):
        return None
    say("compacting the roster (merge-only roster_maintenance run) after the publishes since it last was")
    job = dg.Definitions(
        assets=[roster_store_maintenance], jobs=[roster_maintenance_job], resources={"settings": settings}
    ).resolve_job_def(roster_maintenance_job.name)
    config = {**request.run_config, "loggers": {"console": {"config": {"log_level": log_level}}}}
    outcome = job.execute_in_process(instance=instance, run_config=config, tags=process_tags(), raise_on_error=False)
    if not outcome.success:
        say(f"the roster's compaction failed (run {outcome.run_id}); it is tried again after as many publishes")
    return outcome.success


def sync_with_progress(
    district_ids: list[str],
    *,
    title: str,
    full: bool = False,
    verbose: bool = False,
    slot_timeout: float = DEFAULT_SLOT_TIMEOUT_S,
    console: Console | None = None,
) -> list[SyncResult]:
    """Sync districts one after another under a live table (records per endpoint as they land, the publish, its
    checks), which stays on screen as their summary.

    Dagster's console lines (INFO and up, stack traces included) only when `verbose`; otherwise the warnings the
    assets log are printed as one line each, and errors are left to the summary (`findings`).
    """
    console = console or terminal()
    board = SyncBoard(title, district_ids)

    def listener(district_id: str) -> Callable[[RunLog], None]:
        show = board.listener(district_id)

        def listen(log: RunLog) -> None:
            show(log)
            if not verbose and log.event is None and log.level == logging.WARNING:
                console.print(Text.assemble(("warning ", "yellow"), (district_id, "bold"), f": {log.message}"))

        return listen

    results = []
    with Live(board, console=console, refresh_per_second=8):
        for district_id in district_ids:
            result = sync_district(
                district_id,
                full=full,
                log_level="INFO" if verbose else "CRITICAL",
                slot_timeout=slot_timeout,
                listener=listener(district_id),
            )
            board.finish(result)
            results.append(result)
    if not console.is_terminal:  # in a terminal Live ends its last line itself
        console.line()
    return results


def print_summary(result: SyncResult) -> None:
    """Print what a sync did: records per endpoint, the publish and its checks, the published row counts, then
    each failed check, warning and error."""
    console = terminal()
    modes = sorted({str(v["mode"]) for v in result.endpoints.values() if v.get("offered") is not False})
    mode = f"{' and '.join(modes)} sync" if modes else "sync"
    board = SyncBoard(f"District {result.district_id}: {mode}, run {result.run_id[:8] or '-'}", [result.district_id])
    board.finish(result)
    console.print(board)
    print_details(result)


def print_details(result: SyncResult) -> None:
    """The published row counts, then each failed check, warning and error of a sync."""
    console = terminal()
    if result.tables:
        counts = Table(title="Rows published", title_justify="left", title_style="bold", box=None, pad_edge=False)
        columns = 4
        for _ in range(columns):
            counts.add_column()
            counts.add_column(justify="right")
        cells = [cell for table, rows in result.tables.items() for cell in (table, f"{rows:,}")]
        cells += [""] * (-len(cells) % (2 * columns))
        for start in range(0, len(cells), 2 * columns):
            counts.add_row(*cells[start : start + 2 * columns])
        counts.show_header = False
        console.print()
        console.print(counts)
    if found := findings([result]):
        console.print()
        console.print(found)
