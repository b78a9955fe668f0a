"""The OneRoster 1.2 user model lands in the same columns as 1.1, with the 1.2-only fields beside them."""

from __future__ import annotations

from roster_pipeline.oneroster import normalize_record
from roster_pipeline.oneroster.endpoints import endpoint_spec, scopes_for
from roster_pipeline.oneroster.flatten import flatten_records


def org(sourced_id: str) -> dict:
    return {"href": f"https://sis.example.org/orgs/{sourced_id}", "sourcedId": sourced_id, "type": "org"}


def v12_user(**fields) -> dict:
    return {
        "sourcedId": "u1",
        "status": "active",
        "dateLastModified": "2025-01-02T03:04:05Z",
        "enabledUser": True,
        "givenName": "Robin",
        "familyName": "Okafor",
        **fields,
    }


def test_primary_role_becomes_role_and_every_role_org_becomes_an_org():
    user = normalize_record(
        "users",
        v12_user(
            roles=[
                {"roleType": "secondary", "role": "aide", "org": org("sch-2")},
                {"roleType": "primary", "role": "guardian", "org": org("sch-1"), "beginDate": "2024-08-01"},
                {"roleType": "secondary", "role": "proctor", "org": org("sch-1")},
            ],
            primaryOrg=org("sch-1"),
            preferredFirstName="Rob",
            preferredMiddleName="J",
            preferredLastName="Oka",
            pronouns="they/them",
            userMasterIdentifier="UMI-7",
            userProfiles=[{"profileId": "p1", "profileType": "LMS", "vendorId": "v", "credentials": []}],
        ),
    )
    row = flatten_records("users", "d1", [user]).row(0, named=True)
    assert row["role"] == "guardian"
    assert row["org_sourced_ids"] == ["sch-2", "sch-1"]
    assert row["primary_org_sourced_id"] == "sch-1"
    assert (row["preferred_first_name"], row["preferred_middle_name"], row["preferred_last_name"]) == (
        "Rob",
        "J",
        "Oka",
    )
    assert row["pronouns"] == "they/them" and row["user_master_identifier"] == "UMI-7"
    assert [(r["role_type"], r["role"], r["org_sourced_id"]) for r in row["roles"]] == [
        ("secondary", "aide", "sch-2"),
        ("primary", "guardian", "sch-1"),
        ("secondary", "proctor", "sch-1"),
    ]
    assert row["roles"][1]["begin_date"] == "2024-08-01"
    assert '"profileId":"p1"' in row["user_profiles"]
    assert row["extra"] is None  # every 1.2 field has a column


def test_without_a_primary_role_the_first_role_counts():
    user = normalize_record("users", v12_user(roles=[{"roleType": "secondary", "role": "parent", "org": org("s")}]))
    assert user["role"] == "parent" and [o["sourcedId"] for o in user["orgs"]] == ["s"]


def test_a_11_user_leaves_the_12_columns_empty():
    user = normalize_record("users", v12_user(role="student", orgs=[org("s")]))
    row = flatten_records("users", "d1", [user]).row(0, named=True)
    assert row["role"] == "student" and row["roles"] == [] and row["primary_org_sourced_id"] is None


def test_12_scopes_are_the_narrowest_the_endpoints_need():
    prefix = "https://purl.imsglobal.org/spec/or/v1p2/scope/"
    assert scopes_for(["orgs", "academicSessions"], "1.2") == prefix + "roster-core.readonly"
    assert scopes_for(["orgs", "users", "classes"], "1.2") == prefix + "roster.readonly"
    assert scopes_for(["orgs", "users", "demographics"], "1.2") == (
        f"{prefix}roster.readonly {prefix}roster-demographics.readonly"
    )
    assert endpoint_spec("users", "1.2").version == "v1p2"
