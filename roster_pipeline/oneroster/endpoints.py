"""OneRoster REST collections as data: one row per endpoint, per specification version."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class EndpointSpec:
    """One OneRoster collection endpoint.

    ``path`` is relative to the provider's base URL (``.../ims/oneroster/v1p1``); ``envelope_key`` is the
    JSON key holding the page's records; ``singular_key`` the key of a single-record response
    (``GET users/{id}``). Optional endpoints that a provider does not offer are skipped, required
    ones fail the sync.
    """

    name: str
    path: str
    envelope_key: str
    singular_key: str
    required: bool
    supports_delta_filter: bool = True


def _collection(name: str, singular: str, *, required: bool) -> EndpointSpec:
    return EndpointSpec(name=name, path=name, envelope_key=name, singular_key=singular, required=required)


# OneRoster 1.1 rostering service. Order is the natural load order (sessions and orgs before the
# records that reference them); every 1.1 collection accepts `filter` on dateLastModified.
ENDPOINTS_V1P1: tuple[EndpointSpec, ...] = (
    _collection("academicSessions", "academicSession", required=True),
    _collection("orgs", "org", required=True),
    _collection("users", "user", required=True),
    _collection("courses", "course", required=False),
    _collection("classes", "class", required=True),
    _collection("enrollments", "enrollment", required=True),
    _collection("demographics", "demographics", required=False),
)

# One table per specification version; 1.2 (issue 7) adds its table here.
ENDPOINT_TABLES: dict[str, tuple[EndpointSpec, ...]] = {"v1p1": ENDPOINTS_V1P1}


def endpoint_spec(name: str, version: str = "v1p1") -> EndpointSpec:
    """Return the spec of endpoint ``name`` in OneRoster ``version`` (``"v1p1"``).

    Raises ``KeyError`` naming the known endpoints when ``name`` is not one of them.
    """
    table = ENDPOINT_TABLES[version]
    for spec in table:
        if spec.name == name:
            return spec
    known = ", ".join(spec.name for spec in table)
    raise KeyError(f"unknown OneRoster {version} endpoint {name!r} (known: {known})")
