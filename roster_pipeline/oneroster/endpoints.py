"""OneRoster REST collections as data: one row per endpoint, per specification version."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

# OAuth 2 scope families (OneRoster 1.1 and 1.2 REST bindings, "Scopes"). `roster-core.readonly` reads the
# core collections (sessions, orgs, courses, classes); `roster.readonly` reads everything the rostering
# service has except demographics, which need `roster-demographics.readonly`. Our reading of the tables;
# a provider that grants differently is handled by setting `scope` in the registry.
SCOPE_CORE = "roster-core.readonly"
SCOPE_ROSTER = "roster.readonly"
SCOPE_DEMOGRAPHICS = "roster-demographics.readonly"
SCOPE_PREFIX = {
    "v1p1": "https://purl.imsglobal.org/spec/or/v1p1/scope/",
    "v1p2": "https://purl.imsglobal.org/spec/or/v1p2/scope/",
}

# Base paths of the rostering service, per version, relative to the provider's host.
BASE_PATHS = {"v1p1": "/ims/oneroster/v1p1", "v1p2": "/ims/oneroster/rostering/v1p2"}
# The registry names versions as "1.1"/"1.2"; the tables and URLs as v1p1/v1p2.
VERSION_KEYS = {"1.1": "v1p1", "1.2": "v1p2"}


@dataclass(frozen=True)
class EndpointSpec:
    """One OneRoster collection endpoint.

    ``path`` is relative to the provider's base URL (``.../ims/oneroster/v1p1`` or
    ``.../ims/oneroster/rostering/v1p2``); ``envelope_key`` is the JSON key holding the page's records;
    ``singular_key`` the key of a single-record response (``GET users/{id}``). Optional endpoints that a
    provider does not offer are skipped, required ones fail the sync. ``scope_family`` is the narrowest
    OAuth 2 scope family that reads the endpoint (see ``scopes_for``).
    """

    name: str
    path: str
    envelope_key: str
    singular_key: str
    required: bool
    supports_delta_filter: bool = True
    scope_family: str = SCOPE_ROSTER
    version: str = "v1p1"


def _collection(name: str, singular: str, *, required: bool, scope: str, version: str) -> EndpointSpec:
    return EndpointSpec(
        name=name,
        path=name,
        envelope_key=name,
        singular_key=singular,
        required=required,
        scope_family=scope,
        version=version,
    )


def _table(version: str) -> tuple[EndpointSpec, ...]:
    # Order is the natural load order (sessions and orgs before the records that reference them); every
    # collection of both versions accepts `filter` on dateLastModified.
    return (
        _collection("academicSessions", "academicSession", required=True, scope=SCOPE_CORE, version=version),
        _collection("orgs", "org", required=True, scope=SCOPE_CORE, version=version),
        _collection("users", "user", required=True, scope=SCOPE_ROSTER, version=version),
        _collection("courses", "course", required=False, scope=SCOPE_CORE, version=version),
        _collection("classes", "class", required=True, scope=SCOPE_CORE, version=version),
        _collection("enrollments", "enrollment", required=True, scope=SCOPE_ROSTER, version=version),
        _collection("demographics", "demographics", required=False, scope=SCOPE_DEMOGRAPHICS, version=version),
    )


# OneRoster 1.1 rostering service.
ENDPOINTS_V1P1: tuple[EndpointSpec, ...] = _table("v1p1")
# OneRoster 1.2 rostering service: the same collections and envelope keys under
# /ims/oneroster/rostering/v1p2; the record shapes differ (users carry roles[]; see normalize.py).
ENDPOINTS_V1P2: tuple[EndpointSpec, ...] = _table("v1p2")

ENDPOINT_TABLES: dict[str, tuple[EndpointSpec, ...]] = {"v1p1": ENDPOINTS_V1P1, "v1p2": ENDPOINTS_V1P2}

# The collections we sync, in load order: the same in both versions. Everything keyed by endpoint (the flattened
# columns, the state tables, the fetch assets, the registry's `endpoints`) follows this list.
ENDPOINT_NAMES: tuple[str, ...] = tuple(spec.name for spec in ENDPOINTS_V1P1)


def version_key(version: str) -> str:
    """``"v1p1"``/``"v1p2"`` for a version written either way (``"1.2"`` or ``"v1p2"``)."""
    key = VERSION_KEYS.get(version, version)
    if key not in ENDPOINT_TABLES:
        raise KeyError(f"unknown OneRoster version {version!r} (known: 1.1, 1.2)")
    return key


def endpoint_spec(name: str, version: str = "v1p1") -> EndpointSpec:
    """Return the spec of endpoint ``name`` in OneRoster ``version`` (``"v1p1"``/``"1.1"`` or ``"v1p2"``/``"1.2"``).

    Raises ``KeyError`` naming the known endpoints when ``name`` is not one of them.
    """
    key = version_key(version)
    table = ENDPOINT_TABLES[key]
    for spec in table:
        if spec.name == name:
            return spec
    known = ", ".join(spec.name for spec in table)
    raise KeyError(f"unknown OneRoster {key} endpoint {name!r} (known: {known})")


def scopes_for(endpoints: Iterable[str], version: str) -> str:
    """The narrowest space-separated OAuth 2 scope that reads ``endpoints`` in ``version``.

    ``roster-core.readonly`` when only core collections are needed, ``roster.readonly`` once users or
    enrollments are, plus ``roster-demographics.readonly`` for demographics.
    """
    key = version_key(version)
    families = {endpoint_spec(name, key).scope_family for name in endpoints}
    chosen = []
    if SCOPE_ROSTER in families:
        chosen.append(SCOPE_ROSTER)
    elif SCOPE_CORE in families:
        chosen.append(SCOPE_CORE)
    if SCOPE_DEMOGRAPHICS in families:
        chosen.append(SCOPE_DEMOGRAPHICS)
    return " ".join(SCOPE_PREFIX[key] + family for family in chosen)
