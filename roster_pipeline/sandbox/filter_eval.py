"""The OneRoster 1.1 `filter` query parameter: parsing and evaluation (spec §3.4.2 "Filtering").

Grammar: `<field><op>'<value>'`, optionally followed by ` AND ` or ` OR ` and a second predicate; a single
quote inside a value is written twice. `dateLastModified` compares as an instant, so a date-only value or
one with any number of fractional digits or a UTC offset means the same moment a server would mean.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from functools import lru_cache

OPERATORS = ("!=", ">=", "<=", "=", ">", "<", "~")  # two-character operators first: longest match wins
_FIELD = re.compile(r"[A-Za-z][A-Za-z0-9_]*")
_COMMON = ("sourcedId", "status", "dateLastModified")
# Top-level string fields per collection: the only ones a filter may name (nested objects and arrays are
# not filterable in 1.1, and naming an unknown field is an error rather than a silent empty result).
# fmt: off
FILTERABLE_FIELDS: dict[str, frozenset[str]] = {
    name: frozenset(_COMMON + fields)
    for name, fields in {
        "orgs": ("name", "type", "identifier"),
        "academicSessions": ("title", "type", "startDate", "endDate", "schoolYear"),
        "users": (
            "username", "enabledUser", "givenName", "familyName", "middleName", "role", "identifier",
            "email", "sms", "phone",
        ),
        "courses": ("title", "courseCode"),
        "classes": ("title", "classCode", "classType", "location"),
        "enrollments": ("role", "primary", "beginDate", "endDate"),
        "demographics": (
            "birthDate", "sex", "americanIndianOrAlaskaNative", "asian", "blackOrAfricanAmerican",
            "nativeHawaiianOrOtherPacificIslander", "white", "demographicRaceTwoOrMoreRaces",
            "hispanicOrLatinoEthnicity", "countryOfBirthCode", "stateOfBirthAbbreviation", "cityOfBirth",
            "publicSchoolResidenceStatus",
        ),
    }.items()
}
# fmt: on


class FilterError(ValueError):
    """A filter the server cannot parse or evaluate; the message names the problem for the 400 body."""


@dataclass(frozen=True)
class Predicate:
    """One `<field><op>'<value>'` comparison, with the value unescaped."""

    field: str
    op: str
    value: str


@dataclass(frozen=True)
class FilterExpression:
    """One or two predicates; `logical` is "AND" or "OR" when there are two."""

    predicates: tuple[Predicate, ...]
    logical: str | None = None


def parse_filter(text: str) -> FilterExpression:
    """Parse a decoded `filter` value, raising FilterError that says what is wrong and where."""
    if not text:
        raise FilterError("filter is empty; expected <field><operator>'<value>'")
    first, position = _parse_predicate(text, 0)
    if position == len(text):
        return FilterExpression((first,))
    for logical in ("AND", "OR"):
        if text.startswith(f" {logical} ", position):
            second, end = _parse_predicate(text, position + len(logical) + 2)
            if end != len(text):
                rest = text[end:]
                if rest.startswith((" AND ", " OR ")):
                    raise FilterError("filter has more than two predicates; OneRoster 1.1 allows at most two")
                raise FilterError(f"unexpected text after the second predicate at position {end}: {rest!r}")
            return FilterExpression((first, second), logical)
    rest = text[position:]
    if rest.upper().startswith((" AND ", " OR ")):
        raise FilterError("logical operators must be uppercase and single-spaced: ' AND ' or ' OR '")
    raise FilterError(f"expected ' AND ' or ' OR ' at position {position}, found {rest!r}")


def _parse_predicate(text: str, position: int) -> tuple[Predicate, int]:
    match = _FIELD.match(text, position)
    if not match:
        raise FilterError(f"expected a field name at position {position}, found {text[position:]!r}")
    field, position = match.group(), match.end()
    op = next((op for op in OPERATORS if text.startswith(op, position)), None)
    if op is None:
        raise FilterError(f"expected an operator (= != > >= < <= ~) after field {field!r} at position {position}")
    position += len(op)
    if not text.startswith("'", position):
        raise FilterError(f"the value for {field!r} must be in single quotes (position {position})")
    value = []
    position += 1
    while True:
        end = text.find("'", position)
        if end < 0:
            raise FilterError(f"unterminated quoted value for {field!r}; write a quote inside a value as ''")
        value.append(text[position:end])
        if text.startswith("''", end):
            value.append("'")
            position = end + 2
            continue
        return Predicate(field, op, "".join(value)), end + 1


def compile_filter(expression: FilterExpression, collection: str) -> Callable[[dict], bool]:
    """A record predicate for `expression`; FilterError if a field is not filterable on `collection`."""
    tests = [_compile_predicate(p, collection) for p in expression.predicates]
    if len(tests) == 1:
        return tests[0]
    first, second = tests
    if expression.logical == "AND":
        return lambda record: first(record) and second(record)
    return lambda record: first(record) or second(record)


def _compile_predicate(predicate: Predicate, collection: str) -> Callable[[dict], bool]:
    fields = FILTERABLE_FIELDS.get(collection, frozenset(_COMMON))
    field, op, value = predicate.field, predicate.op, predicate.value
    if field not in fields:
        raise FilterError(f"field {field!r} is not filterable on {collection}; filterable: {', '.join(sorted(fields))}")
    if field == "dateLastModified" and op != "~":
        try:
            target = instant_micros(value)
        except ValueError:
            raise FilterError(f"dateLastModified value {value!r} is not an ISO 8601 date or date-time") from None
        compare = _COMPARE[op]

        def test_instant(record: dict) -> bool:
            stamp = record.get(field)
            return stamp is not None and compare(instant_micros(stamp), target)

        return test_instant
    if op == "~":
        needle = value.casefold()
        return lambda record: needle in str(record.get(field) or "").casefold()
    compare = _COMPARE[op]

    def test_string(record: dict) -> bool:
        actual = record.get(field)
        # A record without the field matches only "!=": it certainly does not equal the value.
        return compare(actual, value) if isinstance(actual, str) else op == "!="

    return test_string


_COMPARE: dict[str, Callable[[object, object], bool]] = {
    "=": lambda a, b: a == b,
    "!=": lambda a, b: a != b,
    ">": lambda a, b: a > b,  # type: ignore[operator]
    ">=": lambda a, b: a >= b,  # type: ignore[operator]
    "<": lambda a, b: a < b,  # type: ignore[operator]
    "<=": lambda a, b: a <= b,  # type: ignore[operator]
}
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


@lru_cache(maxsize=1 << 16)
def instant_micros(value: str) -> int:
    """Microseconds since the epoch for an ISO-8601 date or date-time; naive values are taken as UTC."""
    moment = datetime.fromisoformat(value)
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    delta = moment - _EPOCH
    return (delta.days * 86_400 + delta.seconds) * 1_000_000 + delta.microseconds
