"""What one district's publish applied, for asset metadata and the CLI summary."""

from __future__ import annotations

from dataclasses import dataclass, field

from roster_pipeline.store.district_reads import CheckFinding
from roster_pipeline.store.guard import GuardReport
from roster_pipeline.store.lake import Batch


@dataclass
class EndpointPublish:
    endpoint: str
    batches: int = 0
    records: int = 0
    tombstoned: int = 0
    held: int = 0  # unseen records a full batch could not confirm gone, so kept


@dataclass
class PublishResult:
    """What one district's publish applied, for asset metadata and the CLI summary."""

    district_id: str
    endpoints: dict[str, EndpointPublish] = field(default_factory=dict)
    row_counts: dict[str, int] = field(default_factory=dict)
    # Each data check's finding on the rows published (district_reads.py, checks.sql), by check name.
    check_findings: dict[str, CheckFinding] = field(default_factory=dict)
    # Why reading the counts and checks back failed after the roster's commit (warehouse.ReadsFailed), if it did.
    reads_failed: Exception | None = None
    runs_imported: int = 0
    malformed: int = 0
    guard: GuardReport = field(default_factory=GuardReport)
    released: bool = False
    superseded: list[Batch] = field(default_factory=list)
    pruned: int = 0
    applied: list[Batch] = field(default_factory=list)  # the batches this publish applied (or a quarantine refused)
    # Rows the work database took from the roster first (another worker had published the district, work_cache.py).
    restored_rows: int = 0
    # The work memory limit the merge ran under when the configured one was not enough (warehouse.py), else "".
    memory_limit_raised_to: str = ""
    # Bytes of spill files a killed merge had left beside the work database, removed before this one.
    leftover_spill_removed: int = 0

    @property
    def batches(self) -> int:
        return sum(e.batches for e in self.endpoints.values())
