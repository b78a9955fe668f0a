"""What one endpoint fetch did, REST or CSV: its outcome and the run record kept in the lake."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from roster_pipeline.store.lake import Lake, SyncRunRecord, now_iso


@dataclass
class FetchOutcome:
    """What a fetch did, as the asset reports it in metadata."""

    district_id: str
    endpoint: str
    offered: bool
    mode: str
    mode_reason: str
    records: int = 0
    pages: int = 0
    bytes: int = 0
    watermark_from: str | None = None
    watermark_to: str | None = None
    batch_id: str | None = None
    duration_s: float = 0.0
    malformed: int = 0  # source records that could not be read and were left out, reported in the run record
    note: str | None = None
    confirmations: dict[str, Any] | None = None  # a REST full sync's lookups of the live records it did not see


def record_fetch_run(
    lake: Lake,
    outcome: FetchOutcome,
    run_id: str,
    started_at: str,
    result: str,
    error: str | None = None,
    problems: list[str] | None = None,
) -> None:
    """Keep a fetch attempt's record in the lake (``ops.sync_runs`` mirrors it), with its malformed records."""
    run = SyncRunRecord(
        run_id=run_id,
        district_id=outcome.district_id,
        endpoint=outcome.endpoint,
        mode=outcome.mode,
        started_at=started_at,
        finished_at=now_iso("milliseconds"),
        outcome=result,
        records=outcome.records,
        pages=outcome.pages,
        bytes=outcome.bytes,
        watermark_from=outcome.watermark_from,
        watermark_to=outcome.watermark_to,
        batch_id=outcome.batch_id,
        error=error,
    )
    if problems:
        run.extra.update(malformed_records=outcome.malformed, problems=problems)
    if outcome.confirmations:
        run.extra.update(confirmations=outcome.confirmations)
    lake.record_run(run)
