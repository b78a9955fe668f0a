"""All Dagster definitions of roster_pipeline, assembled in one place (with the cross-cutting freshness policy)."""

from __future__ import annotations

from datetime import timedelta

import dagster as dg

from roster_pipeline.defs.alerts import district_alerts_sensor
from roster_pipeline.defs.asset_checks import districts_fresh
from roster_pipeline.defs.automation import (
    abandoned_runs_sensor,
    district_registry_sensor,
    district_sync_job,
    freshness_check_job,
    freshness_check_schedule,
    nightly_delta_sync,
    weekly_full_reconciliation,
)
from roster_pipeline.defs.endpoint_assets import oneroster_endpoints
from roster_pipeline.defs.resources import RosterSettings
from roster_pipeline.defs.roster_assets import roster_tables
from roster_pipeline.defs.roster_maintenance import (
    roster_compaction_sensor,
    roster_maintenance_job,
    roster_maintenance_schedule,
    roster_store_maintenance,
)

# Nightly syncs plus two hours of grace. Dagster judges this per asset, not per district, so one fresh district
# makes an asset look fresh: the `districts_fresh` check names each stale district.
ROSTER_FRESHNESS = dg.FreshnessPolicy.time_window(fail_window=timedelta(hours=26), warn_window=timedelta(hours=24))


def with_roster_freshness(spec: dg.AssetSpec) -> dg.AssetSpec:
    return spec.replace_attributes(freshness_policy=ROSTER_FRESHNESS)


defs = dg.Definitions(
    assets=[oneroster_endpoints, *dg.map_asset_specs(with_roster_freshness, [roster_tables]), roster_store_maintenance],
    asset_checks=[districts_fresh],
    jobs=[district_sync_job, freshness_check_job, roster_maintenance_job],
    schedules=[nightly_delta_sync, weekly_full_reconciliation, freshness_check_schedule, roster_maintenance_schedule],
    sensors=[district_registry_sensor, abandoned_runs_sensor, district_alerts_sensor, roster_compaction_sensor],
    resources={"settings": RosterSettings()},
)
