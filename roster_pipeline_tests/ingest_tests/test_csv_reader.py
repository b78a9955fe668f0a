"""Reading messy real-world OneRoster CSV files: each case lands like the REST API's records would."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

import orjson

from roster_pipeline.oneroster.csv_bundle import open_bundle
from roster_pipeline.oneroster.csv_reader import CsvFileReader
from roster_pipeline.oneroster.flatten import flatten_records
from roster_pipeline_tests.ingest_tests.conftest import write_bundle

USERS_HEADER = (
    "sourcedId,status,dateLastModified,enabledUser,orgSourcedIds,role,username,userIds,givenName,familyName,"
    "middleName,identifier,email,sms,phone,agentSourcedIds,grades,password"
)

ORGS_HEADER = "sourcedId,status,dateLastModified,name,type,identifier,parentSourcedId"


def read(path: Path, endpoint: str, batch_size: int = 5000) -> tuple[list[dict], CsvFileReader]:
    with open_bundle(path) as bundle:
        reader = CsvFileReader(bundle, endpoint, batch_size=batch_size)
        records = [record for batch in reader.batches() for record in batch]
    return records, reader


def test_quoted_multi_value_cells_become_guidref_lists(tmp_path):
    users = (
        USERS_HEADER + "\r\n"
        'u1,active,2024-05-01T12:00:00.000Z,true,"org1,org2",student,ava,"{LDAP:12},{LTI:15}",Ava,Smith,,0001,'
        'ava@x.org,,,"g1, g2","09,10",\r\n'
    )
    records, reader = read(write_bundle(tmp_path / "b", {"users": users}), "users")
    assert reader.malformed == 0
    user = records[0]
    assert user["orgs"] == [{"sourcedId": "org1", "type": "org"}, {"sourcedId": "org2", "type": "org"}]
    assert user["agents"] == [{"sourcedId": "g1", "type": "user"}, {"sourcedId": "g2", "type": "user"}]
    assert user["userIds"] == [{"type": "LDAP", "identifier": "12"}, {"type": "LTI", "identifier": "15"}]
    assert user["grades"] == ["09", "10"]
    assert user["enabledUser"] is True
    frame = flatten_records("users", "d", records)
    assert frame["org_sourced_ids"].to_list() == [["org1", "org2"]]
    assert frame["agent_sourced_ids"].to_list() == [["g1", "g2"]]


def test_file_without_final_newline_keeps_its_last_row(tmp_path):
    orgs = ORGS_HEADER + "\nd1,,,District,district,,\ns1,,,School,school,,d1"
    records, _ = read(write_bundle(tmp_path / "b", {"orgs": orgs}), "orgs")
    assert [r["sourcedId"] for r in records] == ["d1", "s1"]
    assert records[1]["parent"] == {"sourcedId": "d1", "type": "org"}
    # The REST API lists a parent's children; the CSV binding has no such column, so they are derived.
    assert records[0]["children"] == [{"sourcedId": "s1", "type": "org"}]


def test_byte_order_mark_is_not_part_of_the_first_header(tmp_path):
    orgs = "\ufeff" + ORGS_HEADER + "\r\nd1,active,,District,district,,\r\n"
    records, reader = read(write_bundle(tmp_path / "b", {"orgs": orgs}), "orgs")
    assert reader.malformed == 0
    assert records[0]["sourcedId"] == "d1"
    assert "\ufeffsourcedId" not in records[0]


def test_bulk_file_with_inactive_or_blank_status_and_date_only_timestamps(tmp_path):
    enrollments = (
        "sourcedId,status,dateLastModified,classSourcedId,schoolSourcedId,userSourcedId,role,primary,beginDate,endDate\r\n"
        "e1,,2024-05-01,c1,s1,u1,student,false,2024-08-20,2025-06-13\r\n"
        "e2,inactive,,c1,s1,u2,student,FALSE,,\r\n"
        "e3,Active,2024-05-01T10:00:00+02:00,c1,s1,u3,teacher,true,,\r\n"
    )
    records, reader = read(write_bundle(tmp_path / "b", {"enrollments": enrollments}), "enrollments")
    assert reader.malformed == 0
    assert [r["status"] for r in records] == ["active", "tobedeleted", "active"]
    assert records[0]["dateLastModified"] == datetime(2024, 5, 1, tzinfo=UTC)
    assert "dateLastModified" not in records[1]
    assert records[2]["dateLastModified"] == datetime(2024, 5, 1, 8, tzinfo=UTC)
    assert [r["primary"] for r in records] == [False, False, True]
    assert records[0]["class"] == {"sourcedId": "c1", "type": "class"}
    assert records[0]["user"] == {"sourcedId": "u1", "type": "user"}


def test_malformed_rows_are_reported_with_line_and_reason_and_good_rows_kept(tmp_path):
    orgs = (
        "sourcedId,status,dateLastModified,name,type,identifier,parentSourcedId\r\n"
        "d1,active,,District,district,,\r\n"
        "s1,active,not-a-date,School One,school,,d1\r\n"
        "s2,active,,School Two,school\r\n"
        ",active,,No Id,school,,d1\r\n"
        's3,active,,"Bad "quote",school,,d1\r\n'
        "s4,retired,,School Four,school,,d1\r\n"
        "\r\n"
        '"s5",active,,"School, Five",school,,d1\r\n'
    )
    records, reader = read(write_bundle(tmp_path / "b", {"orgs": orgs}), "orgs")
    assert [r["sourcedId"] for r in records] == ["d1", "s5"]
    assert records[1]["name"] == "School, Five"
    assert reader.malformed == 5
    described = [str(p) for p in reader.problems]
    assert described[0] == "b/orgs.csv, line 3: not an ISO-8601 timestamp: 'not-a-date'"
    assert described[1] == "b/orgs.csv, line 4: expected 7 fields, found 5"
    assert described[2] == "b/orgs.csv, line 5: no sourcedId"
    assert described[3].startswith("b/orgs.csv, line 6: not valid CSV")
    assert described[4] == "b/orgs.csv, line 7: status 'retired' is not active, tobedeleted or inactive"


def test_unknown_columns_are_kept_in_extra_and_passwords_never_land(tmp_path):
    users = USERS_HEADER + ",homeLanguage,vendorFlag\r\nu1,,,true,o1,student,ava,,Ava,Smith,,,,,,,,hunter2,es,\r\n"
    records, _ = read(write_bundle(tmp_path / "b", {"users": users}), "users")
    frame = flatten_records("users", "d", records)
    assert orjson.loads(frame["extra"][0]) == {"homeLanguage": "es"}
    assert "hunter2" not in str(records) and "hunter2" not in str(frame.to_dicts())


def test_multi_line_quoted_cell_and_batches_stream(tmp_path):
    rows = "".join(f'c{i},active,,"Class\n{i}",,,C{i},scheduled,,s1,"t1,t2",,,"1,2"\r\n' for i in range(25))
    classes = (
        "sourcedId,status,dateLastModified,title,grades,courseSourcedId,classCode,classType,location,"
        "schoolSourcedId,termSourcedIds,subjects,subjectCodes,periods\r\n" + rows + "bad,row\r\n"
    )
    path = write_bundle(tmp_path / "b", {"classes": classes})
    with open_bundle(path) as bundle:
        reader = CsvFileReader(bundle, "classes", batch_size=10)
        sizes = [len(batch) for batch in reader.batches()]
    assert sizes == [10, 10, 5]
    assert str(reader.problems[0]) == "b/classes.csv, line 52: expected 14 fields, found 2"
    records, _ = read(path, "classes")
    assert records[3]["title"] == "Class\n3"
    assert records[0]["terms"] == [
        {"sourcedId": "t1", "type": "academicSession"},
        {"sourcedId": "t2", "type": "academicSession"},
    ]
    assert records[0]["periods"] == ["1", "2"]
    assert records[0]["school"] == {"sourcedId": "s1", "type": "org"}


def test_oneroster_1_2_bundle_with_roles_user_profiles_and_preferred_names(tmp_path):
    users = (
        "sourcedId,status,dateLastModified,enabledUser,username,userIds,givenName,familyName,middleName,"
        "preferredGivenName,preferredMiddleName,preferredFamilyName,primaryOrgSourcedId,pronouns,identifier,email,"
        "sms,phone,agentSourcedIds,grades,password,userMasterIdentifier,resourceSourcedIds\r\n"
        "u1,active,2024-05-01T00:00:00Z,true,kim,{SIS:9},Kimberly,Lee,,Kim,,Li,s1,she/her,9,k@x.org,,,g1,05,,M9,\r\n"
    )
    roles = (
        "sourcedId,status,dateLastModified,userSourcedId,roleType,role,beginDate,endDate,orgSourcedId,"
        "userProfileSourcedId\r\n"
        "r1,active,,u1,secondary,aide,,,s2,\r\n"
        "r2,active,,u1,primary,student,2024-08-20,,s1,p1\r\n"
        "r3,tobedeleted,,u1,secondary,teacher,,,s3,\r\n"
    )
    profiles = (
        "sourcedId,status,dateLastModified,userSourcedId,profileType,vendorId,applicationId,description,"
        "credentialType,username,password\r\n"
        "p1,active,,u1,lms,acme,app1,Canvas,password,kim.lee,topsecret\r\n"
    )
    manifest = (
        "propertyName,value\nmanifest.version,1.0\noneroster.version,1.2\nfile.users,bulk\nfile.roles,bulk\n"
        "file.userProfiles,bulk\nfile.orgs,absent\n"
    )
    path = write_bundle(tmp_path / "b", {"users": users, "roles": roles, "userProfiles": profiles}, manifest=manifest)
    records, reader = read(path, "users")
    assert reader.malformed == 0
    user = records[0]
    assert user["role"] == "student"
    assert user["orgs"] == [{"sourcedId": "s2", "type": "org"}, {"sourcedId": "s1", "type": "org"}]
    assert user["primaryOrg"] == {"sourcedId": "s1", "type": "org"}
    frame = flatten_records("users", "d", records)
    assert frame["role"].to_list() == ["student"]
    assert frame["org_sourced_ids"].to_list() == [["s2", "s1"]]
    # The 1.2 fields land in the users columns the REST binding fills (issue 7), not in `extra`.
    row = frame.row(0, named=True)
    assert (row["preferred_first_name"], row["preferred_last_name"]) == ("Kim", "Li")
    assert [r["role"] for r in row["roles"]] == ["aide", "student"] and row["primary_org_sourced_id"] == "s1"
    assert orjson.loads(row["user_profiles"])[0]["credentials"] == [{"type": "password", "username": "kim.lee"}]
    assert "topsecret" not in str(frame.to_dicts())
