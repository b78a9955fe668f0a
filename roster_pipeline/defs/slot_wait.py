"""Waiting for a pool slot out loud: say who holds it, free it if its holder died, give up after a bound.

Dagster's in-process executor waits for a `roster_duckdb` slot silently and without end. So a sync first waits
here, before it starts its run, until the pool has room (`wait_for_room`); and while its run executes, a watcher
(`SlotWait`) covers the moment another run takes the slot first: it reports, frees dead holders, and past the
bound stops the run with `SlotWaitTimeout` (raised in the main thread: the in-process executor checks neither
interrupts nor cancellation while it waits for a claim).
"""

from __future__ import annotations

import ctypes
import threading
import time
from collections.abc import Callable
from datetime import UTC, datetime

import dagster as dg

from roster_pipeline.defs.run_recovery import recover_dead_runs
from roster_pipeline.defs.run_tags import DISTRICT_TAG, PID_TAG


class SlotWaitTimeout(BaseException):  # not Exception: no `except Exception` in Dagster may swallow it
    """A sync waited longer than its bound for a pool slot that a live run holds.

    Raised into a running execution, it must end the execution rather than become a step failure."""


def wait_for_room(
    instance: dg.DagsterInstance,
    pool: str,
    *,
    timeout: float,
    district_id: str,
    log: Callable[[str], None] = print,
    poll: float = 1.0,
    report_every: float = 30.0,
) -> None:
    """Return once ``pool`` has a free slot; raise SlotWaitTimeout naming the holders after ``timeout`` s."""
    started, reported_at = time.monotonic(), float("-inf")
    while True:
        holders = _holders_of_full_pool(instance, pool)
        if holders is None:
            return
        if recover_dead_runs(instance, log):
            continue  # a dead holder's slot was freed: look again
        waited = time.monotonic() - started
        if waited >= timeout:
            raise SlotWaitTimeout(_gave_up(district_id, pool, waited, holders))
        if time.monotonic() - reported_at >= report_every:
            reported_at = time.monotonic()
            log(_waiting(district_id, pool, holders, timeout))
        time.sleep(poll)


def initialize_pool(instance: dg.DagsterInstance, pool: str) -> None:
    """Give ``pool`` the instance's default limit now, as its first step would, if nothing has yet.

    On PostgreSQL, Dagster's initialisation fails one of two steps that do it at the same moment (a unique
    violation it catches inside a transaction that is then aborted), so the first runs of a new deployment
    starting together could fail; done once beforehand, no step needs to."""
    storage = instance.event_log_storage
    if not storage.supports_global_concurrency_limits:
        return
    if pool not in {limit.name for limit in storage.get_pool_limits()}:
        storage.initialize_concurrency_limit_to_default(pool)


def pool_limited(instance: dg.DagsterInstance, pool: str) -> bool:
    """Whether the instance limits ``pool`` (an instance without pool settings never makes a step wait)."""
    storage = instance.event_log_storage
    if not storage.supports_global_concurrency_limits:
        return False
    info = storage.get_concurrency_info(pool)
    return bool(info.limit if info.limit is not None else info.slot_count)


def _holders_of_full_pool(instance: dg.DagsterInstance, pool: str) -> str | None:
    """Who holds the pool's slots when none is free; None when one is (or the pool has no limit)."""
    info = instance.event_log_storage.get_concurrency_info(pool)
    limit = info.limit if info.limit is not None else info.slot_count
    if not limit or len(info.claimed_slots) < limit:
        return None
    return describe_runs(instance, sorted(info.active_run_ids))


def describe_runs(instance: dg.DagsterInstance, run_ids: list[str]) -> str:
    described = []
    for run_id in run_ids:
        run = instance.get_run_by_id(run_id)
        district = run.tags.get(DISTRICT_TAG, "?") if run else "?"
        status = run.status.value if run else "unknown"
        described.append(f"run {run_id[:8]} (district '{district}', {status})")
    return ", ".join(described) or "no run (the slot is being handed over)"


def _waiting(district_id: str, pool: str, holders: str, timeout: float) -> str:
    return f"district '{district_id}': waiting for a '{pool}' pool slot held by {holders} (up to {timeout:.0f} s)"


def _gave_up(district_id: str, pool: str, waited: float, holders: str) -> str:
    return (
        f"district '{district_id}': gave up after waiting {waited:.0f} s for a '{pool}' pool slot, held by "
        f"{holders}. Wait for that run, or cancel it in the Dagster UI if it is stuck."
    )


class SlotWait(threading.Thread):
    """Watches the runs tagged with ``pid_tag`` (this process's) while they wait for a slot of ``pool``.

    After ``timeout`` seconds of waiting it raises SlotWaitTimeout in the thread that started it; ``gave_up`` then
    says why.
    """

    def __init__(
        self,
        instance: dg.DagsterInstance,
        pool: str,
        pid_tag: str,
        *,
        timeout: float,
        district_id: str,
        log: Callable[[str], None] = print,
        poll: float = 1.0,
        report_every: float = 30.0,
    ) -> None:
        super().__init__(name="roster-slot-wait", daemon=True)
        self.instance, self.pool, self.pid_tag = instance, pool, pid_tag
        self.timeout, self.district_id, self.log = timeout, district_id, log
        self.poll, self.report_every = poll, report_every
        self.gave_up: str | None = None
        self._stop_event = threading.Event()
        self._main = threading.get_ident()  # the thread executing the run: started from it

    def stop(self) -> None:
        self._stop_event.set()
        if self.is_alive():
            self.join(timeout=5)

    def run(self) -> None:
        waiting_since: float | None = None
        reported_at = 0.0
        while not self._stop_event.wait(self.poll):
            holders = self._holders_while_waiting()
            if holders is None:
                waiting_since = None
                continue
            now = time.monotonic()
            waiting_since = waiting_since or now
            if recover_dead_runs(self.instance, self.log):
                continue  # a dead holder's slot was freed: the step claims it at its next check
            waited = now - waiting_since
            if waited >= self.timeout and self._holders_while_waiting() is not None:  # still waiting: stop it
                self.gave_up = _gave_up(self.district_id, self.pool, waited, holders)
                self.log(self.gave_up)
                _raise_in_thread(self._main, SlotWaitTimeout)
                return
            if now - reported_at >= self.report_every:
                reported_at = now
                self.log(_waiting(self.district_id, self.pool, holders, self.timeout))

    def _holders_while_waiting(self) -> str | None:
        """Who holds the pool's slots while one of our steps waits for one; None when we are not waiting."""
        info = self.instance.event_log_storage.get_concurrency_info(self.pool)
        waiting = {step.run_id for step in info.pending_steps if step.assigned_timestamp is None}
        ours = [run_id for run_id in waiting if self._is_ours(run_id)]
        if not ours:
            return None
        return describe_runs(self.instance, sorted(info.active_run_ids))

    def _is_ours(self, run_id: str) -> bool:
        run = self.instance.get_run_by_id(run_id)
        return run is not None and run.tags.get(PID_TAG) == self.pid_tag


def _raise_in_thread(thread_id: int, error: type[BaseException]) -> None:
    """Raise ``error`` in another thread at its next Python instruction (CPython's PyThreadState_SetAsyncExc)."""
    ctypes.pythonapi.PyThreadState_SetAsyncExc(ctypes.c_ulong(thread_id), ctypes.py_object(error))


# How long a step may wait while its pool has a free slot before it counts as stranded (Dagster hands a freed slot
# to the next waiting step within a second or two; anything longer is a lost hand-over).
STRANDED_AFTER_S = 60.0


def assign_stranded_waits(instance: dg.DagsterInstance, pool: str, now: datetime | None = None) -> list[str]:
    """Hand a free slot to each step that has waited for it too long; returns the runs whose steps were assigned.

    With SQLite storage a step that starts waiting just as another run frees the last slot can be recorded as
    waiting and never given the slot, which is free: only a later release hands it on, so the night's last run
    waits forever (seen by bench/fleet.py). The abandoned-runs sensor calls this every minute."""
    storage = instance.event_log_storage
    assign = getattr(storage, "assign_pending_steps", None)  # SQL storages (SQLite, PostgreSQL) have it
    if not storage.supports_global_concurrency_limits or assign is None:
        return []
    info = storage.get_concurrency_info(pool)
    limit = info.limit if info.limit is not None else info.slot_count
    assigned = [step for step in info.pending_steps if step.assigned_timestamp is not None]
    moment = now or datetime.now(UTC)
    stranded = sorted(
        (
            step
            for step in info.pending_steps
            if step.assigned_timestamp is None
            and (moment - _aware(step.enqueued_timestamp)).total_seconds() >= STRANDED_AFTER_S
        ),
        key=lambda step: step.enqueued_timestamp,
    )
    free = max(0, (limit or 0) - max(len(assigned), len(info.claimed_slots)))
    handed = stranded[:free]
    for _ in handed:
        assign([pool])  # the longest-waiting unassigned step, one per call
    return [step.run_id for step in handed]


def _aware(moment: datetime) -> datetime:
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)
