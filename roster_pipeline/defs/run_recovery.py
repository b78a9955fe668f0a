"""Recovering from runs whose process died without saying so (SIGKILL, the OOM killer, a deploy).

A run killed mid-sync stays STARTED in Dagster's storage and keeps its `roster_duckdb` pool slot and its place
under the per-district run limit, so every later sync would wait forever for a release only the dead process
could make. Nothing here waits on such a marker: a run is judged by whether its process still exists.

A run's process is known from the tags `sync` sets (`roster/host`, `roster/pid`), or, for a run the daemon
launched on this machine, from Dagster's own "(pid: N)" engine events. A run on another machine (a Kubernetes
worker) is left to Dagster's run monitoring, which can see its pod.
"""

from __future__ import annotations

import re
from collections.abc import Callable

import dagster as dg
from dagster._core.launcher import DefaultRunLauncher

from roster_pipeline.defs.run_tags import DISTRICT_TAG, HOST_TAG, PID_TAG
from roster_pipeline.store.process_owners import RunProcess, machine

_ENGINE_PID = re.compile(r"\(pid: (\d+)\)")
_UNFINISHED = [dg.DagsterRunStatus.STARTED, dg.DagsterRunStatus.CANCELING]
_FINISHED = [dg.DagsterRunStatus.SUCCESS, dg.DagsterRunStatus.FAILURE, dg.DagsterRunStatus.CANCELED]


def run_process(instance: dg.DagsterInstance, run: dg.DagsterRun) -> RunProcess | None:
    """The process executing ``run``, when it can be known from this machine."""
    if PID_TAG in run.tags:
        pid, _, started = run.tags[PID_TAG].partition(":")
        return RunProcess(run.tags.get(HOST_TAG, ""), int(pid), started or None)
    # The default launcher runs the worker beside the daemon; its first engine event names the worker's pid. That
    # pid means something here only when the instance's storage is this machine's own (SQLite files): with shared
    # storage (PostgreSQL) the worker may be in another container, and Dagster's run monitoring judges it.
    if not isinstance(instance.run_launcher, DefaultRunLauncher) or not _local_storage(instance):
        return None
    for entry in instance.all_logs(run.run_id, of_type=dg.DagsterEventType.ENGINE_EVENT):
        if match := _ENGINE_PID.search(entry.message or ""):
            return RunProcess(machine(), int(match.group(1)), None)
    return None


def _local_storage(instance: dg.DagsterInstance) -> bool:
    return type(instance.run_storage).__name__.startswith("Sqlite")


def recover_dead_runs(instance: dg.DagsterInstance, log: Callable[[str], None] = print) -> list[str]:
    """Mark failed every unfinished run whose process is gone, and free the pool slots it (or any finished run)
    still holds. Returns the run ids recovered; says what it did through ``log``."""
    host = machine()
    recovered = []
    for record in instance.get_run_records(dg.RunsFilter(statuses=_UNFINISHED)):
        run = record.dagster_run
        process = run_process(instance, run)
        if process is None or process.host != host or process.alive():
            continue
        district = run.tags.get(DISTRICT_TAG, "?")
        message = (
            f"run {run.run_id} (district '{district}') was left {run.status.value} by process {process.pid}, which "
            "no longer exists (killed?): marked failed and its pool slots freed"
        )
        fail_run(instance, run, message)
        recovered.append(run.run_id)
        log(message)
    recovered += _free_slots_of_finished_runs(instance, log)
    return recovered


def fail_run(instance: dg.DagsterInstance, run: dg.DagsterRun, reason: str) -> None:
    """Mark a run that will never finish failed, and free its pool slots and pending claims with it."""
    instance.report_run_failed(run, reason)
    instance.event_log_storage.free_concurrency_slots_for_run(run.run_id)


def _free_slots_of_finished_runs(instance: dg.DagsterInstance, log: Callable[[str], None]) -> list[str]:
    storage = instance.event_log_storage
    if not storage.supports_global_concurrency_limits:
        return []
    holders = storage.get_concurrency_run_ids()
    if not holders:
        return []
    freed = []
    for record in instance.get_run_records(dg.RunsFilter(run_ids=list(holders), statuses=_FINISHED)):
        run = record.dagster_run
        storage.free_concurrency_slots_for_run(run.run_id)
        freed.append(run.run_id)
        log(f"run {run.run_id} had finished ({run.status.value}) but still held a pool slot: freed")
    return freed
