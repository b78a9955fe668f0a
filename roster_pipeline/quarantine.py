"""The mass-deletion guard and district quarantine.

A sync that would tombstone or deactivate more than a configured share of a district's students or guardian
links (default 10%), or that carries more malformed records than allowed, is far more often a broken export
than a real change — and publishing it would stop parents signing children out. Such a publish is rolled back
and the district is *quarantined*: its published tables stay as they were until an engineer looks and runs
`roster-pipeline release DISTRICT`, which lets the next run publish once.

State lives in the lake's state folder (files), so it survives the rolled-back transaction.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import orjson

from roster_pipeline.lake import Lake

DEFAULT_MAX_REMOVED_SHARE = 0.10
DEFAULT_MAX_MALFORMED = 100


@dataclass(frozen=True)
class GuardPolicy:
    max_removed_share: float = DEFAULT_MAX_REMOVED_SHARE
    max_malformed: int = DEFAULT_MAX_MALFORMED
    released: bool = False


@dataclass
class GuardReport:
    """What a publish would remove, and which limits it passes."""

    students_before: int = 0
    students_removed: int = 0
    links_before: int = 0
    links_removed: int = 0
    malformed: int = 0
    reasons: list[str] = field(default_factory=list)

    @property
    def tripped(self) -> bool:
        return bool(self.reasons)

    def evaluate(self, policy: GuardPolicy) -> GuardReport:
        share = policy.max_removed_share
        for label, removed, before in (
            ("students", self.students_removed, self.students_before),
            ("guardian links", self.links_removed, self.links_before),
        ):
            if before and removed / before > share:
                self.reasons.append(
                    f"would remove {removed} of {before} active {label} ({removed / before:.0%} > {share:.0%})"
                )
        if self.malformed > policy.max_malformed:
            self.reasons.append(f"{self.malformed} malformed records (limit {policy.max_malformed})")
        return self

    def metadata(self) -> dict[str, Any]:
        return {key: value for key, value in asdict(self).items() if key != "reasons"}


class DistrictQuarantined(RuntimeError):
    """A publish was refused by the mass-deletion guard; the published tables are unchanged."""

    def __init__(self, district_id: str, report: GuardReport) -> None:
        self.district_id, self.report = district_id, report
        super().__init__(
            f"district '{district_id}' quarantined: {'; '.join(report.reasons)}. The published roster is "
            f"unchanged. If the change is real, run `roster-pipeline release {district_id}` and sync again."
        )


def _path(lake: Lake, district_id: str, name: str) -> Path:
    return lake.state_dir(district_id) / f"{name}.json"


def mark_quarantined(lake: Lake, district_id: str, report: GuardReport) -> None:
    path = _path(lake, district_id, "quarantine")
    path.parent.mkdir(parents=True, exist_ok=True)
    state = {"since": datetime.now(UTC).isoformat(), "reasons": report.reasons, **report.metadata()}
    path.write_bytes(orjson.dumps(state, option=orjson.OPT_INDENT_2))


def quarantine_state(lake: Lake, district_id: str) -> dict[str, Any] | None:
    path = _path(lake, district_id, "quarantine")
    return orjson.loads(path.read_bytes()) if path.exists() else None


def request_release(lake: Lake, district_id: str, by: str = "cli") -> None:
    """Let the next publish of the district pass the guard once."""
    path = _path(lake, district_id, "release")
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(orjson.dumps({"requested_at": datetime.now(UTC).isoformat(), "by": by}))


def release_requested(lake: Lake, district_id: str) -> bool:
    return _path(lake, district_id, "release").exists()


def clear_after_publish(lake: Lake, district_id: str) -> None:
    """A publish went through: the quarantine (if any) is over and a release has been used."""
    for name in ("quarantine", "release"):
        _path(lake, district_id, name).unlink(missing_ok=True)
