"""All Dagster definitions of roster_pipeline, assembled in one place."""

from __future__ import annotations

import dagster as dg

from roster_pipeline.assets.fetch import fetch_assets
from roster_pipeline.assets.roster import roster_tables
from roster_pipeline.partitions import district_partitions
from roster_pipeline.resources import RosterSettings

district_sync_job = dg.define_asset_job(
    "district_sync",
    selection=dg.AssetSelection.groups("oneroster", "roster", "derived"),
    partitions_def=district_partitions,
    description="A district's whole sync: every endpoint, then its roster tables.",
)

defs = dg.Definitions(
    assets=[*fetch_assets, roster_tables],
    jobs=[district_sync_job],
    resources={"settings": RosterSettings()},
)
