"""Flattening OneRoster records into typed columnar batches (Polars frames) for the Parquet landing zone.

Each endpoint's columns are declared as data below, so the lake schema is explicit and stable from page to
page: nested GUIDRefs (``{sourcedId, type, href}``) become ``<name>_sourced_id`` columns, lists of them become
``<name>_sourced_ids`` list columns, and fields we do not know are kept verbatim in an ``extra`` JSON column
rather than dropped. OneRoster 1.2 records land in the same columns as 1.1 (normalisation gives 1.2 users
their 1.1 ``role`` and ``orgs``); the 1.2-only user fields get columns of their own, empty for 1.1 records.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import orjson
import polars as pl

from roster_pipeline.oneroster.normalize import FieldError, RecordProblem, parse_bool, parse_datetime

# Fields every OneRoster base record carries (spec 1.1 §4.13.1), handled the same on every endpoint.
COMMON_FIELDS = ("sourcedId", "status", "dateLastModified", "metadata")

USER_ID = pl.Struct({"type": pl.Utf8, "identifier": pl.Utf8})
# A OneRoster 1.2 user role: roleType primary|secondary, the role, the org it holds it at, optional dates.
USER_ROLE = pl.Struct(
    {
        "role_type": pl.Utf8,
        "role": pl.Utf8,
        "org_sourced_id": pl.Utf8,
        "user_profile": pl.Utf8,
        "begin_date": pl.Utf8,
        "end_date": pl.Utf8,
    }
)


@dataclass(frozen=True)
class Column:
    """One flattened column: which JSON key it comes from, its Parquet type and how a value converts.

    ``aliases`` are other keys holding the same field (the 1.2 CSV binding's ``preferredGivenName`` is the
    REST binding's ``preferredFirstName``); the first key present wins. ``kind`` names the conversion (text, ref,
    refs, texts, flag, user_ids), for readers that convert a whole column at once (page_table.py); empty for the
    conversions only record-by-record reading knows.
    """

    key: str
    name: str
    dtype: pl.DataType
    convert: Callable[[Any], Any]
    aliases: tuple[str, ...] = ()
    kind: str = ""

    @property
    def keys(self) -> tuple[str, ...]:
        return (self.key, *self.aliases)

    def value(self, record: Mapping[str, Any]) -> Any:
        for key in self.aliases:
            if key in record and self.key not in record:
                return self.convert(record[key])
        return self.convert(record.get(self.key))


def _text(value: Any) -> str | None:
    if value is None or value == "":
        return None
    return value if isinstance(value, str) else str(value)


def _ref(value: Any) -> str | None:
    if isinstance(value, Mapping):
        return _text(value.get("sourcedId"))
    return _text(value)


def _refs(value: Any) -> list[str]:
    if not value:
        return []
    items = value if isinstance(value, list) else [value]
    return [ref for ref in (_ref(item) for item in items) if ref is not None]


def _texts(value: Any) -> list[str]:
    if not value:
        return []
    if isinstance(value, str):
        # Some servers send a comma-separated string where the spec says array.
        return [part.strip() for part in value.split(",") if part.strip()]
    if not isinstance(value, list):
        raise TypeError("not a list")
    return [str(item) for item in value if item is not None and item != ""]


def _user_ids(value: Any) -> list[dict[str, str | None]]:
    if not value:
        return []
    return [
        {"type": _text(item.get("type")), "identifier": _text(item.get("identifier"))}
        for item in value
        if isinstance(item, Mapping)
    ]


def _user_roles(value: Any) -> list[dict[str, str | None]]:
    if not value:
        return []
    return [
        {
            "role_type": _text(item.get("roleType")),
            "role": _text(item.get("role")),
            "org_sourced_id": _ref(item.get("org")),
            "user_profile": _ref(item.get("userProfile")),
            "begin_date": _text(item.get("beginDate")),
            "end_date": _text(item.get("endDate")),
        }
        for item in value
        if isinstance(item, Mapping)
    ]


def _json(value: Any) -> str | None:
    if not value:
        return None
    return orjson.dumps(value, default=str).decode()


def _timestamp(value: Any) -> datetime | None:
    if value is None or isinstance(value, datetime):
        return value
    return parse_datetime(value)


# The common fields that need converting, read (and reported) like any other column.
BASE_COLUMNS = (
    Column("dateLastModified", "date_last_modified", pl.Datetime("us", "UTC"), _timestamp),
    Column("metadata", "metadata", pl.Utf8(), _json),
)


def text(key: str, name: str) -> Column:
    return Column(key, name, pl.Utf8(), _text, kind="text")


def flag(key: str, name: str) -> Column:
    return Column(key, name, pl.Boolean(), parse_bool, kind="flag")


def ref(key: str) -> Column:
    return Column(key, f"{_snake(key)}_sourced_id", pl.Utf8(), _ref, kind="ref")


def refs(key: str, singular: str) -> Column:
    return Column(key, f"{singular}_sourced_ids", pl.List(pl.Utf8), _refs, kind="refs")


def texts(key: str, name: str) -> Column:
    return Column(key, name, pl.List(pl.Utf8), _texts, kind="texts")


def _snake(name: str) -> str:
    return "".join(f"_{c.lower()}" if c.isupper() else c for c in name).lstrip("_")


ENDPOINT_COLUMNS: dict[str, tuple[Column, ...]] = {
    "orgs": (
        text("name", "name"),
        text("type", "type"),
        text("identifier", "identifier"),
        ref("parent"),
        refs("children", "child"),
    ),
    "academicSessions": (
        text("title", "title"),
        text("type", "type"),
        text("startDate", "start_date"),
        text("endDate", "end_date"),
        ref("parent"),
        refs("children", "child"),
        text("schoolYear", "school_year"),
    ),
    "users": (
        text("username", "username"),
        Column("userIds", "user_ids", pl.List(USER_ID), _user_ids, kind="user_ids"),
        flag("enabledUser", "enabled_user"),
        text("givenName", "given_name"),
        text("familyName", "family_name"),
        text("middleName", "middle_name"),
        text("role", "role"),
        text("identifier", "identifier"),
        text("email", "email"),
        text("sms", "sms"),
        text("phone", "phone"),
        refs("agents", "agent"),
        refs("orgs", "org"),
        texts("grades", "grades"),
        # OneRoster 1.2 only.
        ref("primaryOrg"),
        Column("preferredFirstName", "preferred_first_name", pl.Utf8(), _text, ("preferredGivenName",)),
        text("preferredMiddleName", "preferred_middle_name"),
        Column("preferredLastName", "preferred_last_name", pl.Utf8(), _text, ("preferredFamilyName",)),
        text("pronouns", "pronouns"),
        text("userMasterIdentifier", "user_master_identifier"),
        Column("roles", "roles", pl.List(USER_ROLE), _user_roles),
        Column("userProfiles", "user_profiles", pl.Utf8(), _json),
    ),
    "courses": (
        text("title", "title"),
        ref("schoolYear"),
        text("courseCode", "course_code"),
        texts("grades", "grades"),
        texts("subjects", "subjects"),
        texts("subjectCodes", "subject_codes"),
        ref("org"),
    ),
    "classes": (
        text("title", "title"),
        text("classCode", "class_code"),
        text("classType", "class_type"),
        text("location", "location"),
        texts("grades", "grades"),
        texts("subjects", "subjects"),
        texts("subjectCodes", "subject_codes"),
        ref("course"),
        ref("school"),
        refs("terms", "term"),
        texts("periods", "periods"),
    ),
    "enrollments": (
        ref("user"),
        ref("class"),
        ref("school"),
        text("role", "role"),
        flag("primary", "primary"),
        text("beginDate", "begin_date"),
        text("endDate", "end_date"),
    ),
    "demographics": (
        text("birthDate", "birth_date"),
        text("sex", "sex"),
        flag("americanIndianOrAlaskaNative", "american_indian_or_alaska_native"),
        flag("asian", "asian"),
        flag("blackOrAfricanAmerican", "black_or_african_american"),
        flag("nativeHawaiianOrOtherPacificIslander", "native_hawaiian_or_other_pacific_islander"),
        flag("white", "white"),
        flag("demographicRaceTwoOrMoreRaces", "demographic_race_two_or_more_races"),
        flag("hispanicOrLatinoEthnicity", "hispanic_or_latino_ethnicity"),
        text("countryOfBirthCode", "country_of_birth_code"),
        text("stateOfBirthAbbreviation", "state_of_birth_abbreviation"),
        text("cityOfBirth", "city_of_birth"),
        text("publicSchoolResidenceStatus", "public_school_residence_status"),
    ),
}

_KINDS: dict[type, str] = {
    pl.String: "text",
    pl.Boolean: "a boolean",
    pl.List: "a list",
    pl.Datetime: "an ISO-8601 timestamp",
    pl.Struct: "an object",
}

BASE_SCHEMA: dict[str, pl.DataType] = {
    "district_id": pl.Utf8(),
    "sourced_id": pl.Utf8(),
    "status": pl.Utf8(),
    "date_last_modified": pl.Datetime("us", "UTC"),
    "metadata": pl.Utf8(),
}


def ignorable_fields(endpoint: str) -> frozenset[str]:
    """The fields of ``endpoint`` a profile or registry may tell us not to read (all but the common ones)."""
    return frozenset(key for column in ENDPOINT_COLUMNS[endpoint] for key in column.keys)


def lake_schema(endpoint: str) -> dict[str, pl.DataType]:
    """The Parquet schema of an endpoint's landed records, in column order."""
    schema = dict(BASE_SCHEMA)
    schema.update({column.name: column.dtype for column in ENDPOINT_COLUMNS[endpoint]})
    schema["extra"] = pl.Utf8()
    return schema


def flatten_records(
    endpoint: str,
    district_id: str,
    records: Iterable[Mapping[str, Any]],
    ignored: Iterable[str] = (),
    *,
    problems: list[RecordProblem] | None = None,
    first_position: int | None = 0,
) -> pl.DataFrame:
    """Turn normalized OneRoster records of one endpoint into a frame with the endpoint's lake schema.

    ``ignored`` names fields a provider is known to fill with garbage (its profile's ``ignored_fields``):
    they are neither converted nor kept in ``extra``, so their columns stay empty.
    A record that cannot be read (no sourcedId, a field of the wrong shape) raises ValueError naming it and the
    field — unless ``problems`` is given: then it is described there and left out, and the others land.
    ``first_position`` is the first record's position in the collection, for those messages (``None``: unknown).
    """
    rows = records if isinstance(records, list) else list(records)
    layout = _Layout.of(endpoint, frozenset(ignored))
    data = _columns_at_once(layout, district_id, rows)
    if data is None:  # a record could not be read: find it (and any others) one record at a time
        data = _record_by_record(layout, endpoint, district_id, rows, problems, first_position)
    return pl.DataFrame([_series(name, data[name], dtype) for name, dtype in layout.schema.items()])


@dataclass(frozen=True)
class _Layout:
    """What flattening an endpoint's records needs, given the fields a provider's profile ignores."""

    schema: dict[str, pl.DataType]
    columns: tuple[Column, ...]  # converted from the record (the common ones first)
    blank: tuple[Column, ...]  # ignored: left empty
    known: frozenset[str]  # fields that do not go to `extra`

    @classmethod
    def of(cls, endpoint: str, skipped: frozenset[str]) -> _Layout:
        own = ENDPOINT_COLUMNS[endpoint]
        known = set(COMMON_FIELDS).union(*(column.keys for column in own)) | skipped
        return cls(
            schema=lake_schema(endpoint),
            columns=BASE_COLUMNS + tuple(column for column in own if column.key not in skipped),
            blank=tuple(column for column in own if column.key in skipped),
            known=frozenset(known),
        )


def _columns_at_once(layout: _Layout, district_id: str, rows: list[Mapping[str, Any]]) -> dict[str, list[Any]] | None:
    """Every column converted in one pass over the records (a comprehension per column: a users page in ~70% of the
    time a loop over records calling each column takes); None as soon as any record cannot be read."""
    try:
        sourced_ids = [_text(row.get("sourcedId")) for row in rows]
        if None in sourced_ids:
            return None
        data: dict[str, list[Any]] = {"district_id": [district_id] * len(rows), "sourced_id": sourced_ids}
        data["status"] = [_status(row) for row in rows]
        for column in layout.columns:
            convert, key = column.convert, column.key
            if column.aliases:
                data[column.name] = [column.value(row) for row in rows]
            elif convert is _text:  # most columns: a non-empty string is kept as it is, without a call
                data[column.name] = [
                    v if v.__class__ is str and v else _text(v) for v in [row.get(key) for row in rows]
                ]
            else:
                data[column.name] = [convert(row.get(key)) for row in rows]
    except (TypeError, ValueError, AttributeError):
        return None
    for column in layout.blank:
        data[column.name] = [column.convert(None)] * len(rows)
    data["extra"] = [_extra(row, layout.known) for row in rows]
    return data


def _record_by_record(
    layout: _Layout,
    endpoint: str,
    district_id: str,
    rows: list[Mapping[str, Any]],
    problems: list[RecordProblem] | None,
    first_position: int | None,
) -> dict[str, list[Any]]:
    """The columns of the records that can be read, each unreadable one described in ``problems`` (or raised)."""
    data: dict[str, list[Any]] = {name: [] for name in layout.schema}
    pairs = [(column, data[column.name]) for column in layout.columns]
    landed = 0
    for index, record in enumerate(rows):
        try:
            sourced_id = _text(record.get("sourcedId"))
            if sourced_id is None:
                raise ValueError("no sourcedId")
            for column, target in pairs:
                target.append(column.value(record))
        except (TypeError, ValueError, AttributeError) as error:
            for _, target in pairs:
                del target[landed:]  # undo the record's partial row
            position = None if first_position is None else first_position + index
            blamed = _blame(record, layout.columns, error)
            problem = RecordProblem.of(record, position, str(blamed), getattr(blamed, "field", None))
            if problems is None:
                raise ValueError(f"endpoint {endpoint}, {problem}") from None
            problems.append(problem)
            continue
        landed += 1
        data["district_id"].append(district_id)
        data["sourced_id"].append(sourced_id)
        data["status"].append(_status(record))
        for column in layout.blank:
            data[column.name].append(column.convert(None))
        data["extra"].append(_extra(record, layout.known))
    return data


def _status(record: Mapping[str, Any]) -> str:
    return _text(record.get("status")) or "active"


def _extra(record: Mapping[str, Any], known: frozenset[str]) -> str | None:
    """The record's fields no column holds, kept verbatim as JSON."""
    return _json({key: value for key, value in record.items() if key not in known})


def _blame(record: Mapping[str, Any], columns: tuple[Column, ...], error: Exception) -> ValueError:
    """Which field made ``record`` unreadable (FieldError), found again outside the hot path."""
    for column in columns:
        try:
            column.value(record)
        except (TypeError, ValueError, AttributeError):
            sent = next((record[key] for key in column.keys if key in record), None)
            shown = repr(sent) if len(repr(sent)) <= 60 else repr(sent)[:57] + "..."
            return FieldError(column.key, f"expected {_KINDS.get(type(column.dtype), 'a value')}, got {shown}")
    return ValueError(str(error))


def _series(name: str, values: list[Any], dtype: pl.DataType) -> pl.Series:
    """One typed column. Polars builds nested (list/struct) columns from Python objects element by element, which
    made flattening cost more than fetching; encoding them as JSON text and decoding in Polars is ~10x faster."""
    if isinstance(dtype, pl.List):
        encoded = [None if value is None else orjson.dumps(value).decode() for value in values]
        return pl.Series(name, encoded, dtype=pl.Utf8).str.json_decode(dtype)
    return pl.Series(name, values, dtype=dtype)
