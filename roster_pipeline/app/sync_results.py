"""What a sync reports back per district: its run, endpoints, tables and check outcomes."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any


@dataclass(frozen=True)
class CheckOutcome:
    """One asset check's verdict on the district: a failed ERROR check means the roster is wrong, a failed WARN
    check is a data-quality finding the roster was published with."""

    name: str
    passed: bool
    severity: str  # "ERROR" or "WARN"
    description: str | None = None
    metadata: dict[str, Any] = field(default_factory=dict)


@dataclass
class SyncResult:
    district_id: str
    success: bool
    run_id: str
    endpoints: dict[str, dict[str, Any]] = field(default_factory=dict)
    tables: dict[str, int] = field(default_factory=dict)
    checks: dict[str, bool] = field(default_factory=dict)
    check_outcomes: dict[str, CheckOutcome] = field(default_factory=dict)
    error: str | None = None
    step_errors: dict[str, str] = field(default_factory=dict)
    seconds: float | None = None

    @property
    def failed_checks(self) -> list[str]:
        """Checks whose failure means the roster is wrong (severity ERROR)."""
        return [o.name for o in self.check_outcomes.values() if not o.passed and o.severity != "WARN"]

    @property
    def warnings(self) -> list[str]:
        """Data-quality findings (failed WARN checks): reported, the roster is published all the same."""
        return [o.name for o in self.check_outcomes.values() if not o.passed and o.severity == "WARN"]
