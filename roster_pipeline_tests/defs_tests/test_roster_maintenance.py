"""The roster store's maintenance asset runs in Dagster beside the district syncs."""

from __future__ import annotations

import dagster as dg

from roster_pipeline.defs import roster_maintenance
from roster_pipeline.defs.assembly import defs
from roster_pipeline.defs.roster_maintenance import roster_compaction_sensor, roster_store_maintenance
from roster_pipeline_tests.defs_tests.test_pipeline import small


def test_maintenance_materialises_after_syncs_and_reports_what_it_did(world):
    world.add_rest_district(small("oak"), "oauth2")
    assert world.sync("oak").success
    assert world.sync("oak").success
    result = dg.materialize([roster_store_maintenance], resources={"settings": world.settings}, instance=world.instance)
    assert result.success
    (materialization,) = result.asset_materializations_for_node("roster_store__maintenance")
    assert {"merged_files", "expired_snapshots", "deleted_orphans"} <= set(materialization.metadata)
    with world.roster() as con:
        assert con.execute("SELECT count(*) FROM students WHERE district_id = 'oak'").fetchone()[0] > 0


def test_maintenance_is_scheduled_daily_and_not_part_of_a_district_sync():
    schedule = defs.get_schedule_def("roster_maintenance_daily")
    assert schedule.cron_schedule == "30 5 * * *"
    sync_keys = defs.resolve_job_def("district_sync").asset_layer.selected_asset_keys
    assert dg.AssetKey(["roster_store", "maintenance"]) not in sync_keys


def test_the_roster_is_compacted_again_after_enough_publishes(world, monkeypatch):
    monkeypatch.setattr(roster_maintenance, "COMPACT_AFTER_PUBLISHES", 2)
    world.add_rest_district(small("oak"), "oauth2")

    def evaluate() -> dg.RunRequest | dg.SkipReason:
        return roster_compaction_sensor(dg.build_sensor_context(instance=world.instance))

    assert world.sync("oak").success
    assert isinstance(evaluate(), dg.SkipReason)  # one publish since the roster was (never) compacted
    assert world.sync("oak").success
    first = evaluate()
    assert isinstance(first, dg.RunRequest) and first.job_name in (None, "roster_maintenance")
    assert evaluate().run_key == first.run_key  # asked again while queued: the same key, so Dagster skips it

    result = dg.materialize(
        [roster_store_maintenance],
        resources={"settings": world.settings},
        instance=world.instance,
        run_config=first.run_config,  # compaction only, beside the night's publishes
    )
    assert result.success
    (materialization,) = result.asset_materializations_for_node("roster_store__maintenance")
    assert "merged_files" in materialization.metadata
    assert "expired_snapshots" not in materialization.metadata  # that waits for the 05:30 run
    assert isinstance(evaluate(), dg.SkipReason)  # compacted: the count starts again
    assert world.sync("oak").success and world.sync("oak").success
    second = evaluate()
    assert isinstance(second, dg.RunRequest) and second.run_key != first.run_key


def test_no_compaction_is_asked_for_while_one_is_queued_and_a_failed_one_waits_for_as_many_publishes(
    world, monkeypatch
):
    monkeypatch.setattr(roster_maintenance, "COMPACT_AFTER_PUBLISHES", 2)
    world.add_rest_district(small("oak"), "oauth2")

    def evaluate() -> dg.RunRequest | dg.SkipReason:
        return roster_compaction_sensor(dg.build_sensor_context(instance=world.instance))

    assert world.sync("oak").success and world.sync("oak").success
    request = evaluate()
    assert isinstance(request, dg.RunRequest)
    queued = world.instance.create_run_for_job(
        defs.resolve_job_def("roster_maintenance"), run_config=request.run_config
    )
    skipped = evaluate()
    assert isinstance(skipped, dg.SkipReason) and "already queued or running" in (skipped.skip_message or "")

    world.instance.report_run_failed(queued)  # the compaction failed: it is not asked for again every minute
    assert isinstance(evaluate(), dg.SkipReason)
    assert world.sync("oak").success and world.sync("oak").success  # ... but after as many more publishes
    retry = evaluate()
    assert isinstance(retry, dg.RunRequest) and retry.run_key != request.run_key


def test_a_compaction_runs_in_its_runs_own_process():
    # A one-step job: the default (multiprocess) executor would start a second process for its step.
    assert defs.resolve_job_def("roster_maintenance").executor_def.name == dg.in_process_executor.name


def test_the_compaction_sensor_runs_by_default():
    sensor = defs.get_sensor_def("roster_compaction_sensor")
    assert sensor.default_status == dg.DefaultSensorStatus.RUNNING
    assert sensor.job_name == "roster_maintenance"
