"""Roster assets: the DuckDB current-state tables, published per district in one transaction."""

from collections.abc import Iterator, Mapping

import dagster as dg

from roster_pipeline.config.registry import DistrictConfig
from roster_pipeline.defs.asset_checks import DATA_CHECK_SPECS, data_check_results
from roster_pipeline.defs.asset_keys import fetch_asset_key, roster_asset_key
from roster_pipeline.defs.gc_tuning import relaxed_gc
from roster_pipeline.defs.partitions import district_partitions
from roster_pipeline.defs.resources import RosterSettings
from roster_pipeline.store.catalogue import DERIVED_SOURCES, DERIVED_TABLES, ROSTER_TABLES, TABLE_SOURCES
from roster_pipeline.store.derived_tables import SchoolSettings
from roster_pipeline.store.guard import DistrictQuarantined, GuardPolicy, GuardReport
from roster_pipeline.store.publish_result import EndpointPublish, PublishResult
from roster_pipeline.store.warehouse import ReadsFailed

ROSTER_POOL = "roster_duckdb"

DERIVED_DESCRIPTIONS = {
    "guardian_student_links": "Who may sign a student out: a link counts when either side's `agents` declares "
    "it and both users are active in the district (`source`: student_agents, guardian_agents or both).",
    "student_contacts": "Front-desk contact card: each active student in an enabled school with each linked "
    "guardian's names, email, phone and sms.",
    "student_schools": "Each student's schools from user `orgs` and from enrollments in classes of a school.",
    "school_mappings": "Each SIS school with its site id and enabled flag from the registry, and counts of "
    "active students, guardians and classes.",
    "guardian_link_history": "Every guardian link with valid_from / valid_to across syncs: who could pick up "
    "a student on a given date.",
}


def school_settings(district: DistrictConfig) -> SchoolSettings:
    """The registry's `schools` section in the form the warehouse stores."""
    sites = tuple((s.sourced_id, s.site_id, s.enabled) for s in district.schools)
    pickup = tuple((f.column, f.user, f.key) for f in district.pickup_fields)
    return SchoolSettings(district.schools_default_enabled, sites, pickup)


ROSTER_SPECS = [
    dg.AssetSpec(
        key=roster_asset_key(table),
        deps=[fetch_asset_key(endpoint) for endpoint in TABLE_SOURCES[table]],
        group_name="roster",
        kinds={"duckdb"},
        owners=["team:data-engineering"],
        partitions_def=district_partitions,
        description=f"`{table}` in the roster: active rows only, one per (district_id, sourced_id).",
    )
    for table in ROSTER_TABLES
] + [
    dg.AssetSpec(
        key=roster_asset_key(table),
        deps=[roster_asset_key(source) for source in DERIVED_SOURCES[table]],
        group_name="derived",
        kinds={"duckdb"},
        owners=["team:data-engineering"],
        partitions_def=district_partitions,
        description=DERIVED_DESCRIPTIONS[table],
    )
    for table in DERIVED_TABLES
]


GUARD_CHECK = dg.AssetCheckSpec(
    "mass_deletion_guard",
    asset=roster_asset_key("students"),
    blocking=True,
    description="Blocks a publish that would remove more than the district's share (default 10%) of its active "
    "students or guardian links, change more than 75% of its users or enrollments, or that carries too many "
    "malformed records; the district is quarantined until "
    "`roster-pipeline release DISTRICT` (or `discard`); the next run is a full sync.",
)


@dg.multi_asset(
    specs=ROSTER_SPECS,
    check_specs=[GUARD_CHECK, *DATA_CHECK_SPECS],
    pool=ROSTER_POOL,
    can_subset=False,
    name="roster_tables",
)
def roster_tables(context: dg.AssetExecutionContext, settings: RosterSettings):
    """Apply the district's landed batches to its DuckDB work state in one transaction, then publish the district's
    rows to the roster (a DuckLake) in one commit.

    All tables of a district change together; a failed run leaves the published roster as it was, unless only
    reading the row counts and data checks back failed after the roster took the rows (the failure says so). Only
    this asset writes the roster. It runs in the `roster_duckdb` pool; districts publish in parallel up to the
    pool's limit.
    """
    with relaxed_gc():
        yield from publish_roster(context, settings)


def publish_roster(
    context: dg.AssetExecutionContext, settings: RosterSettings
) -> Iterator[dg.MaterializeResult | dg.AssetCheckResult]:
    district_id = context.partition_key
    district = settings.registry().district(district_id)
    guard = GuardPolicy(
        district.max_removed_share,
        district.max_malformed,
        max_students_removed=district.max_students_removed,
        max_links_removed=district.max_links_removed,
        max_users_changed=district.max_users_changed,
        max_enrollments_changed=district.max_enrollments_changed,
    )
    try:
        result = settings.warehouse().publish_district(district_id, school_settings(district), guard)
    except DistrictQuarantined as quarantined:
        yield guard_result(quarantined.report, district_id, released=False)
        raise dg.Failure(description=str(quarantined), metadata=quarantined.report.metadata()) from None
    except ReadsFailed as failed:
        raise dg.Failure(description=str(failed)) from failed
    if result.restored_rows:
        context.log.info(f"{district_id}: started from the roster's last publish ({result.restored_rows} rows)")
    if result.leftover_spill_removed:
        context.log.info(
            f"{district_id}: removed {result.leftover_spill_removed / 1e6:.1f} MB of spill files a killed merge left "
            "beside the work database"
        )
    if result.memory_limit_raised_to:
        context.log.warning(
            f"{district_id}: the merge or publish outgrew ROSTER_WORK_MEMORY_LIMIT={settings.paths.work_memory_limit} "
            f"and ran again under {result.memory_limit_raised_to}; raise the limit if this district does it every night"
        )
    if applied := applied_summary(result.endpoints):
        context.log.info(f"{district_id}: applied {applied}")  # one line (one stored event) for the step
    yield guard_result(result.guard, district_id, released=result.released)
    yield from materializations(result)
    yield from data_check_results(result.check_findings, district_id)


def materializations(result: PublishResult) -> Iterator[dg.MaterializeResult]:
    """One materialisation per roster and derived table, with the district's rows in it."""
    for table in (*ROSTER_TABLES, *DERIVED_TABLES):
        yield dg.MaterializeResult(
            asset_key=roster_asset_key(table),
            metadata={
                "rows": result.row_counts.get(table, 0),
                "batches_applied": result.batches,
                "lake_batches_pruned": result.pruned,
                "dagster/row_count": result.row_counts.get(table, 0),
            },
        )


def applied_summary(endpoints: Mapping[str, EndpointPublish]) -> str:
    """What the publish applied, endpoint by endpoint ("" when it applied nothing)."""
    return "; ".join(
        f"{endpoint} {counts.batches} batch(es), {counts.records} records, {counts.tombstoned} tombstoned"
        for endpoint, counts in endpoints.items()
        if counts.batches
    )


def guard_result(report: GuardReport, district_id: str, *, released: bool) -> dg.AssetCheckResult:
    """The guard's verdict; a tripped guard that an engineer released passes, saying so."""
    description = "; ".join(report.reasons) or f"district '{district_id}': within limits"
    if released and report.tripped:
        description = f"released by an engineer: {description}"
    return dg.AssetCheckResult(
        asset_key=GUARD_CHECK.asset_key,
        check_name=GUARD_CHECK.name,
        passed=released or not report.tripped,
        severity=dg.AssetCheckSeverity.ERROR,
        description=description,
        metadata={"district": district_id, "released": released, **report.metadata()},
    )
