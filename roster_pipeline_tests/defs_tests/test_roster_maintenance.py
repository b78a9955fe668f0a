"""The roster store's maintenance asset runs in Dagster beside the district syncs."""

from __future__ import annotations

import dagster as dg

from roster_pipeline.defs.assembly import defs
from roster_pipeline.defs.roster_maintenance import roster_store_maintenance
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
