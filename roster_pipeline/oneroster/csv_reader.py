"""Streaming one collection of a OneRoster CSV bundle as batches of REST-shaped, normalised records.

Rows flow through the csv module's iterator in batches, so memory stays flat as a file grows (only the small
parent index of orgs/academicSessions and, for 1.2 bundles, the roles of each user are held whole). A bad row
does not stop the file: it is counted and reported with file, line and reason, and the good rows are kept —
one mistyped date must not block a district's roster.
"""

from __future__ import annotations

import csv
import sys
from collections import defaultdict
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from typing import Any

from roster_pipeline.oneroster.csv_bundle import CORRUPT_MEMBER_ERRORS, CsvBundle
from roster_pipeline.oneroster.csv_columns import (
    HIERARCHIES,
    PARENT_TYPES,
    SIDE_FILES_V1P2,
    CellError,
    ColumnReader,
    column_reader,
    guid_ref,
)
from roster_pipeline.oneroster.csv_manifest import BundleError
from roster_pipeline.oneroster.normalize import normalize_record

STATUSES = ("active", "tobedeleted")
DEFAULT_BATCH_SIZE = 5_000
# Rows are counted without limit; only the first few are described, so a wholly broken file stays readable.
MAX_REPORTED = 50

# Long multi-value cells (a teacher with thousands of agentSourcedIds) exceed the csv module's 128 KiB default.
csv.field_size_limit(min(sys.maxsize, 2**31 - 1))


@dataclass(frozen=True)
class RowProblem:
    """A malformed row: where it is and why it was not landed."""

    file: str
    line: int
    reason: str

    def __str__(self) -> str:
        return f"{self.file}, line {self.line}: {self.reason}"


@dataclass(frozen=True)
class SideRow:
    """A row of a 1.2 side file (roles.csv, userProfiles.csv): its own sourcedId, its user, and the item it
    gives that user (a REST-shaped ``roles``/``userProfiles`` entry)."""

    sourced_id: str
    user_sourced_id: str
    active: bool
    item: dict[str, Any]


@dataclass(frozen=True)
class _Row:
    line: int
    values: dict[str, str]


class CsvFileReader:
    """Reads ``<endpoint>.csv`` of a bundle; iterate `batches()`, then read `rows`, `malformed` and `problems`."""

    def __init__(
        self,
        bundle: CsvBundle,
        endpoint: str,
        *,
        batch_size: int = DEFAULT_BATCH_SIZE,
        side_items: Mapping[str, Mapping[str, list[dict[str, Any]]]] | None = None,
    ) -> None:
        """``side_items`` (side file stem → user sourcedId → items) gives 1.2 users their roles and profiles
        from outside the bundle (a delta bundle holds only the changed side rows); else the bundle's are used."""
        self.bundle = bundle
        self.side_items = side_items
        self.endpoint = endpoint
        self.batch_size = batch_size
        self.rows = 0
        self.malformed = 0
        self.problems: list[RowProblem] = []
        # The sourcedIds of malformed rows where the id itself was readable: a full batch may still tombstone
        # what it did not see, except these (their records exist; only their rows could not be read).
        self.malformed_ids: set[str] = set()

    def batches(self) -> Iterator[list[dict[str, Any]]]:
        """Yield lists of normalised records, the same shape the REST client's pages hold."""
        children = self._children() if self.endpoint in HIERARCHIES else None
        side = self._side_items() if self.endpoint == "users" else {}
        roles, profiles = side.get("roles", {}), side.get("userProfiles", {})
        batch: list[dict[str, Any]] = []
        for row, readers in self._rows(self.endpoint, report=True):
            try:
                record = self._record(row, readers)
            except (CellError, ValueError) as error:
                self._problem(self.endpoint, row.line, str(error))
                if sourced_id := row.values.get("sourcedId", "").strip():
                    self.malformed_ids.add(sourced_id)
                continue
            if children is not None:
                record["children"] = children.get(record["sourcedId"], [])
            if roles or profiles:
                attach_v1p2(record, roles.get(record["sourcedId"], []), profiles.get(record["sourcedId"], []))
            self.rows += 1
            batch.append(record)
            if len(batch) >= self.batch_size:
                yield batch
                batch = []
        if batch:
            yield batch

    @property
    def all_malformed_identified(self) -> bool:
        """Whether every malformed row's sourcedId is known (rows that are not even valid CSV are not)."""
        return self.malformed == len(self.malformed_ids)

    def _record(self, row: _Row, readers: list[ColumnReader]) -> dict[str, Any]:
        record: dict[str, Any] = {}
        for reader in readers:
            value = row.values.get(reader.header, "").strip()
            if value and reader.setter is not None:
                reader.setter(record, value)
        if not record.get("sourcedId"):
            raise CellError("no sourcedId")
        # Bulk files may leave status blank (1.1 CSV binding: every record in a bulk file is active).
        record.setdefault("status", "active")
        normalize_record(self.endpoint, record)
        if record["status"] not in STATUSES:
            raise CellError(f"status {record['status']!r} is not active, tobedeleted or inactive")
        return record

    def _rows(self, stem: str, *, report: bool) -> Iterator[tuple[_Row, list[ColumnReader]]]:
        """Rows of ``<stem>.csv`` as header→cell dicts; rows with the wrong number of fields are reported."""
        name = f"{self.bundle.name}/{stem}.csv"
        with self.bundle.open_text(stem) as text:
            reader = csv.reader(text, strict=True)  # a stray quote is a reported problem, not a mangled cell
            try:
                header = [cell.strip() for cell in next(reader)]
            except StopIteration:
                return
            except (csv.Error, UnicodeDecodeError, *CORRUPT_MEMBER_ERRORS) as error:
                raise BundleError(f"{name}: the header cannot be read ({error})") from None
            # Some exports end the header with stray commas (the Moodle plugin's roles.csv: "orgSourcedId,,");
            # a column without a name holds nothing, and rows whose extra cells are blank are trimmed below.
            while header and not header[-1]:
                header.pop()
            _check_header(name, header)
            readers = [column_reader(stem, column) for column in header]
            while True:
                start = reader.line_num + 1
                try:
                    cells = next(reader)
                except StopIteration:
                    return
                except csv.Error as error:
                    if report:
                        self._problem(stem, start, f"not valid CSV ({error})")
                    continue
                except UnicodeDecodeError as error:
                    raise BundleError(f"{name}, near line {start}: not UTF-8 text ({error.reason})") from None
                except CORRUPT_MEMBER_ERRORS as error:
                    # Unlike a bad row, damaged bytes leave nothing after them to read.
                    raise BundleError(f"{name}, near line {start}: the zip member is damaged ({error})") from None
                if not cells or not any(cell.strip() for cell in cells):
                    continue  # blank lines, often trailing, carry nothing
                if len(cells) > len(header) and not any(c.strip() for c in cells[len(header) :]):
                    cells = cells[: len(header)]  # a trailing comma some exporters add
                if len(cells) != len(header):
                    if report:
                        self._problem(stem, start, f"expected {len(header)} fields, found {len(cells)}")
                    continue
                yield _Row(start, dict(zip(header, cells, strict=True))), readers

    def _children(self) -> dict[str, list[dict[str, str]]]:
        """Each record's children, in file order, from the rows' ``parentSourcedId`` (the REST API lists them)."""
        children: dict[str, list[dict[str, str]]] = defaultdict(list)
        for row, _ in self._rows(self.endpoint, report=False):
            child, parent = row.values.get("sourcedId", "").strip(), row.values.get("parentSourcedId", "").strip()
            if child and parent:
                children[parent].append(guid_ref(child, PARENT_TYPES[self.endpoint]))
        return children

    def _side_items(self) -> Mapping[str, Mapping[str, list[dict[str, Any]]]]:
        """The side files' active items grouped by user: as given, or read from this bundle."""
        if self.side_items is not None:
            return self.side_items
        grouped: dict[str, dict[str, list[dict[str, Any]]]] = {}
        for stem in SIDE_FILES_V1P2:
            grouped[stem] = defaultdict(list)
            for side in self.side_rows(stem):
                if side.active:
                    grouped[stem][side.user_sourced_id].append(side.item)
        return grouped

    def side_rows(self, stem: str) -> Iterator[SideRow]:
        """The rows of a 1.2 side file (``roles`` or ``userProfiles``), if the bundle has it; bad rows are reported."""
        if self.bundle.manifest.mode(stem) == "absent" or not self.bundle.has(stem):
            return
        build = _role if stem == "roles" else _profile
        for row, _ in self._rows(stem, report=True):
            values = {key: value.strip() for key, value in row.values.items()}
            user, sourced_id = values.get("userSourcedId", ""), values.get("sourcedId", "")
            if not user or not sourced_id:
                self._problem(stem, row.line, "no userSourcedId" if not user else "no sourcedId")
                continue
            active = values.get("status", "").lower() not in ("tobedeleted", "inactive", "deleted")
            yield SideRow(sourced_id, user, active, build(values))

    def _problem(self, stem: str, line: int, reason: str) -> None:
        self.malformed += 1
        if len(self.problems) < MAX_REPORTED:
            self.problems.append(RowProblem(f"{self.bundle.name}/{stem}.csv", line, reason))


def _check_header(name: str, header: list[str]) -> None:
    if "sourcedId" not in header:
        raise BundleError(f"{name}: the header has no sourcedId column (found: {', '.join(header)})")
    duplicates = sorted({column for column in header if header.count(column) > 1})
    if duplicates:
        raise BundleError(f"{name}: the header repeats {', '.join(duplicates)}; which value is meant is unknowable")
    if "" in header:
        raise BundleError(f"{name}: the header has an empty column name at position {header.index('') + 1}")


def _role(values: dict[str, str]) -> dict[str, Any]:
    """A roles.csv row as the OneRoster 1.2 REST ``roles`` item."""
    role: dict[str, Any] = {"roleType": values.get("roleType") or None, "role": values.get("role") or None}
    if values.get("orgSourcedId"):
        role["org"] = guid_ref(values["orgSourcedId"], "org")
    for key in ("userProfileSourcedId", "beginDate", "endDate"):
        if values.get(key):
            role[key.removesuffix("SourcedId")] = values[key]
    return role


def _profile(values: dict[str, str]) -> dict[str, Any]:
    """A userProfiles.csv row as the 1.2 REST ``userProfiles`` item; the password column is never kept."""
    profile: dict[str, Any] = {"profileId": values.get("sourcedId")}
    for key in ("profileType", "vendorId", "applicationId", "description"):
        if values.get(key):
            profile[key] = values[key]
    if values.get("credentialType") or values.get("username"):
        profile["credentials"] = [{"type": values.get("credentialType"), "username": values.get("username")}]
    return profile


def attach_v1p2(record: dict[str, Any], roles: list[dict[str, Any]], profiles: list[dict[str, Any]]) -> None:
    """Give a 1.2 user its roles and profiles, and the 1.1 ``role`` and ``orgs`` the roster tables read.

    The primary role (roleType primary) is the user's role; the orgs are those of all its roles, in file order.
    Columns of users.csv itself (a 1.1-style ``role``) win over the derived values.
    """
    if roles:
        record["roles"] = roles
        primary = next((r for r in roles if r.get("roleType") == "primary"), roles[0])
        record.setdefault("role", primary.get("role"))
        if "orgs" not in record:
            seen: dict[str, dict[str, str]] = {}
            for role in roles:
                if "org" in role:
                    seen.setdefault(role["org"]["sourcedId"], role["org"])
            record["orgs"] = list(seen.values())
    if profiles:
        record["userProfiles"] = profiles
