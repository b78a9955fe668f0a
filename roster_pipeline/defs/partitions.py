"""The district partitions: one per enabled district of the registry (added at sync or by the registry sensor)."""

from __future__ import annotations

from collections.abc import Iterable

import dagster as dg

from roster_pipeline.config.registry import DistrictConfig

DISTRICT_PARTITIONS = "district"
district_partitions = dg.DynamicPartitionsDefinition(name=DISTRICT_PARTITIONS)


def missing_district_partitions(instance: dg.DagsterInstance, districts: Iterable[DistrictConfig]) -> list[str]:
    """The ids of ``districts`` that have no partition yet, in their order."""
    existing = set(instance.get_dynamic_partitions(DISTRICT_PARTITIONS))
    return [district.id for district in districts if district.id not in existing]


def ensure_district_partitions(instance: dg.DagsterInstance, districts: Iterable[DistrictConfig]) -> list[str]:
    """Add a partition for each of ``districts`` that lacks one (the registry's enabled ones, or the district a
    sync is about to run); returns the ids added. Never deletes."""
    missing = missing_district_partitions(instance, districts)
    if missing:
        instance.add_dynamic_partitions(DISTRICT_PARTITIONS, missing)
    return missing
