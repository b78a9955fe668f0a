"""Asset checks on the roster: integrity, duplicates, school coverage, and per-district freshness.

The data checks run in the roster multi-asset's step as a district is published, so each result belongs to that
district's run (Dagster's partitioned asset checks are still a preview feature). The publish reads them from the
rows it commits (store/district_reads.py); here each is named, graded and reported with a count and sample
sourcedIds.
"""

from dataclasses import dataclass

import dagster as dg

from roster_pipeline.defs.asset_keys import roster_asset_key
from roster_pipeline.defs.resources import RosterSettings
from roster_pipeline.store.district_reads import CheckFinding
from roster_pipeline.store.freshness import stale_districts


@dataclass(frozen=True)
class DataCheck:
    """One data check: the query in checks.sql named `name`, shown on `table`'s asset.

    `finding` says what a problem is, in the plural, for "district 'x': 3 <finding> (e.g. …)". Severity WARN is
    for what real SIS exports always carry a little of (references to records the district removed or never
    exported): the roster is still right, and the rows concerned are left out of the derived tables or kept as
    exported. ERROR is for a roster that is wrong.
    """

    name: str
    table: str
    description: str
    finding: str
    severity: dg.AssetCheckSeverity = dg.AssetCheckSeverity.WARN


DATA_CHECKS = (
    DataCheck(
        "unique_sourced_ids",
        "users",
        "No endpoint of the latest publish returned a sourcedId twice (which of two versions is right is unknown).",
        "sourcedIds sent twice",
        dg.AssetCheckSeverity.ERROR,
    ),
    DataCheck(
        "enrollments_reference_users_and_classes",
        "enrollments",
        "Every active enrollment points to an active user and class of its district.",
        "enrollments of a user or class the district does not have",
    ),
    DataCheck(
        "classes_reference_schools_courses_and_terms",
        "classes",
        "Every active class points to an active school, course (where courses are offered) and terms.",
        "classes of a school, course or term the district does not have",
    ),
    DataCheck(
        "user_orgs_reference_orgs",
        "user_orgs",
        "Every user's orgs exist and are active.",
        "users in an org the district does not have",
    ),
    DataCheck(
        "agents_reference_users",
        "user_agents",
        "Every agent reference points to an active user.",
        "users naming an agent the district does not have",
    ),
    DataCheck(
        "guardian_links_resolve",
        "guardian_student_links",
        "Declared guardian links whose student or guardian is missing, inactive or of the wrong role (left out of "
        "guardian_student_links, kept in guardian_link_exclusions).",
        "declared guardian links that do not resolve",
    ),
    DataCheck(
        "students_in_an_enabled_school",
        "students",
        "Every active student belongs to at least one enabled school.",
        "students in no enabled school",
    ),
    DataCheck(
        "guardians_with_students",
        "guardians",
        "Every active guardian is linked to at least one active student.",
        "guardians linked to no active student",
    ),
)


def data_check_result(check: DataCheck, finding: CheckFinding, district_id: str) -> dg.AssetCheckResult:
    """One data check's result for a district, from its finding."""
    problems, samples = finding.problems, list(finding.samples)
    description = None
    if problems:
        shown = ", ".join(samples[:3]) + (", …" if len(samples) > 3 else "")
        description = f"district '{district_id}': {problems} {check.finding}" + (f" (e.g. {shown})" if shown else "")
    return dg.AssetCheckResult(
        asset_key=roster_asset_key(check.table),
        check_name=check.name,
        passed=problems == 0,
        severity=check.severity,
        description=description,
        metadata={"district": district_id, "problems": problems, "sample_ids": ", ".join(samples) or "none"},
    )


DATA_CHECK_SPECS = [
    dg.AssetCheckSpec(check.name, asset=roster_asset_key(check.table), description=check.description)
    for check in DATA_CHECKS
]


def data_check_results(findings: dict[str, CheckFinding], district_id: str) -> list[dg.AssetCheckResult]:
    """Every data check's result for one district's publish (the roster multi-asset yields them)."""
    return [data_check_result(check, findings[check.name], district_id) for check in DATA_CHECKS]


@dg.asset_check(
    asset=roster_asset_key("students"),
    name="districts_fresh",
    description="Every enabled district published since the latest run its own schedule says should have finished "
    "(fired 2 h ago or more: at most 26 h old for a nightly schedule). Dagster's freshness policy judges the asset "
    "as a whole; this names each stale district. A district that has never published yet is a warning (its first "
    "sync is pending); one whose last publish is too old is an error.",
)
def districts_fresh(settings: RosterSettings) -> dg.AssetCheckResult:
    stale = stale_districts(settings.registry(), settings.paths)
    lapsed = [s["district"] for s in stale if s["last_published"] != "never"]
    pending = [s["district"] for s in stale if s["last_published"] == "never"]
    said = [f"stale districts: {', '.join(lapsed)}"] if lapsed else []
    said += [f"never published yet: {', '.join(pending)}"] if pending else []
    return dg.AssetCheckResult(
        passed=not stale,
        severity=dg.AssetCheckSeverity.ERROR if lapsed else dg.AssetCheckSeverity.WARN,
        description="; ".join(said) or "every enabled district is fresh",
        metadata={
            "stale_count": len(stale),
            "stale_districts": ", ".join(s["district"] for s in stale) or "none",
            "details": dg.MetadataValue.json(stale),
        },
    )
