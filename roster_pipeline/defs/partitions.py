"""The district partitions: one per enabled district of the registry (added at sync or by the registry sensor)."""

from __future__ import annotations

import dagster as dg

from roster_pipeline.config.registry import Registry

district_partitions = dg.DynamicPartitionsDefinition(name="district")


def ensure_district_partitions(instance: dg.DagsterInstance, registry: Registry) -> list[str]:
    """Add a partition for each enabled district that lacks one; returns the ids added. Never deletes."""
    existing = set(instance.get_dynamic_partitions(district_partitions.name or "district"))
    missing = [d.id for d in registry.enabled if d.id not in existing]
    if missing:
        instance.add_dynamic_partitions(district_partitions.name or "district", missing)
    return missing
