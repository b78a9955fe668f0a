"""Records a provider sent that could not be read: counted, the first few described, and what to do about them."""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable, Mapping

from roster_pipeline.config.registry import DistrictConfig
from roster_pipeline.oneroster.flatten import ignorable_fields
from roster_pipeline.oneroster.normalize import RecordProblem

# Only the first malformed records are described in a run record; all are counted.
MAX_DESCRIBED = 50


class MalformedTally:
    """The records of one fetch that could not be read: counted without limit, the first few described.

    They are left out of the batch, never guessed at; the mass-deletion guard weighs their number at publish.
    """

    def __init__(self) -> None:
        self.count = 0
        self.described: list[str] = []
        self._ids: set[str] = set()
        self._unnamed = 0
        self._fields: Counter[str] = Counter()

    def add(self, problems: Iterable[RecordProblem]) -> None:
        for problem in problems:
            self.count += 1
            if problem.sourced_id is None:
                self._unnamed += 1
            else:
                self._ids.add(problem.sourced_id)
            if problem.field:
                self._fields[problem.field] += 1
            if len(self.described) < MAX_DESCRIBED:
                self.described.append(str(problem))

    def ids(self) -> list[str] | None:
        """The sourcedIds of every malformed record, or ``None`` when some had no readable id."""
        return sorted(self._ids) if not self._unnamed else None

    def summary(self, district: DistrictConfig, endpoint: str) -> str:
        """One line for the run's metadata: how many, the first, and what to do when one field is to blame."""
        line = f"{self.count} malformed records left out (first: {self.described[0]})"
        if advice := ignore_advice(district.id, endpoint, self._fields, self.count):
            line += f"; {advice} (or to its provider profile) so those records land without it"
        return line


def ignore_advice(district_id: str, endpoint: str, fields: Mapping[str, int], malformed: int) -> str | None:
    """When one ignorable field is to blame for at least half of ``malformed`` records, the registry line that
    would land them; ``fields`` counts the records each field made unreadable."""
    if not fields:
        return None
    field, count = max(fields.items(), key=lambda item: item[1])
    if field not in ignorable_fields(endpoint) or count * 2 < malformed:
        return None
    return (
        f"field {field} is unreadable in {count} of them — if the provider garbles it in every record, add "
        f"`ignore_fields: {{{endpoint}: [{field}]}}` to district '{district_id}' in the registry"
    )
