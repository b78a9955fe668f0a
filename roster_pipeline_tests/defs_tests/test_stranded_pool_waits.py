"""A step left waiting for a pool slot that is free is handed the slot (a lost hand-over in Dagster's SQLite
storage once stalled the last run of a night's fleet forever)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import dagster as dg

from roster_pipeline.defs.roster_assets import ROSTER_POOL
from roster_pipeline.defs.slot_wait import STRANDED_AFTER_S, assign_stranded_waits


def waiting_runs(instance: dg.DagsterInstance) -> set[str]:
    info = instance.event_log_storage.get_concurrency_info(ROSTER_POOL)
    return {step.run_id for step in info.pending_steps if step.assigned_timestamp is None}


def test_a_step_waiting_while_a_slot_is_free_is_handed_it_once_it_has_waited_too_long():
    with dg.instance_for_test() as instance:
        storage = instance.event_log_storage
        storage.set_concurrency_slots(ROSTER_POOL, 1)
        storage.add_pending_step(ROSTER_POOL, "stranded-run", "roster_tables")  # waiting, never assigned
        assert waiting_runs(instance) == {"stranded-run"}

        assert assign_stranded_waits(instance, ROSTER_POOL) == []  # just enqueued: Dagster may still hand it on
        later = datetime.now(UTC) + timedelta(seconds=STRANDED_AFTER_S + 1)
        assert assign_stranded_waits(instance, ROSTER_POOL, now=later) == ["stranded-run"]
        assert waiting_runs(instance) == set()
        claim = storage.claim_concurrency_slot(ROSTER_POOL, "stranded-run", "roster_tables")
        assert claim.is_claimed


def test_a_step_waiting_for_a_pool_that_is_really_full_keeps_waiting():
    with dg.instance_for_test() as instance:
        storage = instance.event_log_storage
        storage.set_concurrency_slots(ROSTER_POOL, 1)
        assert storage.claim_concurrency_slot(ROSTER_POOL, "holder", "roster_tables").is_claimed
        storage.add_pending_step(ROSTER_POOL, "queued", "roster_tables")
        later = datetime.now(UTC) + timedelta(seconds=STRANDED_AFTER_S + 1)
        assert assign_stranded_waits(instance, ROSTER_POOL, now=later) == []
        assert waiting_runs(instance) == {"queued"}
