"""The mass-deletion guard and district quarantine.

A sync that would tombstone or deactivate more than a configured share of a district's students or guardian
links (default 10%), or that carries more malformed records than allowed, is far more often a broken export
than a real change — and publishing it would stop parents signing children out. Such a publish is rolled back
and the district is *quarantined*: its published tables stay as they were, and the quarantine names the batches
it refused. The engineer then has a real choice:

- do nothing: the next run is a full sync (the source re-read from scratch), so a provider's bad night clears
  itself once the provider recovers, without anyone re-applying the refused batches' damage;
- `roster-pipeline release DISTRICT`: the change is real; the next run may publish it once (shown first);
- `roster-pipeline discard DISTRICT`: drop the refused batches; the next run is a full sync from the last good
  state.

The markers (quarantine, release, resync) live in the district's state folder (see district_state.py), outside
DuckDB, so they survive the rolled-back transaction.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from typing import Any

from roster_pipeline.config.registry_schema import GUARD_DEFAULTS
from roster_pipeline.store.lake import Batch, Lake

# Updates are routine: below this many active records a changed share says nothing (3 of 4 users edited is a
# normal day for a tiny district), so the change limits start here. Removal limits apply at any size.
MIN_RECORDS_FOR_CHANGE_SHARE = 20


@dataclass(frozen=True)
class GuardPolicy:
    """The limits a publish must stay within (defaults: the registry's `GuardSettings`). Removed shares default to
    ``max_removed_share``."""

    max_removed_share: float = GUARD_DEFAULTS.max_removed_share
    max_malformed: int = GUARD_DEFAULTS.max_malformed
    released: bool = False
    max_students_removed: float | None = GUARD_DEFAULTS.max_students_removed
    max_links_removed: float | None = GUARD_DEFAULTS.max_links_removed
    max_users_changed: float = GUARD_DEFAULTS.max_users_changed
    max_enrollments_changed: float = GUARD_DEFAULTS.max_enrollments_changed

    def limits(self) -> dict[str, float]:
        """Each measured share's limit, by what it measures."""
        removed = self.max_removed_share
        return {
            "students": removed if self.max_students_removed is None else self.max_students_removed,
            "guardian links": removed if self.max_links_removed is None else self.max_links_removed,
            "users": self.max_users_changed,
            "enrollments": self.max_enrollments_changed,
        }


@dataclass
class GuardReport:
    """What a publish would remove or change, and which limits it passes."""

    students_before: int = 0
    students_removed: int = 0
    links_before: int = 0
    links_removed: int = 0
    malformed: int = 0
    users_before: int = 0
    users_changed: int = 0  # active users before the publish that it removes or alters
    enrollments_before: int = 0
    enrollments_changed: int = 0
    reasons: list[str] = field(default_factory=list)

    @property
    def tripped(self) -> bool:
        return bool(self.reasons)

    def measured(self) -> dict[str, tuple[str, int, int]]:
        """(what would happen to them, how many, how many were active before) per measured kind of record."""
        return {
            "students": ("remove", self.students_removed, self.students_before),
            "guardian links": ("remove", self.links_removed, self.links_before),
            "users": ("change", self.users_changed, self.users_before),
            "enrollments": ("change", self.enrollments_changed, self.enrollments_before),
        }

    def evaluate(self, policy: GuardPolicy) -> GuardReport:
        limits = policy.limits()
        for noun, (verb, affected, before) in self.measured().items():
            share = limits[noun]
            if verb == "change" and before < MIN_RECORDS_FOR_CHANGE_SHARE:
                continue
            if before and affected / before > share:
                self.reasons.append(
                    f"would {verb} {affected} of {before} active {noun} ({affected / before:.0%} > {share:.0%})"
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
            f"unchanged and the next sync is a full one. If the change is real, `roster-pipeline release "
            f"{district_id}` lets it through; `roster-pipeline discard {district_id}` drops it."
        )


def mark_quarantined(lake: Lake, district_id: str, report: GuardReport, batches: list[Batch]) -> None:
    """Record the quarantine, with the counts the guard check shows and the batches the publish refused."""
    state = {
        "since": datetime.now(UTC).isoformat(),
        "reasons": report.reasons,
        **report.metadata(),
        "batches": [
            {"endpoint": b.endpoint, "batch_id": b.batch_id, "mode": b.mode, "records": b.records} for b in batches
        ],
    }
    lake.state(district_id).quarantine.write(state, indent=True)


def quarantine_state(lake: Lake, district_id: str) -> dict[str, Any] | None:
    """The district's quarantine (what was refused, and why), or None when it is not quarantined."""
    return lake.state(district_id).quarantine.read()


def describe_quarantine(state: dict[str, Any], subject: str = "releasing") -> str:
    """What the refused change would do if published (``subject``: "releasing", or how the caller names it), in
    the words and numbers the guard check shows."""
    lines = [f"quarantined since {state['since']}: {'; '.join(state['reasons'])}"]
    lines.append(
        f"{subject} would remove {state['students_removed']} of {state['students_before']} active students and "
        f"{state['links_removed']} of {state['links_before']} guardian links; {state['malformed']} malformed records"
    )
    lines.append(
        f"and change {state.get('users_changed', 0)} of {state.get('users_before', 0)} active users and "
        f"{state.get('enrollments_changed', 0)} of {state.get('enrollments_before', 0)} active enrollments"
    )
    for batch in state.get("batches", []):
        lines.append(
            f"  refused batch {batch['endpoint']}/{batch['batch_id']}: {batch['mode']}, {batch['records']} records"
        )
    return "\n".join(lines)


def request_release(lake: Lake, district_id: str, by: str = "cli") -> None:
    """Let the next publish of the district pass the guard once."""
    lake.state(district_id).release.write({"requested_at": datetime.now(UTC).isoformat(), "by": by})


def release_requested(lake: Lake, district_id: str) -> bool:
    return lake.state(district_id).release.exists()


def discard_quarantined(lake: Lake, district_id: str) -> list[Batch]:
    """Drop the batches the quarantine refused and end it; the next sync is a full one (the dropped batches had
    advanced the watermarks). Returns what was dropped."""
    state = quarantine_state(lake, district_id) or {}
    refused = {(b["endpoint"], b["batch_id"]) for b in state.get("batches", [])}
    endpoints = {endpoint for endpoint, _ in refused}
    doomed = [b for e in endpoints for b in lake.batches(e, district_id) if (e, b.batch_id) in refused]
    lake.prune(doomed)
    reason = f"quarantined batches discarded on {datetime.now(UTC).isoformat(timespec='seconds')}"
    markers = lake.state(district_id)
    markers.resync.write({"reason": reason})
    markers.quarantine.remove()
    markers.release.remove()
    return doomed


def full_sync_reason(lake: Lake, district_id: str) -> str | None:
    """Why the district's next sync must be full (a quarantine, or discarded batches), or None."""
    if state := quarantine_state(lake, district_id):
        return f"quarantined since {state['since']}: a full sync re-reads the source, not the refused batches"
    if resync := lake.state(district_id).resync.read():
        return f"{resync['reason']}: a full sync rebuilds from the source"
    return None


def clear_after_publish(lake: Lake, district_id: str) -> None:
    """A publish went through: the quarantine (if any) is over, a release has been used, a resync is done."""
    markers = lake.state(district_id)
    for marker in (markers.quarantine, markers.release, markers.resync):
        marker.remove()
