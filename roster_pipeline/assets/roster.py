"""Roster assets: the DuckDB current-state tables, published per district in one transaction."""


import dagster as dg

from roster_pipeline.assets.fetch import fetch_asset_key
from roster_pipeline.partitions import district_partitions
from roster_pipeline.resources import RosterSettings
from roster_pipeline.warehouse import ROSTER_TABLES

ROSTER_POOL = "roster_duckdb"

# Which endpoints feed each analyst table (the lineage the UI draws).
TABLE_SOURCES: dict[str, tuple[str, ...]] = {
    "orgs": ("orgs",),
    "schools": ("orgs",),
    "academic_sessions": ("academicSessions",),
    "users": ("users",),
    "students": ("users",),
    "teachers": ("users",),
    "guardians": ("users",),
    "user_orgs": ("users", "orgs"),
    "user_agents": ("users",),
    "classes": ("classes",),
    "courses": ("courses",),
    "enrollments": ("enrollments",),
    "demographics": ("demographics",),
}


def roster_asset_key(table: str) -> dg.AssetKey:
    return dg.AssetKey(["roster", table])


ROSTER_SPECS = [
    dg.AssetSpec(
        key=roster_asset_key(table),
        deps=[fetch_asset_key(endpoint) for endpoint in TABLE_SOURCES[table]],
        group_name="roster",
        kinds={"duckdb"},
        owners=["team:data-engineering"],
        partitions_def=district_partitions,
        description=f"`{table}` in roster.duckdb: active rows only, one per (district_id, sourced_id).",
    )
    for table in ROSTER_TABLES
]


@dg.multi_asset(specs=ROSTER_SPECS, pool=ROSTER_POOL, can_subset=False, name="roster_tables")
def roster_tables(context: dg.AssetExecutionContext, settings: RosterSettings):
    """Apply the district's landed batches to the DuckDB state in one transaction and publish roster.duckdb.

    All tables of a district change together (one transaction); a failed run leaves the published file as it
    was. Only this asset writes DuckDB, and it runs in the `roster_duckdb` pool (limit one writer).
    """
    district_id = context.partition_key
    result = settings.warehouse().publish_district(district_id)
    for endpoint, applied in result.endpoints.items():
        if applied.batches:
            context.log.info(
                f"{district_id} {endpoint}: applied {applied.batches} batch(es), {applied.records} records, "
                f"{applied.tombstoned} tombstoned"
            )
    for table in ROSTER_TABLES:
        yield dg.MaterializeResult(
            asset_key=roster_asset_key(table),
            metadata={
                "rows": result.row_counts.get(table, 0),
                "batches_applied": result.batches,
                "dagster/row_count": result.row_counts.get(table, 0),
            },
        )
