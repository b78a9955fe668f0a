"""Bundles as real SIS exports write them: blank manifest values, file names in any case, stray header commas.

The shape is that of the Moodle OneRoster plugin's 1.2 test bundle (catalyst/moodle-enrol_oneroster,
tests/fixtures/csv_data/v1p2_full_dataset.zip): ``file.scoreScales,`` and ``file.userProfiles,`` left blank, a
lower-case ``userprofiles.csv``, and a roles header ending ``orgSourcedId,,``. What is only untidy is read, and
said in the run's notes; what is truly ambiguous is refused, naming the file and the line.
"""

from __future__ import annotations

import zipfile
from pathlib import Path

import pytest
import yaml

from roster_pipeline.ingest.csv_drops import fetch_csv_endpoint
from roster_pipeline.oneroster.csv_bundle import open_bundle
from roster_pipeline.oneroster.csv_manifest import BundleError, ManifestError
from roster_pipeline.oneroster.csv_reader import CsvFileReader
from roster_pipeline_tests.ingest_tests.conftest import csv_district, write_bundle

# The Moodle fixture's manifest, row for row, with the files this roster does not carry marked absent.
MOODLE_MANIFEST_ROWS = [
    "propertyName,value",
    "manifest.version,1.0",
    "oneroster.version,1.2",
    "file.academicSessions,absent",
    "file.categories,absent",
    "file.classes,absent",
    "file.classResources,absent",
    "file.courses,absent",
    "file.courseResources,absent",
    "file.demographics,absent",
    "file.enrollments,absent",
    "file.lineItemLearningObjectiveIds,absent",
    "file.lineItems,absent",
    "file.lineItemScoreScales,absent",
    "file.orgs,bulk",
    "file.resources,absent",
    "file.resultLearningObjectiveIds,absent",
    "file.results,absent",
    "file.resultScoreScales,absent",
    "file.roles,bulk",
    "file.scoreScales,",  # line 21
    "file.userProfiles,",  # line 22
    "file.userResources,",  # line 23
    "file.users,bulk",
    "source.systemCode,absent",
    "source.systemName,absent",
]
MOODLE_MANIFEST = "\r\n".join(MOODLE_MANIFEST_ROWS)  # no line end after the last row, as in the plugin's file
# The same manifest with every value given, as the 1.2 CSV binding asks.
FILLED = {
    "file.scoreScales,": "file.scoreScales,absent",
    "file.userProfiles,": "file.userProfiles,bulk",
    "file.userResources,": "file.userResources,absent",
}
CLEAN_MANIFEST = "".join(FILLED.get(row, row) + "\r\n" for row in MOODLE_MANIFEST_ROWS)

ORGS = (
    "sourcedId,status,dateLastModified,name,type,identifier,parentSourcedId\r\n"
    "d1,active,2025-01-01,Pine District,district,,\r\n"
    "s1,active,2025-01-01,Pine High,school,,d1\r\n"
)
USERS = (
    "sourcedId,status,dateLastModified,enabledUser,username,userIds,givenName,familyName,middleName,identifier,"
    "email,sms,phone,agentSourcedIds,grades,password,userMasterIdentifier,preferredGivenName,preferredMiddleName,"
    "preferredFamilyName,primaryOrgSourcedId,pronouns\r\n"
    "u1,active,2025-01-01,TRUE,kim.lee,{LDAP:12},Kim,Lee,,kim.lee,kim@pine.example,,,g1,09,Password1-,,,,,s1,she/her\r\n"
    "u2,,,TRUE,ana.ruiz,,Ana,Ruiz,,ana.ruiz,ana@pine.example,,,,10,,,,,,s1,\r\n"
    "g1,active,2025-01-01,TRUE,pat.lee,,Pat,Lee,,pat.lee,pat@home.example,,,u1,,,,,,,s1,\r\n"
)
ROLES_HEADER = "sourcedId,status,dateLastModified,userSourcedId,roleType,role,beginDate,endDate,orgSourcedId"
ROLES_ROWS = (
    "r1,active,2025-01-01,u1,primary,student,2024-09-01,2025-06-30,s1\r\n"
    "r2,active,2025-01-01,u2,primary,student,2024-09-01,2025-06-30,s1\r\n"
    "r3,active,2025-01-01,g1,primary,guardian,2024-09-01,2025-06-30,s1\r\n"
)
PROFILES = (
    "sourcedId,status,dateLastModified,userSourcedId,profileType,vendorId,applicationId,description,"
    "credentialType,username,password\r\n"
    "p1,active,2025-01-01,u1,lms,moodle,,Moodle login,password,kim.lee,Password1-\r\n"
)

USER_PROFILES_NOTE = "manifest.csv line 22: file.userProfiles is blank; userprofiles.csv is present, read as bulk"


def moodle_bundle(folder: Path) -> Path:
    """The roster as the Moodle plugin's fixture writes it (the roles header ends in two stray commas)."""
    files = {"orgs": ORGS, "users": USERS, "roles": ROLES_HEADER + ",,\r\n" + ROLES_ROWS, "userprofiles": PROFILES}
    return write_bundle(folder, files, manifest=MOODLE_MANIFEST)


def clean_bundle(folder: Path) -> Path:
    """The same roster as the 1.2 CSV binding asks for it: every file named and valued, camelCase names."""
    files = {"orgs": ORGS, "users": USERS, "roles": ROLES_HEADER + "\r\n" + ROLES_ROWS, "userProfiles": PROFILES}
    return write_bundle(folder, files, manifest=CLEAN_MANIFEST)


def zipped(folder: Path, archive: Path | None = None) -> Path:
    """The bundle folder's files zipped at the root of ``archive`` (beside the folder unless given)."""
    archive = archive or folder.with_suffix(".zip")
    with zipfile.ZipFile(archive, "w", zipfile.ZIP_DEFLATED) as bundle:
        for path in sorted(folder.iterdir()):
            bundle.write(path, path.name)
    return archive


def as_folder(folder: Path) -> Path:
    return folder


def users_of(path: Path) -> dict[str, dict]:
    with open_bundle(path) as bundle:
        return {user["sourcedId"]: user for batch in CsvFileReader(bundle, "users").batches() for user in batch}


@pytest.mark.parametrize("delivered", [as_folder, zipped], ids=["folder", "zip"])
def test_a_moodle_shaped_12_bundle_opens_reading_blank_values_by_the_files_present(tmp_path, delivered):
    path = delivered(moodle_bundle(tmp_path / "moodle"))
    with open_bundle(path) as bundle:
        manifest = bundle.manifest
        modes = {stem: manifest.mode(stem) for stem in ("userProfiles", "scoreScales", "userResources", "roles")}
        notes = manifest.notes_on(["userProfiles", "scoreScales", "userResources"])
    assert modes == {"userProfiles": "bulk", "scoreScales": "absent", "userResources": "absent", "roles": "bulk"}
    assert notes == [
        "manifest.csv line 21: file.scoreScales is blank and no scoreScales.csv is present, read as absent",
        USER_PROFILES_NOTE,
        "manifest.csv line 23: file.userResources is blank and no userResources.csv is present, read as absent",
    ]


@pytest.mark.parametrize("delivered", [as_folder, zipped], ids=["folder", "zip"])
def test_a_moodle_shaped_12_bundle_gives_users_the_same_roles_and_profiles_as_a_clean_one(tmp_path, delivered):
    moodle = users_of(delivered(moodle_bundle(tmp_path / "moodle")))
    assert moodle == users_of(delivered(clean_bundle(tmp_path / "clean")))
    kim = moodle["u1"]
    assert (kim["role"], kim["orgs"], kim["userProfiles"][0]["profileId"]) == (
        "student",
        [{"sourcedId": "s1", "type": "org"}],
        "p1",
    )


def test_the_drop_folder_says_how_it_read_a_blank_manifest_value_in_the_note_run_and_import_record(tmp_path, lake):
    drop = tmp_path / "drop"
    moodle_bundle(drop / "moodle")
    outcome = fetch_csv_endpoint(csv_district("pine", {"path": str(drop)}), "users", lake, run_id="run-1")
    assert outcome.note == f"moodle: bulk users.csv, 3 records; {USER_PROFILES_NOTE}"
    [(_, run)] = [(at, run) for at, run in lake.run_records("pine") if run["endpoint"] == "users"]
    assert run["extra"]["manifest_notes"] == [USER_PROFILES_NOTE]
    [entry] = lake.state("pine").import_log("users").read()
    assert (entry["outcome"], entry["mode"], entry["notes"]) == ("imported", "bulk", [USER_PROFILES_NOTE])


def test_a_blank_value_for_a_file_not_delivered_reads_as_absent_for_that_endpoint(tmp_path, lake):
    drop = tmp_path / "drop"
    manifest = "propertyName,value\r\noneroster.version,1.1\r\nfile.orgs,bulk\r\nfile.users,\r\n"
    write_bundle(drop / "one", {"orgs": ORGS}, manifest=manifest)
    outcome = fetch_csv_endpoint(csv_district("pine", {"path": str(drop)}), "users", lake, run_id="run-1")
    assert outcome.note == (
        "one: users absent; manifest.csv line 4: file.users is blank and no users.csv is present, read as absent"
    )


def test_a_blank_value_for_a_file_present_beside_delta_files_is_refused_naming_both_lines(tmp_path):
    manifest = "propertyName,value\r\nfile.orgs,delta\r\nfile.users,\r\n"
    path = write_bundle(tmp_path / "b", {"orgs": ORGS, "users": USERS}, manifest=manifest)
    with pytest.raises(ManifestError) as raised:
        open_bundle(path)
    assert raised.value.problems == [
        "line 3: file.users is blank and users.csv is present, but file.orgs is delta on line 2; "
        "whether users.csv is bulk or delta is unknowable"
    ]


def test_file_names_and_manifest_keys_match_whatever_their_case(tmp_path):
    manifest = "propertyName,value\r\nOneRoster.Version,1.1\r\nFILE.ORGS,bulk\r\nfile.Users,Bulk\r\n"
    path = write_bundle(tmp_path / "b", {"Orgs": ORGS, "USERS": USERS}, manifest=manifest)
    with open_bundle(path) as bundle:
        assert (bundle.manifest.mode("orgs"), bundle.manifest.mode("users")) == ("bulk", "bulk")
        assert [org["sourcedId"] for batch in CsvFileReader(bundle, "orgs").batches() for org in batch] == ["d1", "s1"]


def test_a_property_repeated_with_the_same_value_is_read_once(tmp_path):
    manifest = "propertyName,value\r\nfile.orgs,bulk\r\nfile.Orgs,BULK\r\n"
    with open_bundle(write_bundle(tmp_path / "b", {"orgs": ORGS}, manifest=manifest)) as bundle:
        assert bundle.manifest.files == {"orgs": "bulk"}


def test_a_property_given_twice_with_different_values_is_refused_naming_both_lines(tmp_path):
    manifest = "propertyName,value\r\nfile.orgs,bulk\r\nfile.users,delta\r\nfile.Users,\r\n"
    path = write_bundle(tmp_path / "b", {"orgs": ORGS, "users": USERS}, manifest=manifest)
    with pytest.raises(ManifestError) as raised:
        open_bundle(path)
    assert str(raised.value) == (
        "bundle b: manifest.csv rejected, the bundle is not imported:\n"
        "  - line 4: file.Users is given twice, blank here and 'delta' on line 3; which one is meant is unknowable"
    )


def test_an_unknown_file_mode_is_refused_naming_the_line(tmp_path):
    manifest = "propertyName,value\r\nfile.orgs,bulk\r\nfile.users,full\r\n"
    path = write_bundle(tmp_path / "b", {"orgs": ORGS, "users": USERS}, manifest=manifest)
    with pytest.raises(ManifestError) as raised:
        open_bundle(path)
    assert raised.value.problems == ["line 3: file.users is 'full', expected one of bulk, delta, absent"]


def test_two_files_whose_names_differ_only_in_case_are_refused_in_a_folder(tmp_path):
    path = write_bundle(tmp_path / "b", {"orgs": ORGS, "users": USERS, "Users": USERS})
    with pytest.raises(BundleError) as raised:
        open_bundle(path)
    assert str(raised.value) == (
        "bundle b: holds both Users.csv and users.csv, whose names differ only in case; which one is meant is "
        "unknowable. Ask the sender for a bundle with one of them"
    )


def test_two_zip_members_whose_names_differ_only_in_case_are_refused(tmp_path):
    archive = zipped(write_bundle(tmp_path / "b", {"orgs": ORGS, "users": USERS}))
    with zipfile.ZipFile(archive, "a") as bundle:
        bundle.writestr("USERS.csv", USERS)
    with pytest.raises(BundleError, match=r"^bundle b\.zip: holds both USERS\.csv and users\.csv, whose names"):
        open_bundle(archive)


def test_a_zip_holding_the_same_file_twice_is_refused(tmp_path):
    archive = zipped(write_bundle(tmp_path / "b", {"orgs": ORGS}))
    with pytest.warns(UserWarning, match="Duplicate name"), zipfile.ZipFile(archive, "a") as bundle:
        bundle.writestr("orgs.csv", ORGS)
    with pytest.raises(BundleError, match=r"^bundle b\.zip: holds orgs\.csv twice; which one is meant is unknowable"):
        open_bundle(archive)


def test_header_commas_after_the_last_column_name_are_ignored(tmp_path):
    roles = ROLES_HEADER + ",,\r\n" + ROLES_ROWS
    manifest = "propertyName,value\r\noneroster.version,1.2\r\nfile.users,bulk\r\nfile.roles,bulk\r\n"
    path = write_bundle(tmp_path / "b", {"users": USERS, "roles": roles}, manifest=manifest)
    with open_bundle(path) as bundle:
        reader = CsvFileReader(bundle, "users")
        users = [user for batch in reader.batches() for user in batch]
    assert (reader.malformed, [user["role"] for user in users]) == (0, ["student", "student", "guardian"])


def test_an_empty_column_name_between_columns_is_still_refused(tmp_path):
    path = write_bundle(tmp_path / "b", {"orgs": "sourcedId,,name\r\nd1,x,District\r\n"})
    with open_bundle(path) as bundle, pytest.raises(BundleError, match=r"b/orgs\.csv: the header has an empty column"):
        list(CsvFileReader(bundle, "orgs").batches())


def roster(world, district_id: str) -> tuple:
    with world.roster() as con:
        return tuple(
            con.execute(query, [district_id]).fetchall()
            for query in (
                "SELECT sourced_id, given_name, family_name FROM students WHERE district_id = ? ORDER BY 1",
                "SELECT guardian_sourced_id, student_sourced_id FROM guardian_student_links WHERE district_id = ?",
                "SELECT user_sourced_id, org_sourced_id FROM user_orgs WHERE district_id = ? ORDER BY 1, 2",
            )
        )


def test_a_moodle_shaped_12_bundle_syncs_students_and_guardian_links_like_a_clean_one(world, tmp_path):
    for district_id, build in (("pine", clean_bundle), ("moodle", moodle_bundle)):
        drop = tmp_path / district_id / "drop"
        drop.mkdir(parents=True)
        zipped(build(tmp_path / district_id / "export"), drop / "export.zip")
        world.entries.append({"id": district_id, "provider": "generic", "source": {"kind": "csv", "path": str(drop)}})
    (world.data_dir / "districts.yaml").write_text(yaml.safe_dump({"districts": world.entries}))

    clean = world.sync("pine")
    assert clean.success, clean.error
    moodle = world.sync("moodle")
    assert moodle.success, moodle.error

    assert roster(world, "moodle") == roster(world, "pine")
    assert roster(world, "moodle") == (
        [("u1", "Kim", "Lee"), ("u2", "Ana", "Ruiz")],
        [("g1", "u1")],
        [("g1", "s1"), ("u1", "s1"), ("u2", "s1")],
    )
    assert moodle.endpoints["users"]["note"] == f"export.zip: bulk users.csv, 3 records; {USER_PROFILES_NOTE}"


def test_a_bundle_folder_whose_manifest_is_capitalised_is_found_in_the_drop_folder(tmp_path, lake):
    drop = tmp_path / "drop"
    bundle = moodle_bundle(drop / "moodle")
    (bundle / "manifest.csv").rename(bundle / "Manifest.csv")
    outcome = fetch_csv_endpoint(csv_district("pine", {"path": str(drop)}), "users", lake, run_id="run-1")
    assert outcome.records == 3
