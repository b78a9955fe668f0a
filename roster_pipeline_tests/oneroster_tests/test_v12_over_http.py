"""The sandbox serves OneRoster 1.2, and a district synced as 1.1 and as 1.2 gives the same derived tables."""

from __future__ import annotations

import pytest

from roster_pipeline.oneroster import EndpointNotOffered, OAuth2ClientCredentials, OneRosterClient
from roster_pipeline.oneroster.endpoints import scopes_for
from roster_pipeline.sandbox.generator import DistrictSpec, generate_district
from roster_pipeline.sandbox.server import DistrictAuth, SandboxServer
from roster_pipeline_tests.pipeline_fixtures import snapshot


def small(district_id: str = "pine", seed: int = 5):
    return generate_district(DistrictSpec(district_id, seed=seed, schools=2, students_per_school=20))


def client_for(server: SandboxServer, district_id: str, scope: str | None) -> OneRosterClient:
    auth = OAuth2ClientCredentials(server.token_url(district_id), "pine-id", "pine-secret", scope=scope)
    return OneRosterClient(server.base_url(district_id), auth, page_size=50, version="v1p2")


def test_sandbox_serves_the_12_user_model_under_the_rostering_path():
    with SandboxServer() as server:
        server.add_district(small(), auth=DistrictAuth("oauth2", "pine-id", "pine-secret"), version="1.2")
        assert server.base_url("pine").endswith("/pine/ims/oneroster/rostering/v1p2")
        with client_for(server, "pine", scopes_for(["users"], "1.2")) as client:
            users = client.fetch_all("users")
    student = next(u for u in users if u["role"] == "student")
    assert student["roles"][0]["roleType"] == "primary" and student["primaryOrg"]["sourcedId"]
    assert student["enabledUser"] is True and "/rostering/v1p2/orgs/" in student["primaryOrg"]["href"]
    assert {u["role"] for u in users} >= {"student", "teacher", "districtAdministrator"}


def test_12_endpoints_check_the_token_scope():
    with SandboxServer() as server:
        server.add_district(small(), auth=DistrictAuth("oauth2", "pine-id", "pine-secret"), version="1.2")
        with client_for(server, "pine", scopes_for(["orgs", "users"], "1.2")) as client:
            assert client.fetch_all("orgs")
            with pytest.raises(EndpointNotOffered, match="HTTP 403"):
                client.fetch_all("demographics")
        with client_for(server, "pine", scopes_for(["demographics"], "1.2")) as client:
            assert client.fetch_all("demographics")


def without_district(rows: list[tuple]) -> list[tuple]:
    return sorted((row[1:] for row in rows), key=repr)


def test_a_district_synced_as_11_and_as_12_gives_the_same_guardian_links_and_school_mappings(world):
    district = small()
    world.add_rest_district(district, district_id="pine-v11", version="1.1")
    world.add_rest_district(district, district_id="pine-v12", version="1.2")
    assert world.sync("pine-v11").success
    result = world.sync("pine-v12")
    assert result.success, result.error
    v11, v12 = snapshot(world, "pine-v11"), snapshot(world, "pine-v12")
    for table in ("guardian_student_links", "school_mappings", "student_schools"):
        assert v11[table], table
        assert without_district(v11[table]) == without_district(v12[table]), table
    # user_orgs comes from roles[] in 1.2; only the administrator's role name differs (1.2 districtAdministrator).
    pairs = [sorted(row[1:3] for row in tables["user_orgs"]) for tables in (v11, v12)]
    assert pairs[0] == pairs[1]
    con = world.roster()
    try:
        filled = con.execute(
            "SELECT district_id, count(primary_org_sourced_id), count(user_master_identifier) FROM users "
            "GROUP BY ALL ORDER BY 1"
        ).fetchall()
    finally:
        con.close()
    students = sum(1 for u in district.records("users") if u["role"] == "student")
    assert filled[0] == ("pine-v11", 0, 0)
    assert filled[1][0] == "pine-v12" and filled[1][1] > students


def test_primary_org_decides_the_primary_school_of_a_student_in_two_schools(world):
    district = small("fir", seed=9)
    schools = [o for o in district.records("orgs") if o["type"] == "school"]
    student = next(u for u in district.records("users") if u["role"] == "student")
    second = next(s for s in schools if s["sourcedId"] != student["orgs"][0]["sourcedId"])
    second_ref = {"href": "", "sourcedId": second["sourcedId"], "type": "org"}
    district.upsert("users", {**student, "orgs": [*student["orgs"], second_ref], "primaryOrg": second_ref})
    world.add_rest_district(district, version="1.2")
    assert world.sync("fir").success
    con = world.roster()
    try:
        rows = con.execute(
            "SELECT school_sourced_id, is_primary FROM student_schools WHERE student_sourced_id = ?",
            [student["sourcedId"]],
        ).fetchall()
        single = con.execute(
            "SELECT bool_and(is_primary) FROM student_schools WHERE student_sourced_id <> ?", [student["sourcedId"]]
        ).fetchone()
    finally:
        con.close()
    assert dict(rows) == {student["orgs"][0]["sourcedId"]: False, second["sourcedId"]: True}
    assert single == (True,)
