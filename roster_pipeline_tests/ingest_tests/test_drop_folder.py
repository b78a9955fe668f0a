"""A CSV district's drop folder: bundles applied oldest first, exactly once, superseded ones skipped."""

from __future__ import annotations

import pytest

from roster_pipeline.ingest.csv_drops import fetch_csv_endpoint
from roster_pipeline.oneroster.csv_manifest import BundleError
from roster_pipeline.sandbox.csv_export import write_csv_bundle
from roster_pipeline.sandbox.generator import DistrictSpec, generate_district
from roster_pipeline_tests.ingest_tests.conftest import csv_district, read_lake, set_mtime, write_bundle

ORGS = "sourcedId,status,dateLastModified,name,type,identifier,parentSourcedId\r\n"


def fetch(district, endpoint, lake, **options):
    return fetch_csv_endpoint(district, endpoint, lake, run_id="run-1", **options)


@pytest.fixture
def synthetic():
    return generate_district(DistrictSpec("pine", seed=2, schools=1, students_per_school=10))


def test_bulk_then_delta_bundles_are_applied_oldest_first_and_only_once(tmp_path, lake, synthetic):
    drop = tmp_path / "drop"
    set_mtime(write_csv_bundle(synthetic, drop / "pine-1.zip", as_zip=True), 1_000)
    student = next(u for u in synthetic.records("users") if u["role"] == "student")
    renamed = synthetic.upsert("users", {**student, "givenName": "Renamed"})
    # The district's base records date from before its base_time; every edit is stamped after it.
    set_mtime(write_csv_bundle(synthetic, drop / "pine-2", since=synthetic.spec.base_time), 2_000)
    district = csv_district("pine", {"path": str(drop)})

    outcome = fetch(district, "users", lake)
    assert outcome.mode == "full"
    assert outcome.mode_reason == "bundles applied: pine-1.zip (bulk), pine-2 (delta)"
    assert outcome.records == len(synthetic.records("users")) + 1
    batches = lake.batches("users", "pine")
    assert [(b.mode, b.records) for b in batches] == [("full", len(synthetic.records("users"))), ("delta", 1)]
    landed = [r for r in read_lake(lake, "users", "pine") if r["sourced_id"] == student["sourcedId"]]
    assert [(r["_mode"], r["given_name"]) for r in landed] == [("full", student["givenName"]), ("delta", "Renamed")]

    again = fetch(district, "users", lake)
    assert (again.mode, again.records, again.batch_id) == ("none", 0, None)
    assert again.note == f"no new bundle in {drop}"
    assert len(lake.batches("users", "pine")) == 2

    synthetic.mark_tobedeleted("users", student["sourcedId"])
    set_mtime(write_csv_bundle(synthetic, drop / "pine-3.zip", since=renamed["dateLastModified"], as_zip=True), 3_000)
    third = fetch(district, "users", lake)
    assert (third.mode, third.records) == ("delta", 1)
    assert read_lake(lake, "users", "pine")[-1]["status"] == "tobedeleted"


def test_unimported_bundles_older_than_the_newest_bulk_are_skipped(tmp_path, lake, synthetic):
    drop = tmp_path / "drop"
    set_mtime(write_csv_bundle(synthetic, drop / "a-bulk"), 1_000)
    set_mtime(write_csv_bundle(synthetic, drop / "b-delta", since="2000-01-01T00:00:00Z"), 2_000)
    set_mtime(write_csv_bundle(synthetic, drop / "c-bulk.zip", as_zip=True), 3_000)
    district = csv_district("pine", {"path": str(drop)})
    outcome = fetch(district, "orgs", lake)
    assert outcome.mode_reason == "bundles applied: c-bulk.zip (bulk)"
    assert "a-bulk skipped (superseded by bulk bundle c-bulk.zip)" in outcome.note
    assert [b.mode for b in lake.batches("orgs", "pine")] == ["full"]
    log = lake.state("pine").import_log("orgs").read()
    assert [(e["name"], e["outcome"]) for e in log] == [
        ("a-bulk", "skipped"),
        ("b-delta", "skipped"),
        ("c-bulk.zip", "imported"),
    ]


def test_a_path_that_is_a_bundle_is_imported_again_only_when_redelivered(tmp_path, lake, synthetic):
    bundle = write_csv_bundle(synthetic, tmp_path / "export")
    set_mtime(bundle, 1_000)
    district = csv_district("pine", {"path": str(bundle)})
    assert fetch(district, "classes", lake).records == len(synthetic.records("classes"))
    assert fetch(district, "classes", lake).records == 0
    set_mtime(bundle, 2_000)
    assert fetch(district, "classes", lake).mode == "full"
    assert len(lake.batches("classes", "pine")) == 2


def test_full_sync_reapplies_the_newest_bulk_bundle(tmp_path, lake, synthetic):
    drop = tmp_path / "drop"
    set_mtime(write_csv_bundle(synthetic, drop / "only.zip", as_zip=True), 1_000)
    district = csv_district("pine", {"path": str(drop)})
    fetch(district, "courses", lake)
    assert fetch(district, "courses", lake, full=True).mode == "full"
    assert [b.mode for b in lake.batches("courses", "pine")] == ["full", "full"]


def test_bad_manifest_fails_the_fetch_after_applying_the_bundles_before_it(tmp_path, lake):
    drop = tmp_path / "drop"
    write_bundle(drop / "one", {"orgs": ORGS + "d1,,,District,district,,\r\n"}, mtime=1_000)
    write_bundle(drop / "two", {"orgs": ORGS}, manifest="propertyName,value\r\nfile.orgs,sometimes\r\n", mtime=2_000)
    district = csv_district("pine", {"path": str(drop)})
    with pytest.raises(BundleError, match=r"district 'pine', endpoint orgs: bundle two: manifest.csv rejected"):
        fetch(district, "orgs", lake)
    assert [b.records for b in lake.batches("orgs", "pine")] == [1]
    runs = [run for _, run in lake.run_records("pine")]
    assert sorted(run["outcome"] for run in runs) == ["failed", "success"]


def test_absent_file_lands_nothing_and_malformed_rows_are_counted_in_the_run(tmp_path, lake):
    drop = tmp_path / "drop"
    orgs = ORGS + "d1,,,District,district,,\r\ns1,,yesterday,School,school,,d1\r\n"
    write_bundle(drop / "one", {"orgs": orgs}, mtime=1_000)
    district = csv_district("pine", {"path": str(drop)})
    users = fetch(district, "users", lake)
    assert (users.records, users.note) == (0, "one: users absent")
    outcome = fetch(district, "orgs", lake)
    assert (outcome.records, outcome.malformed) == (1, 1)
    assert lake.batches("orgs", "pine")[0].malformed == 1  # weighed by the mass-deletion guard
    assert lake.batches("orgs", "pine")[0].malformed_ids == ("s1",)  # spared, not tombstoned, by a bulk batch
    assert outcome.note == (
        "one: bulk orgs.csv, 1 records, 1 malformed rows "
        "(first: one/orgs.csv, line 3: not an ISO-8601 timestamp: 'yesterday')"
    )
    run = next(run for _, run in lake.run_records("pine") if run["endpoint"] == "orgs")
    assert run["extra"] == {
        "bundle": "one",
        "malformed_rows": 1,
        "problems": ["one/orgs.csv, line 3: not an ISO-8601 timestamp: 'yesterday'"],
    }


def test_missing_drop_folder_is_a_clear_error(tmp_path, lake):
    district = csv_district("pine", {"path": str(tmp_path / "nowhere")})
    with pytest.raises(BundleError, match=r"CSV drop folder .*nowhere does not exist"):
        fetch(district, "orgs", lake)


USERS_12 = (
    "sourcedId,status,dateLastModified,enabledUser,username,givenName,familyName,primaryOrgSourcedId,"
    "agentSourcedIds\r\n"
)
ROLES_12 = "sourcedId,status,dateLastModified,userSourcedId,roleType,role,orgSourcedId\r\n"


def bundle_12(folder, users: str, roles: str, users_mode: str, roles_mode: str, mtime: float):
    manifest = (
        "propertyName,value\r\nmanifest.version,1.0\r\noneroster.version,1.2\r\n"
        f"file.users,{users_mode}\r\nfile.roles,{roles_mode}\r\n"
    )
    files = {
        name: text
        for name, text, mode in (("users", users, users_mode), ("roles", roles, roles_mode))
        if mode != "absent"
    }
    return write_bundle(folder, files, manifest=manifest, mtime=mtime)


KIM = USERS_12 + "u1,active,2024-05-01T00:00:00Z,true,kim,Kim,Lee,s1,g1\r\n"
KIM_STUDENT = ROLES_12 + "r1,active,2024-05-01T00:00:00Z,u1,primary,student,s1\r\n"


def newest(lake, sourced_id: str) -> dict:
    return [row for row in read_lake(lake, "users", "pine") if row["sourced_id"] == sourced_id][-1]


def roles_of(row: dict) -> list[tuple[str, str, str]]:
    return [(role["role_type"], role["role"], role["org_sourced_id"]) for role in row["roles"]]


def test_a_12_delta_user_keeps_the_roles_its_bundle_did_not_repeat(tmp_path, lake):
    drop = tmp_path / "drop"
    bundle_12(drop / "one", KIM, KIM_STUDENT, "bulk", "bulk", mtime=1_000)
    # Kim's name changes; her role does not, so the delta roles.csv has no row for her.
    renamed = USERS_12 + "u1,active,2024-06-01T00:00:00Z,true,kim,Kimberly,Lee,s1,g1\r\n"
    bundle_12(drop / "two", renamed, ROLES_12, "delta", "delta", mtime=2_000)
    fetch(csv_district("pine", {"path": str(drop)}), "users", lake)
    kim = newest(lake, "u1")
    assert (kim["given_name"], kim["role"], kim["org_sourced_ids"], kim["_mode"]) == (
        "Kimberly",
        "student",
        ["s1"],
        "delta",
    )
    assert roles_of(kim) == [("primary", "student", "s1")]


def test_a_12_role_change_without_a_users_row_relands_the_user_with_all_its_roles(tmp_path, lake):
    drop = tmp_path / "drop"
    district = csv_district("pine", {"path": str(drop)})
    bundle_12(drop / "one", KIM, KIM_STUDENT, "bulk", "bulk", mtime=1_000)
    fetch(district, "users", lake)
    aide = ROLES_12 + "r9,active,2024-07-01T00:00:00Z,u1,secondary,aide,s2\r\n"
    bundle_12(drop / "two", "", aide, "absent", "delta", mtime=2_000_000_000)
    outcome = fetch(district, "users", lake)
    assert outcome.note == "two: delta 1.2 side files, 1 records"  # Kim, landed again with her new role
    kim = newest(lake, "u1")
    assert (kim["given_name"], kim["role"], kim["org_sourced_ids"]) == ("Kim", "student", ["s1", "s2"])
    assert roles_of(kim) == [("primary", "student", "s1"), ("secondary", "aide", "s2")]
    assert kim["date_last_modified"].year == 2033  # the delivery of bundle two: newer than her landed version

    dropped = ROLES_12 + "r1,tobedeleted,2024-08-01T00:00:00Z,u1,primary,student,s1\r\n"
    bundle_12(drop / "three", "", dropped, "absent", "delta", mtime=2_000_000_100)
    fetch(district, "users", lake)
    kim = newest(lake, "u1")
    assert (kim["role"], kim["org_sourced_ids"], roles_of(kim)) == ("aide", ["s2"], [("secondary", "aide", "s2")])


def test_a_12_bulk_users_file_without_roles_keeps_the_roles_and_supersedes_nothing(tmp_path, lake):
    drop = tmp_path / "drop"
    bundle_12(drop / "one", KIM, KIM_STUDENT, "bulk", "bulk", mtime=1_000)
    aide = ROLES_12 + "r9,active,,u1,secondary,aide,s2\r\n"
    bundle_12(drop / "two", "", aide, "absent", "delta", mtime=2_000)
    bundle_12(drop / "three", KIM, "", "bulk", "absent", mtime=3_000)  # would lose bundle two if it superseded it
    outcome = fetch(csv_district("pine", {"path": str(drop)}), "users", lake)
    assert "skipped" not in (outcome.note or "")
    kim = newest(lake, "u1")
    assert (kim["_mode"], roles_of(kim)) == ("full", [("primary", "student", "s1"), ("secondary", "aide", "s2")])
