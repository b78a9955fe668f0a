"""Hand-written OneRoster 1.1 records for tests whose every expected row is checked by eye."""

from __future__ import annotations

from roster_pipeline.sandbox.generator import DistrictSpec, SyntheticDistrict

STAMP = "2024-08-01T00:00:00.000Z"
COLLECTIONS = ("orgs", "academicSessions", "users", "courses", "classes", "enrollments", "demographics")


def ref(kind: str, sourced_id: str) -> dict:
    return {"href": f"/{kind}s/{sourced_id}", "sourcedId": sourced_id, "type": kind}


def user(sourced_id: str, role: str, orgs: list[str], agents: list[str], status: str = "active") -> dict:
    return {
        "sourcedId": sourced_id,
        "status": status,
        "dateLastModified": STAMP,
        "enabledUser": "true",
        "role": role,
        "username": sourced_id,
        "givenName": sourced_id.upper(),
        "familyName": "Family",
        "email": f"{sourced_id}@example.org",
        "phone": f"555-{sourced_id}",
        "sms": f"555-{sourced_id}",
        "orgs": [ref("org", o) for o in orgs],
        "agents": [ref("user", a) for a in agents],
    }


def org(sourced_id: str, kind: str, parent: str | None = None) -> dict:
    return {
        "sourcedId": sourced_id,
        "status": "active",
        "dateLastModified": STAMP,
        "name": f"{sourced_id} name",
        "type": kind,
        "identifier": sourced_id.upper(),
        "parent": ref("org", parent) if parent else None,
    }


def school_class(sourced_id: str, school: str, terms: tuple[str, ...] = ("y1",)) -> dict:
    return {
        "sourcedId": sourced_id,
        "status": "active",
        "dateLastModified": STAMP,
        "title": sourced_id,
        "school": ref("org", school),
        "terms": [ref("academicSession", t) for t in terms],
    }


def enrollment(sourced_id: str, user_id: str, class_id: str, school: str, role: str = "student") -> dict:
    return {
        "sourcedId": sourced_id,
        "status": "active",
        "dateLastModified": STAMP,
        "user": ref("user", user_id),
        "class": ref("class", class_id),
        "school": ref("org", school),
        "role": role,
        "primary": "false",
    }


def session(sourced_id: str = "y1") -> dict:
    return {
        "sourcedId": sourced_id,
        "status": "active",
        "dateLastModified": STAMP,
        "title": "2024",
        "type": "schoolYear",
    }


def district_of(district_id: str, **records: list[dict]) -> SyntheticDistrict:
    """A sandbox district holding exactly the given records (collections not given are empty)."""
    collections = {name: {r["sourcedId"]: r for r in records.get(name, [])} for name in COLLECTIONS}
    return SyntheticDistrict(DistrictSpec(district_id), collections)
