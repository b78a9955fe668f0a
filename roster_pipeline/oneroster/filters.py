"""Typed builder for the OneRoster ``filter`` query parameter.

OneRoster 1.1 §3.4.2: ``filter=<field><op>'<value>'``, at most two predicates joined by `` AND `` or
`` OR ``; a single quote inside a value is escaped by doubling it. The client percent-encodes the whole
rendered text like any query parameter.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import UTC, date, datetime

FilterValue = str | int | float | bool | datetime | date

_FIELD = re.compile(r"^[A-Za-z_][A-Za-z0-9_.]*$")


def render_value(value: FilterValue) -> str:
    """Render ``value`` as the text between the quotes, before quote doubling.

    Datetimes render as ``YYYY-MM-DDTHH:MM:SSZ`` in UTC. Sub-second precision is dropped (rounded
    down), which for a ``dateLastModified>`` watermark only widens the window: never loses a change.
    A naive datetime is rejected because its instant is ambiguous.
    """
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, datetime):
        if value.tzinfo is None or value.utcoffset() is None:
            raise ValueError(f"filter datetime must be timezone-aware, got naive {value.isoformat()}")
        return value.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
    if isinstance(value, date):
        return value.isoformat()
    return str(value)


@dataclass(frozen=True)
class Predicate:
    """One ``<field><op>'<value>'`` comparison."""

    field: str
    op: str
    value: str

    def __str__(self) -> str:
        return f"{self.field}{self.op}'{self.value.replace(chr(39), chr(39) * 2)}'"


@dataclass(frozen=True)
class Filter:
    """A OneRoster filter of one predicate, or two joined by AND / OR.

    Build with the class methods and combine with ``&`` (AND) or ``|`` (OR)::

        Filter.gt("dateLastModified", watermark) & Filter.eq("status", "active")

    ``str(filter)`` is the wire text. The specification allows at most two predicates, so combining a
    filter that already has two raises ``ValueError``.
    """

    predicates: tuple[Predicate, ...]
    joiner: str | None = None

    @classmethod
    def _compare(cls, field: str, op: str, value: FilterValue) -> Filter:
        if not _FIELD.match(field):
            raise ValueError(f"invalid filter field name {field!r}")
        return cls((Predicate(field, op, render_value(value)),))

    @classmethod
    def eq(cls, field: str, value: FilterValue) -> Filter:
        """``field='value'``."""
        return cls._compare(field, "=", value)

    @classmethod
    def ne(cls, field: str, value: FilterValue) -> Filter:
        """``field!='value'``."""
        return cls._compare(field, "!=", value)

    @classmethod
    def gt(cls, field: str, value: FilterValue) -> Filter:
        """``field>'value'`` (the delta-sync predicate on ``dateLastModified``)."""
        return cls._compare(field, ">", value)

    @classmethod
    def ge(cls, field: str, value: FilterValue) -> Filter:
        """``field>='value'``."""
        return cls._compare(field, ">=", value)

    @classmethod
    def lt(cls, field: str, value: FilterValue) -> Filter:
        """``field<'value'``."""
        return cls._compare(field, "<", value)

    @classmethod
    def le(cls, field: str, value: FilterValue) -> Filter:
        """``field<='value'``."""
        return cls._compare(field, "<=", value)

    @classmethod
    def contains(cls, field: str, value: FilterValue) -> Filter:
        """``field~'value'`` (substring match)."""
        return cls._compare(field, "~", value)

    def _join(self, other: Filter, joiner: str) -> Filter:
        if not isinstance(other, Filter):
            return NotImplemented
        predicates = self.predicates + other.predicates
        if len(predicates) > 2:
            raise ValueError("a OneRoster filter holds at most two predicates (OneRoster 1.1 §3.4.2)")
        return Filter(predicates, joiner)

    def __and__(self, other: Filter) -> Filter:
        return self._join(other, "AND")

    def __or__(self, other: Filter) -> Filter:
        return self._join(other, "OR")

    def __str__(self) -> str:
        return f" {self.joiner} ".join(str(p) for p in self.predicates)
