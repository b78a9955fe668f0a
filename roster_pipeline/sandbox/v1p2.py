"""Serving a synthetic district as OneRoster 1.2 rostering (`/ims/oneroster/rostering/v1p2`).

The generator builds 1.1 records; 1.2 is derived from them per response, so one district can be served in
either version and the two syncs compared. What changes in 1.2 (Rostering Service 1.2 information model):
users lose `role` and `orgs` for `roles[]` (roleType primary/secondary, role, org) and `primaryOrg`, and gain
`preferredFirstName`/`preferredMiddleName`/`preferredLastName`, `pronouns`, `userMasterIdentifier` and
`userProfiles`; the 1.1 role `administrator` is `districtAdministrator`; booleans are JSON booleans. GUIDRef
`href`s point at the 1.2 base path. Scopes carry `v1p2` and are checked per endpoint.
"""

from __future__ import annotations

import zlib

API_PATH_V1P1 = "ims/oneroster/v1p1"
API_PATH_V1P2 = "ims/oneroster/rostering/v1p2"
API_PATHS = {"1.1": API_PATH_V1P1, "1.2": API_PATH_V1P2}

SCOPE_V1P1 = "https://purl.imsglobal.org/spec/or/v1p1/scope/"
SCOPE_V1P2 = "https://purl.imsglobal.org/spec/or/v1p2/scope/"
SCOPES_V1P2 = tuple(
    SCOPE_V1P2 + name for name in ("roster-core.readonly", "roster.readonly", "roster-demographics.readonly")
)
# Which 1.2 scopes read each collection: roster.readonly covers everything but demographics, the core scope
# only the collections without people.
ENDPOINT_SCOPES_V1P2 = {
    "academicSessions": ("roster-core.readonly", "roster.readonly"),
    "orgs": ("roster-core.readonly", "roster.readonly"),
    "courses": ("roster-core.readonly", "roster.readonly"),
    "classes": ("roster-core.readonly", "roster.readonly"),
    "users": ("roster.readonly",),
    "enrollments": ("roster.readonly",),
    "demographics": ("roster-demographics.readonly",),
}
_ROLES_V1P2 = {"administrator": "districtAdministrator"}
_BOOLEANS = {
    "enrollments": ("primary",),
    "demographics": (
        "americanIndianOrAlaskaNative",
        "asian",
        "blackOrAfricanAmerican",
        "nativeHawaiianOrOtherPacificIslander",
        "white",
        "demographicRaceTwoOrMoreRaces",
        "hispanicOrLatinoEthnicity",
    ),
}
_PRONOUNS = ("she/her", "he/him", "they/them")


def endpoint_allowed(collection: str, granted: frozenset[str]) -> bool:
    """Whether 1.2 scopes `granted` (full URIs) read `collection`."""
    return any(SCOPE_V1P2 + name in granted for name in ENDPOINT_SCOPES_V1P2[collection])


def to_v1p2(collection: str, record: dict) -> dict:
    """The 1.2 form of a generated 1.1 record (a new dict; the stored record is shared and left alone)."""
    if collection == "users":
        return _user(record)
    fields = _BOOLEANS.get(collection)
    if not fields:
        return record
    return {**record, **{f: record[f] == "true" for f in fields if isinstance(record.get(f), str)}}


def _user(record: dict) -> dict:
    user = {k: v for k, v in record.items() if k not in ("role", "orgs")}
    orgs = record.get("orgs") or []
    role = _ROLES_V1P2.get(record["role"], record["role"])
    # A 1.1 record may name its primary org (tests do, to show primaryOrg winning); else the first org.
    primary = record.get("primaryOrg") or (orgs[0] if orgs else None)
    primary_id = primary["sourcedId"] if primary else None
    user["roles"] = [
        {"roleType": "primary" if org["sourcedId"] == primary_id else "secondary", "role": role, "org": org}
        for org in orgs
    ]
    user["primaryOrg"] = primary
    user["enabledUser"] = record.get("enabledUser") == "true"
    number = zlib.crc32(record["sourcedId"].encode())
    if number % 4 == 0 and record.get("givenName"):
        user["preferredFirstName"] = record["givenName"][:3]
    if number % 5 == 0:
        user["pronouns"] = _PRONOUNS[number % len(_PRONOUNS)]
    if record.get("identifier"):
        user["userMasterIdentifier"] = f"UMI-{record['identifier']}"
    user["userProfiles"] = (
        [{"profileId": f"lms-{record['sourcedId']}", "profileType": "LMS", "vendorId": "sandbox", "credentials": []}]
        if record["role"] == "teacher"
        else []
    )
    return user


def rewrite_hrefs(body: bytes) -> bytes:
    """Point the generator's 1.1 GUIDRef hrefs at the 1.2 base path."""
    return body.replace(b"/" + API_PATH_V1P1.encode() + b"/", b"/" + API_PATH_V1P2.encode() + b"/")
