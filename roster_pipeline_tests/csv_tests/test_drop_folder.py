"""A CSV district's drop folder: bundles applied oldest first, exactly once, superseded ones skipped."""

from __future__ import annotations

import orjson
import pytest

from roster_pipeline.bundles import fetch_csv_endpoint
from roster_pipeline.oneroster.csv_manifest import BundleError
from roster_pipeline.sandbox.csv_export import write_csv_bundle
from roster_pipeline.sandbox.generator import DistrictSpec, generate_district
from roster_pipeline_tests.csv_tests.conftest import csv_district, read_lake, set_mtime, write_bundle

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
    log = orjson.loads((lake.state_dir("pine") / "bundles" / "orgs.json").read_bytes())
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


def test_a_12_bundle_whose_users_would_lose_their_roles_is_refused_until_a_bulk_one_supersedes_it(tmp_path, lake):
    drop = tmp_path / "drop"
    kim = USERS_12 + "u1,active,2024-05-01T00:00:00Z,true,kim,Kim,Lee,s1,g1\r\n"
    kim_student = ROLES_12 + "r1,active,,u1,primary,student,s1\r\n"
    bundle_12(drop / "one", kim, kim_student, "bulk", "bulk", mtime=1_000)
    # Kim's name changes; her role does not, so a delta roles.csv has no row for her.
    renamed = USERS_12 + "u1,active,2024-06-01T00:00:00Z,true,kim,Kimberly,Lee,s1,g1\r\n"
    bundle_12(drop / "two", renamed, ROLES_12, "delta", "delta", mtime=2_000)
    district = csv_district("pine", {"path": str(drop)})
    with pytest.raises(BundleError) as refused:
        fetch(district, "users", lake)
    message = str(refused.value)
    assert (
        "district 'pine', endpoint users: bundle two: OneRoster 1.2 bundle with users.csv delta and roles.csv delta"
        in message
    )
    assert "would strip users of their roles" in message
    [landed] = read_lake(lake, "users", "pine")  # bundle one only: Kim keeps her role
    assert (landed["given_name"], landed["role"], landed["org_sourced_ids"]) == ("Kim", "student", ["s1"])

    bundle_12(drop / "three", renamed, kim_student, "bulk", "bulk", mtime=3_000)
    outcome = fetch(district, "users", lake)
    assert "two skipped (superseded by bulk bundle three)" in (outcome.note or "")
    newest = read_lake(lake, "users", "pine")[-1]
    assert (newest["given_name"], newest["role"], newest["_mode"]) == ("Kimberly", "student", "full")


def test_a_12_bulk_users_file_without_its_roles_does_not_supersede_anything(tmp_path, lake):
    drop = tmp_path / "drop"
    kim = USERS_12 + "u1,active,2024-05-01T00:00:00Z,true,kim,Kim,Lee,s1,g1\r\n"
    bundle_12(drop / "one", kim, ROLES_12 + "r1,active,,u1,primary,student,s1\r\n", "bulk", "bulk", mtime=1_000)
    bundle_12(drop / "two", kim, "", "bulk", "absent", mtime=2_000)
    district = csv_district("pine", {"path": str(drop)})
    with pytest.raises(BundleError, match=r"users\.csv bulk and roles\.csv absent"):
        fetch(district, "users", lake)
    assert [row["role"] for row in read_lake(lake, "users", "pine")] == ["student"]  # one was applied, not skipped
