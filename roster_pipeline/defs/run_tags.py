"""The tags our runs carry, read by the assets, the run limits, recovery and alerts.

`dagster.yaml` limits runs per `roster/provider` (so one SIS vendor is not hammered) and per `roster/district`;
a fetch asset reads `roster/full_sync`; `roster/host` and `roster/pid` name the process executing a run that
`sync` runs in-process, so a killed one can be recognised (see run_recovery.py).
"""

from __future__ import annotations

from collections.abc import Mapping

from roster_pipeline.config.registry import DistrictConfig
from roster_pipeline.store.process_owners import current_process

DISTRICT_TAG = "roster/district"
PROVIDER_TAG = "roster/provider"
FULL_SYNC_TAG = "roster/full_sync"
HOST_TAG = "roster/host"
PID_TAG = "roster/pid"  # "<pid>:<process start time>", so a reused pid is not mistaken for the run


def sync_run_tags(district: DistrictConfig, *, full: bool) -> dict[str, str]:
    """The tags of a district's sync run, whoever starts it (a schedule or `sync`)."""
    return {DISTRICT_TAG: district.id, PROVIDER_TAG: district.provider.key, FULL_SYNC_TAG: str(full).lower()}


def is_full_sync(tags: Mapping[str, str]) -> bool:
    """Whether a run's tags ask for a full sync."""
    return tags.get(FULL_SYNC_TAG, "false").lower() == "true"


def process_tags() -> dict[str, str]:
    """Tags naming the current process as the run's, for a run executed in this process (``sync``)."""
    process = current_process()
    return {HOST_TAG: process.host, PID_TAG: f"{process.pid}:{process.started or ''}"}
