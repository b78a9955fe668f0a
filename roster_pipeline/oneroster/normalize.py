"""Normalisation of OneRoster records and error payloads as real providers send them.

Providers disagree on small things: ``"inactive"`` versus ``"tobedeleted"``, booleans as JSON
booleans or as the strings 1.1 prescribes, timestamps with or without fractional seconds or with an
offset instead of ``Z``, and error bodies with or without the ``statusInfoSet`` wrapper. Everything
downstream sees one shape, in either specification version: a OneRoster 1.2 user's ``roles[]`` also give it
the 1.1 ``role`` and ``orgs`` (see ``normalize_user_roles``).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, date, datetime
from typing import Any

import orjson

# Fields holding a 1.1 boolean-as-string that downstream code reads as a real boolean.
BOOLEAN_FIELDS: dict[str, tuple[str, ...]] = {
    "users": ("enabledUser",),
    "enrollments": ("primary",),
}

# 1.0 and several SIS exports say "inactive" (or "deleted") where 1.1 says "tobedeleted".
STATUS_ALIASES = {"inactive": "tobedeleted", "deleted": "tobedeleted"}
_TRUE = frozenset({"true", "1", "yes", "y", "t"})
_FALSE = frozenset({"false", "0", "no", "n", "f"})


def parse_datetime(value: str | datetime | date | None) -> datetime | None:
    """Parse a OneRoster timestamp into an aware UTC datetime.

    Accepts ``2024-05-01T12:00:00.123Z``, no fractional seconds, up to 7 fractional digits, an offset
    instead of ``Z``, lower-case ``z``/``t``, a space separator, and a date alone (midnight UTC).
    A timestamp without zone is taken as UTC. Empty values give ``None``.
    """
    if value is None:
        return None
    if isinstance(value, datetime):
        parsed = value
    elif isinstance(value, date):
        parsed = datetime(value.year, value.month, value.day)
    elif not isinstance(value, str):
        raise ValueError(f"not an ISO-8601 timestamp: {value!r}")
    else:
        text = value.strip()
        if not text:
            return None
        try:
            parsed = datetime.fromisoformat(text.upper())
        except ValueError:
            raise ValueError(f"not an ISO-8601 timestamp: {value!r}") from None
    if parsed.tzinfo is None:
        return parsed.replace(tzinfo=UTC)
    return parsed.astimezone(UTC)


def parse_bool(value: Any) -> bool | None:
    """Read a OneRoster boolean sent as a JSON boolean or as a string (``"true"``, ``"FALSE"``, ``"1"``).

    Unrecognised or empty values give ``None`` rather than a guess.
    """
    if isinstance(value, bool):
        return value
    if isinstance(value, int):
        return bool(value)
    if isinstance(value, str):
        text = value.strip().lower()
        if text in _TRUE:
            return True
        if text in _FALSE:
            return False
    return None


def normalize_status(value: Any) -> Any:
    """Lower-case a record status and map ``inactive``/``deleted`` to ``tobedeleted``."""
    if not isinstance(value, str):
        return value
    text = value.strip().lower()
    return STATUS_ALIASES.get(text, text)


def normalize_record(endpoint: str, record: dict[str, Any]) -> dict[str, Any]:
    """Normalise one record of ``endpoint`` in place and return it.

    ``status`` becomes ``active``/``tobedeleted``; ``dateLastModified`` an aware UTC datetime; the
    endpoint's boolean fields (``enabledUser``, ``primary``) real booleans. Other fields pass through.
    """
    if "status" in record:
        record["status"] = normalize_status(record["status"])
    if "dateLastModified" in record:
        try:
            record["dateLastModified"] = parse_datetime(record["dateLastModified"])
        except ValueError as error:
            raise FieldError("dateLastModified", str(error)) from None
    for field in BOOLEAN_FIELDS.get(endpoint, ()):
        if field in record:
            record[field] = parse_bool(record[field])
    if endpoint == "users" and isinstance(record.get("roles"), list):
        normalize_user_roles(record)
    return record


def normalize_user_roles(record: dict[str, Any]) -> dict[str, Any]:
    """Give a OneRoster 1.2 user the 1.1 ``role`` and ``orgs`` its ``roles[]`` imply; return it.

    1.2 replaced ``role`` and ``orgs`` with ``roles``: ``[{roleType: primary|secondary, role, org, ...}]``.
    ``role`` becomes the primary role (the first role when none is marked primary), so students, teachers
    and guardians land in the same roster tables as from 1.1; ``orgs`` becomes every role's org, in order,
    after any ``orgs`` the provider also sent. Fields the provider already set are kept.
    """
    roles = [role for role in record["roles"] if isinstance(role, Mapping)]
    if not roles:
        return record
    if not record.get("role"):
        primary = next((r for r in roles if str(r.get("roleType", "")).lower() == "primary"), roles[0])
        record["role"] = primary.get("role")
    orgs = list(record.get("orgs") or [])
    seen = {_ref_id(org) for org in orgs}
    for role in roles:
        org = role.get("org")
        if org is not None and _ref_id(org) not in seen:
            seen.add(_ref_id(org))
            orgs.append(org)
    record["orgs"] = orgs
    return record


def _ref_id(ref: Any) -> Any:
    return ref.get("sourcedId") if isinstance(ref, Mapping) else ref


class FieldError(ValueError):
    """One field of a record cannot be read as its specification type."""

    def __init__(self, field: str, reason: str) -> None:
        super().__init__(reason)
        self.field = field


@dataclass(frozen=True)
class RecordProblem:
    """A record a provider sent that could not be read: which one, where, and why.

    ``position`` is the record's index in the collection (page offset + index in the page), when known;
    ``field`` the field that could not be read, when one field is to blame. Callers land the rest of the page and report
    these, so one bad record never costs the good ones.
    """

    sourced_id: str | None
    position: int | None
    reason: str
    field: str | None = None

    def __str__(self) -> str:
        if self.sourced_id:
            which = f"record {self.sourced_id!r}" + ("" if self.position is None else f" (position {self.position})")
        else:
            which = "a record" if self.position is None else f"the record at position {self.position}"
        return f"{which}: " + (f"field {self.field}: " if self.field else "") + self.reason

    @classmethod
    def of(cls, record: Any, position: int | None, reason: str, field: str | None = None) -> RecordProblem:
        """The problem with ``record``, naming it by its sourcedId when it has a readable one."""
        sourced_id = _identifier(record.get("sourcedId")) if isinstance(record, Mapping) else None
        return cls(sourced_id, position, reason, field)


def _identifier(value: Any) -> str | None:
    """A sourcedId as text (some providers send numbers), or ``None`` when there is none."""
    if isinstance(value, bool) or not isinstance(value, str | int):
        return None
    text = str(value).strip()
    return text or None


def read_record(endpoint: str, record: Any, position: int) -> dict[str, Any] | RecordProblem:
    """Normalise one record as sent (see ``normalize_record``), or say why it cannot be read."""
    if not isinstance(record, dict):
        return RecordProblem(None, position, f"not a JSON object but {type(record).__name__}")
    if not _identifier(record.get("sourcedId")):
        return RecordProblem(None, position, "no sourcedId")
    try:
        return normalize_record(endpoint, record)
    except (ValueError, TypeError) as error:
        return RecordProblem.of(record, position, str(error), getattr(error, "field", None))


@dataclass(frozen=True)
class StatusInfo:
    """The useful part of a OneRoster ``imsx_StatusInfo`` error payload."""

    code_major: str | None
    severity: str | None
    description: str | None
    code_minor: tuple[tuple[str, str], ...] = ()

    def summary(self) -> str:
        """One line for an error message: ``imsx_codeMajor=failure imsx_description=... (minor: ...)``."""
        parts = []
        if self.code_major:
            parts.append(f"imsx_codeMajor={self.code_major}")
        if self.description:
            parts.append(f"imsx_description={self.description}")
        if self.code_minor:
            parts.append("imsx_codeMinor=" + ",".join(f"{name}:{value}" for name, value in self.code_minor))
        return " ".join(parts)


def _get(mapping: Mapping[str, Any], key: str) -> Any:
    """Look ``key`` up ignoring case: providers write both ``imsx_CodeMinor`` and ``imsx_codeMinor``."""
    if key in mapping:
        return mapping[key]
    lowered = key.lower()
    for name, value in mapping.items():
        if isinstance(name, str) and name.lower() == lowered:
            return value
    return None


def _as_list(value: Any) -> list[Any]:
    if value is None:
        return []
    return value if isinstance(value, list) else [value]


def _status_object(payload: Any) -> Mapping[str, Any] | None:
    if not isinstance(payload, Mapping):
        return None
    if _get(payload, "imsx_codeMajor") is not None:
        return payload
    for wrapper in ("statusInfoSet", "imsx_statusInfo", "statusInfo"):
        for item in _as_list(_get(payload, wrapper)):
            found = _status_object(item)
            if found is not None:
                return found
    return None


def parse_status_info(body: bytes | str) -> StatusInfo | None:
    """Parse a OneRoster error body; ``None`` when it is not JSON or holds no ``imsx_codeMajor``.

    Reads the bare ``imsx_StatusInfo`` object, the ``statusInfoSet`` wrapper (a list or a single object),
    both spellings of ``imsx_CodeMinor``, and ``imsx_codeMinorField`` as a list or a single object.
    """
    try:
        payload = orjson.loads(body)
    except orjson.JSONDecodeError:
        return None
    return status_info(payload)


def status_info(payload: Any) -> StatusInfo | None:
    """``parse_status_info`` for a body already parsed as JSON (a 200 may carry an error instead of records)."""
    status = _status_object(payload)
    if status is None:
        return None
    minor: list[tuple[str, str]] = []
    code_minor = _get(status, "imsx_CodeMinor")
    if isinstance(code_minor, Mapping):
        for field in _as_list(_get(code_minor, "imsx_codeMinorField")):
            if isinstance(field, Mapping):
                name = _get(field, "imsx_codeMinorFieldName")
                value = _get(field, "imsx_codeMinorFieldValue")
                minor.append((str(name), str(value)))

    def text(key: str) -> str | None:
        value = _get(status, key)
        return None if value is None else str(value)

    return StatusInfo(
        code_major=text("imsx_codeMajor"),
        severity=text("imsx_severity"),
        description=text("imsx_description"),
        code_minor=tuple(minor),
    )
