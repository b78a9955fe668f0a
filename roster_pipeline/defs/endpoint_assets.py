"""Fetch assets: one per OneRoster endpoint, built by one factory from the endpoint specs."""

import dagster as dg

from roster_pipeline.config.registry import DistrictConfig
from roster_pipeline.defs.asset_keys import fetch_asset_key
from roster_pipeline.defs.partitions import district_partitions
from roster_pipeline.defs.resources import RosterSettings
from roster_pipeline.defs.run_tags import FULL_SYNC_TAG, is_full_sync
from roster_pipeline.ingest.endpoint_fetch import fetch_endpoint
from roster_pipeline.oneroster import ENDPOINTS_V1P1, EndpointSpec


def build_fetch_asset(spec: EndpointSpec) -> dg.AssetsDefinition:
    """The `oneroster/<endpoint>` asset: streams the endpoint's pages for one district into the lake."""
    kind = "required" if spec.required else "optional"

    @dg.asset(
        key=fetch_asset_key(spec.name),
        partitions_def=district_partitions,
        group_name="oneroster",
        kinds={"parquet"},
        owners=["team:data-engineering"],
        description=(
            f"OneRoster `{spec.name}` ({kind}) for one district, landed as Parquet under "
            f"`lake/{spec.name}/district=<id>/`. Delta (dateLastModified after the watermark) once a "
            f"watermark exists; full on first sync, when the run tag `{FULL_SYNC_TAG}=true` is set, or where "
            "the provider's filter does not work."
        ),
    )
    def fetch(context: dg.AssetExecutionContext, settings: RosterSettings) -> dg.MaterializeResult:
        district = settings.registry().district(context.partition_key)
        full = is_full_sync(context.run.tags)
        outcome = fetch_endpoint(
            district,
            spec.name,
            settings.lake(),
            run_id=context.run.run_id,
            full=full,
            log=context.log.info,
            inbox=settings.paths.inbox_dir,
        )
        context.log.info(
            f"{district.id} {spec.name}: {outcome.mode} ({outcome.mode_reason}), {outcome.records} records, "
            f"{outcome.pages} pages" + (f" — {outcome.note}" if outcome.note else "")
        )
        metadata: dict[str, dg.RawMetadataValue] = {
            "offered": outcome.offered,
            "mode": outcome.mode,
            "mode_reason": outcome.mode_reason,
            "records": outcome.records,
            "pages": outcome.pages,
            "bytes": outcome.bytes,
            "watermark_used": outcome.watermark_from or "none",
            "watermark_next": outcome.watermark_to or "unchanged",
            "batch_id": outcome.batch_id or "none",
            "duration_s": outcome.duration_s,
            "malformed": outcome.malformed,
        }
        if outcome.note:
            metadata["note"] = outcome.note
        if outcome.confirmations:
            metadata["confirmations"] = dg.MetadataValue.json(outcome.confirmations)
            if held := outcome.confirmations.get("held"):
                context.log.warning(
                    f"district '{district.id}', endpoint {spec.name}: {held} records not served by this full sync "
                    f"are kept until confirmed gone ({outcome.confirmations.get('held_reason')})"
                )
        metadata.update(provider_metadata(district, spec.name))
        return dg.MaterializeResult(metadata=metadata)

    return fetch


def provider_metadata(district: DistrictConfig, endpoint: str) -> "dict[str, dg.RawMetadataValue]":
    """The provider profile beside every fetch in the UI: which SIS, what we know of it, what is not read."""
    provider = district.provider
    metadata: dict[str, dg.RawMetadataValue] = {
        "provider": f"{provider.display_name} ({provider.key})",
        "provider_notes": dg.MetadataValue.md(provider.notes),
    }
    if ignored := district.ignored(endpoint):
        metadata["ignored_fields"] = ", ".join(sorted(ignored))
    return metadata


fetch_assets = [build_fetch_asset(spec) for spec in ENDPOINTS_V1P1]
