"""OneRoster CSV columns as data: which file holds which endpoint, and how a cell becomes a JSON field.

The CSV binding flattens the REST records: a GUIDRef becomes ``<name>SourcedId``, a list of them
``<name>SourcedIds`` ("org1,org2"), string lists are comma-joined, and ``userIds`` is written
``{LDAP:12},{LTI:15}``. The tables below undo that, so a CSV row becomes the same dict the REST API sends and
lands through `normalize_record` and `flatten_records` exactly like a REST page. Columns not listed here are
kept under their header name (they reach the lake's ``extra`` column), never dropped.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

# The OneRoster 1.1 CSV binding's header of each rostering file, in the specification's order.
HEADERS_V1P1: dict[str, tuple[str, ...]] = {
    "academicSessions": (
        "sourcedId", "status", "dateLastModified", "title", "type", "startDate", "endDate", "parentSourcedId",
        "schoolYear",
    ),
    "orgs": ("sourcedId", "status", "dateLastModified", "name", "type", "identifier", "parentSourcedId"),
    "users": (
        "sourcedId", "status", "dateLastModified", "enabledUser", "orgSourcedIds", "role", "username", "userIds",
        "givenName", "familyName", "middleName", "identifier", "email", "sms", "phone", "agentSourcedIds",
        "grades", "password",
    ),
    "courses": (
        "sourcedId", "status", "dateLastModified", "schoolYearSourcedId", "title", "courseCode", "grades",
        "orgSourcedId", "subjects", "subjectCodes",
    ),
    "classes": (
        "sourcedId", "status", "dateLastModified", "title", "grades", "courseSourcedId", "classCode", "classType",
        "location", "schoolSourcedId", "termSourcedIds", "subjects", "subjectCodes", "periods",
    ),
    "enrollments": (
        "sourcedId", "status", "dateLastModified", "classSourcedId", "schoolSourcedId", "userSourcedId", "role",
        "primary", "beginDate", "endDate",
    ),
    "demographics": (
        "sourcedId", "status", "dateLastModified", "birthDate", "sex", "americanIndianOrAlaskaNative", "asian",
        "blackOrAfricanAmerican", "nativeHawaiianOrOtherPacificIslander", "white", "demographicRaceTwoOrMoreRaces",
        "hispanicOrLatinoEthnicity", "countryOfBirthCode", "stateOfBirthAbbreviation", "cityOfBirth",
        "publicSchoolResidenceStatus",
    ),
}  # fmt: skip

# OneRoster 1.2 moves a user's role and orgs into roles.csv and credentials into userProfiles.csv.
SIDE_FILES_V1P2 = ("roles", "userProfiles")

# Single GUIDRef columns: CSV header → (JSON key, GUIDRef type). ``parentSourcedId`` takes the type of the
# file it is in (an org's parent is an org, a session's parent a session).
REF_COLUMNS: dict[str, tuple[str, str]] = {
    "courseSourcedId": ("course", "course"),
    "schoolSourcedId": ("school", "org"),
    "classSourcedId": ("class", "class"),
    "userSourcedId": ("user", "user"),
    "orgSourcedId": ("org", "org"),
    "schoolYearSourcedId": ("schoolYear", "academicSession"),
    "primaryOrgSourcedId": ("primaryOrg", "org"),
}
PARENT_TYPES = {"orgs": "org", "academicSessions": "academicSession"}

# GUIDRef list columns: CSV header → (JSON key, GUIDRef type).
REFS_COLUMNS: dict[str, tuple[str, str]] = {
    "orgSourcedIds": ("orgs", "org"),
    "agentSourcedIds": ("agents", "user"),
    "termSourcedIds": ("terms", "academicSession"),
    "resourceSourcedIds": ("resources", "resource"),
}

# Comma-joined string lists.
LIST_COLUMNS = frozenset({"grades", "subjects", "subjectCodes", "periods"})

# Credentials are never landed: a password has no place in an analytics lake, whatever the vendor exports.
DROPPED_COLUMNS = frozenset({"password"})

# The collections whose records name a parent; the REST API also lists each record's children, which the CSV
# binding leaves out, so the reader derives them from the rows' parents.
HIERARCHIES = frozenset(PARENT_TYPES)

_USER_ID = re.compile(r"\s*\{([^{}:]*):([^{}]*)\}\s*(?:,|$)")


class CellError(ValueError):
    """A cell that cannot be read; the message says which column and why."""


def split_list(text: str) -> list[str]:
    """``"org1, org2"`` → ``["org1", "org2"]``; blank items are ignored."""
    return [part.strip() for part in text.split(",") if part.strip()]


def guid_ref(sourced_id: str, ref_type: str) -> dict[str, str]:
    """A GUIDRef as the REST API sends it, without ``href`` (a CSV bundle has no base URL)."""
    return {"sourcedId": sourced_id, "type": ref_type}


def parse_user_ids(text: str) -> list[dict[str, str]]:
    """``"{LDAP:12},{LTI:15}"`` → ``[{"type": "LDAP", "identifier": "12"}, ...]`` (1.1 CSV binding §2.13).

    The identifier keeps any further colons (``{LDAP:cn=a:b}``); anything else is a CellError.
    """
    found: list[dict[str, str]] = []
    position = 0
    text = text.strip()
    while position < len(text):
        match = _USER_ID.match(text, position)
        if match is None:
            raise CellError(f"userIds {text!r} is not a list of {{type:identifier}}")
        found.append({"type": match.group(1).strip(), "identifier": match.group(2).strip()})
        position = match.end()
    return found


def format_user_ids(user_ids: list[dict[str, Any]]) -> str:
    """The inverse of `parse_user_ids`."""
    return ",".join(f"{{{item.get('type', '')}:{item.get('identifier', '')}}}" for item in user_ids)


Setter = Callable[[dict[str, Any], str], None]


@dataclass(frozen=True)
class ColumnReader:
    """How one header's cells are put into a record; ``setter`` is None for a dropped column."""

    header: str
    setter: Setter | None


def column_reader(endpoint: str, header: str) -> ColumnReader:
    """The reader for one header of an endpoint's file (unknown headers are kept under their own name)."""
    if header in DROPPED_COLUMNS:
        return ColumnReader(header, None)
    if header == "parentSourcedId" and endpoint in PARENT_TYPES:
        return ColumnReader(header, _ref_setter("parent", PARENT_TYPES[endpoint]))
    if header in REF_COLUMNS:
        return ColumnReader(header, _ref_setter(*REF_COLUMNS[header]))
    if header in REFS_COLUMNS:
        return ColumnReader(header, _refs_setter(*REFS_COLUMNS[header]))
    if header in LIST_COLUMNS:
        return ColumnReader(header, _list_setter(header))
    if header == "userIds":
        return ColumnReader(header, _user_ids_setter)
    return ColumnReader(header, _text_setter(header))


def _ref_setter(key: str, ref_type: str) -> Setter:
    def setter(record: dict[str, Any], value: str) -> None:
        record[key] = guid_ref(value.strip(), ref_type)

    return setter


def _refs_setter(key: str, ref_type: str) -> Setter:
    def setter(record: dict[str, Any], value: str) -> None:
        record[key] = [guid_ref(item, ref_type) for item in split_list(value)]

    return setter


def _list_setter(key: str) -> Setter:
    def setter(record: dict[str, Any], value: str) -> None:
        record[key] = split_list(value)

    return setter


def _text_setter(key: str) -> Setter:
    def setter(record: dict[str, Any], value: str) -> None:
        record[key] = value

    return setter


def _user_ids_setter(record: dict[str, Any], value: str) -> None:
    record["userIds"] = parse_user_ids(value)


def record_to_cells(endpoint: str, record: dict[str, Any], headers: tuple[str, ...]) -> list[str]:
    """One REST-shaped record as the cells of a CSV row under ``headers`` (what the sandbox exporter writes)."""
    cells = []
    for header in headers:
        if header in DROPPED_COLUMNS:
            cells.append("")
            continue
        if header == "parentSourcedId":
            value = record.get("parent")
        elif header in REF_COLUMNS:
            value = record.get(REF_COLUMNS[header][0])
        elif header in REFS_COLUMNS:
            value = record.get(REFS_COLUMNS[header][0])
        else:
            value = record.get(header)
        cells.append(_cell(header, value))
    return cells


def _cell(header: str, value: Any) -> str:
    if value is None:
        return ""
    if header == "userIds":
        return format_user_ids(value)
    if isinstance(value, dict):
        return str(value.get("sourcedId", ""))
    if isinstance(value, list):
        return ",".join(_cell(header, item) for item in value)
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)
