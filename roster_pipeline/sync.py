"""Running one district's whole sync in-process against the Dagster instance, and summarising it."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import dagster as dg

from roster_pipeline.assets.fetch import FULL_SYNC_TAG, fetch_assets
from roster_pipeline.assets.roster import roster_tables
from roster_pipeline.oneroster import ENDPOINTS_V1P1
from roster_pipeline.partitions import district_partitions
from roster_pipeline.resources import RosterSettings

ENDPOINT_ORDER = {spec.name: position for position, spec in enumerate(ENDPOINTS_V1P1)}


@dataclass
class SyncResult:
    district_id: str
    success: bool
    run_id: str
    endpoints: dict[str, dict[str, Any]] = field(default_factory=dict)
    tables: dict[str, int] = field(default_factory=dict)
    checks: dict[str, bool] = field(default_factory=dict)
    error: str | None = None


def sync_district(
    district_id: str,
    *,
    full: bool = False,
    instance: dg.DagsterInstance | None = None,
    settings: RosterSettings | None = None,
    log_level: str = "INFO",
) -> SyncResult:
    """Materialise every fetch and roster asset of one district in one run; failures are reported, not raised."""
    settings = settings or RosterSettings()
    registry = settings.registry()
    provider = registry.district(district_id).provider.key  # a clear error for an unknown district first
    instance = instance or dg.DagsterInstance.get()
    partitions = instance.get_dynamic_partitions(district_partitions.name or "district")
    if district_id not in partitions:
        instance.add_dynamic_partitions(district_partitions.name or "district", [district_id])
    outcome = dg.materialize(
        [*fetch_assets, roster_tables],
        partition_key=district_id,
        instance=instance,
        resources={"settings": settings},
        tags={FULL_SYNC_TAG: str(full).lower(), "roster/district": district_id, "roster/provider": provider},
        run_config={"loggers": {"console": {"config": {"log_level": log_level}}}},
        raise_on_error=False,
    )
    result = SyncResult(district_id, outcome.success, outcome.run_id)
    for event in outcome.get_asset_materialization_events():
        materialization = event.step_materialization_data.materialization
        assert materialization is not None
        path = materialization.asset_key.path
        values = {key: value.value for key, value in materialization.metadata.items()}
        if path[0] == "oneroster":
            result.endpoints[path[1]] = values
        else:
            rows = values.get("rows", 0)
            result.tables[path[1]] = rows if isinstance(rows, int) else 0
    for event in outcome.all_events:
        if event.event_type_value == "ASSET_CHECK_EVALUATION":
            evaluation = event.asset_check_evaluation_data
            result.checks[evaluation.check_name] = evaluation.passed
    if not outcome.success:
        failures = [e for e in outcome.all_events if e.is_step_failure]
        result.error = "; ".join(_failure_message(e) for e in failures) or "run failed"
    return result


def _failure_message(event: dg.DagsterEvent) -> str:
    data = event.step_failure_data
    error = data.error if data else None
    while error is not None and error.cause is not None:  # Dagster wraps the asset's own exception
        error = error.cause
    message = error.message.strip() if error else "failed"
    return f"{event.step_key}: {message.splitlines()[0] if message else 'failed'}"


def print_summary(result: SyncResult) -> None:
    """Print per-endpoint fetch results and per-table row counts as two plain tables."""
    print(f"\nDistrict {result.district_id} — run {result.run_id[:8]} — {'OK' if result.success else 'FAILED'}")
    print(f"{'endpoint':18} {'mode':6} {'records':>9} {'pages':>6} {'offered':>8}")
    for endpoint, values in sorted(result.endpoints.items(), key=lambda item: ENDPOINT_ORDER.get(item[0], 99)):
        if values.get("offered") is False:
            values = {**values, "mode": "-"}
        print(
            f"{endpoint:18} {values.get('mode', ''):6} {values.get('records', 0):>9} "
            f"{values.get('pages', 0):>6} {values.get('offered', '')!s:>8}"
        )
    if result.tables:
        print(f"\n{'table':24} {'rows':>9}")
        for table, rows in result.tables.items():
            print(f"{table:24} {rows:>9}")
    failed = [name for name, passed in result.checks.items() if not passed]
    if result.checks:
        print(
            f"\nchecks: {len(result.checks) - len(failed)} passed"
            + (f", failed: {', '.join(failed)}" if failed else "")
        )
    if result.error:
        print(f"\nerror: {result.error}")
