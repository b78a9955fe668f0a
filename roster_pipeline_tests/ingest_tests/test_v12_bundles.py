"""OneRoster 1.2 CSV bundles through the whole pipeline: delta bundles keep every user's roles and links."""

from __future__ import annotations

import yaml

from roster_pipeline_tests.ingest_tests.conftest import write_bundle

ORGS = "sourcedId,status,dateLastModified,name,type,identifier,parentSourcedId\r\nd1,,,District,district,,\r\n"
ORGS += "s1,,,North High,school,,d1\r\n"
USERS = (
    "sourcedId,status,dateLastModified,enabledUser,username,givenName,familyName,primaryOrgSourcedId,"
    "agentSourcedIds\r\n"
)
ROLES = "sourcedId,status,dateLastModified,userSourcedId,roleType,role,orgSourcedId\r\n"


def bundle(folder, files: dict[str, tuple[str, str]], mtime: float):
    manifest = "propertyName,value\r\nmanifest.version,1.0\r\noneroster.version,1.2\r\n"
    manifest += "".join(f"file.{stem},{mode}\r\n" for stem, (_, mode) in files.items())
    texts = {stem: text for stem, (text, mode) in files.items() if mode != "absent"}
    write_bundle(folder, texts, manifest=manifest, mtime=mtime)


def roster(world) -> tuple:
    with world.roster() as con:
        return (
            con.execute("SELECT given_name FROM students WHERE district_id = 'pine'").fetchall(),
            con.execute("SELECT guardian_sourced_id, student_sourced_id FROM guardian_student_links").fetchall(),
            con.execute("SELECT user_sourced_id, org_sourced_id FROM user_orgs ORDER BY 1, 2").fetchall(),
        )


def test_a_12_delta_bundle_renaming_a_student_keeps_her_role_school_and_guardian(world, tmp_path):
    drop = tmp_path / "drop"
    people = USERS + "u1,active,,true,kim,Kim,Lee,s1,g1\r\ng1,active,,true,pat,Pat,Lee,s1,u1\r\n"
    roles = ROLES + "r1,active,,u1,primary,student,s1\r\nr2,active,,g1,primary,guardian,s1\r\n"
    bundle(drop / "one", {"orgs": (ORGS, "bulk"), "users": (people, "bulk"), "roles": (roles, "bulk")}, 1_000)
    world.entries.append({"id": "pine", "provider": "generic", "source": {"kind": "csv", "path": str(drop)}})
    (world.data_dir / "districts.yaml").write_text(yaml.safe_dump({"districts": world.entries}))
    assert world.sync("pine").success
    before = roster(world)
    assert before == ([("Kim",)], [("g1", "u1")], [("g1", "s1"), ("u1", "s1")])

    renamed = USERS + "u1,active,2030-01-01T00:00:00Z,true,kim,Kimberly,Lee,s1,g1\r\n"
    bundle(drop / "two", {"users": (renamed, "delta"), "roles": (ROLES, "delta")}, 2_000)
    result = world.sync("pine")
    assert result.success, result.error
    assert roster(world) == ([("Kimberly",)], before[1], before[2])
