"""A refused bundle never wedges a district: it is recorded once with why, fails the one run that meets it, holds
back the bundles after it, and a newer bulk file of each endpoint supersedes it there; an endpoint that nothing
after it changes moves past it once a newer bulk bundle arrives, but never lets a later change through without it."""

from __future__ import annotations

import re
import zipfile
from pathlib import Path

import pytest
import yaml

from roster_pipeline.ingest.csv_drops import BundleRef, PlannedBundle, Refusal, fetch_csv_endpoint, plan_imports
from roster_pipeline.oneroster.csv_manifest import BundleError, Manifest
from roster_pipeline.sandbox.csv_export import write_csv_bundle
from roster_pipeline.sandbox.generator import DistrictSpec, generate_district
from roster_pipeline_tests.ingest_tests.conftest import csv_district, read_lake, set_mtime, write_bundle

ORGS = "sourcedId,status,dateLastModified,name,type,identifier,parentSourcedId\r\n"
USERS = "sourcedId,status,dateLastModified,enabledUser,orgSourcedIds,role,username,givenName,familyName\r\n"


@pytest.fixture
def synthetic():
    return generate_district(DistrictSpec("pine", seed=2, schools=1, students_per_school=10))


def zip_folder(folder: Path, archive: Path, extra: dict[str, bytes] | None = None) -> Path:
    """Zip a bundle folder's files at the archive's root, plus ``extra`` members written as given."""
    archive.parent.mkdir(parents=True, exist_ok=True)
    with zipfile.ZipFile(archive, "w", zipfile.ZIP_DEFLATED) as zipped:
        for path in sorted(folder.iterdir()):
            zipped.write(path, path.name)
        for member, content in (extra or {}).items():
            zipped.writestr(member, content)
    return archive


def without_demographics(bundle: Path) -> Path:
    """A bundle folder that no longer carries demographics, as a sender that stopped exporting them writes it."""
    (bundle / "demographics.csv").unlink()
    manifest = bundle / "manifest.csv"
    manifest.write_text(manifest.read_text().replace("file.demographics,bulk", "file.demographics,absent"))
    return bundle


def traversal(folder: Path, archive: Path) -> None:
    zip_folder(folder, archive, extra={"../evil.csv": b"x"})


def zip_bomb(folder: Path, archive: Path) -> None:
    zip_folder(folder, archive, extra={"padding.csv": b"0" * (20 * 1024 * 1024)})


def bad_manifest(folder: Path, archive: Path) -> None:
    manifest = folder / "manifest.csv"
    manifest.write_text(manifest.read_text().replace("file.users,delta", "file.users,sometimes"))
    zip_folder(folder, archive)


def truncated_upload(folder: Path, archive: Path) -> None:
    zip_folder(folder, archive)
    archive.write_bytes(archive.read_bytes()[: archive.stat().st_size // 2])


FAULTS = {
    "a member escaping the work folder": (traversal, r"zip member '\.\./evil\.csv' would be written outside"),
    "a zip bomb": (zip_bomb, r"zip member 'padding\.csv' has a compression ratio of \d+:1"),
    "a bad manifest": (bad_manifest, r"manifest\.csv rejected.*\n.*file\.users is 'sometimes'"),
    "a truncated upload": (truncated_upload, r"not a readable zip file"),
}


def fetch(district, endpoint: str, lake, run_id: str):
    return fetch_csv_endpoint(district, endpoint, lake, run_id=run_id)


def import_log(lake, endpoint: str) -> list[tuple[str, str]]:
    entries = lake.state("pine").import_log(endpoint).read()
    return [(entry["name"], entry["outcome"]) for entry in entries]


def refusals(lake) -> list[dict]:
    return lake.state("pine").refusals()


@pytest.mark.parametrize("fault", FAULTS)
def test_a_refused_zip_fails_one_run_then_a_newer_bulk_bundle_without_its_files_supersedes_it(
    tmp_path, lake, synthetic, fault
):
    make, why = FAULTS[fault]
    drop = tmp_path / "drop"
    district = csv_district("pine", {"path": str(drop)})
    set_mtime(write_csv_bundle(synthetic, drop / "pine-1.zip", as_zip=True), 1_000)
    for endpoint in district.endpoints:
        fetch(district, endpoint, lake, "run-1")

    # The next delivery, a delta carrying demographics among the rest, cannot be read safely.
    make(
        write_csv_bundle(synthetic, tmp_path / "staging" / "pine-2", since="2000-01-01T00:00:00Z"), drop / "pine-2.zip"
    )
    set_mtime(drop / "pine-2.zip", 2_000)
    for endpoint in district.endpoints:
        with pytest.raises(BundleError, match=rf"^district 'pine', endpoint {endpoint}: bundle pine-2\.zip: {why}"):
            fetch(district, endpoint, lake, "run-2")
    [refusal] = refusals(lake)  # once for the district, not once per endpoint
    assert (refusal["name"], refusal["run_id"], refusal["endpoint"]) == ("pine-2.zip", "run-2", None)
    assert refusal["reason"].startswith("bundle pine-2.zip: ")

    # The operator has seen it; later runs neither try it again nor fail on it.
    for endpoint in district.endpoints:
        later = fetch(district, endpoint, lake, "run-3")
        assert later.mode == "none"
        assert re.match(
            r"pine-2\.zip was refused on \d{4}-\d\d-\d\d; bundles delivered after it are held until a newer bundle, "
            rf"bulk for their files, supersedes it\. Why: bundle pine-2\.zip: {why}",
            later.note,
        )

    # A newer bulk bundle supersedes it for every endpoint, also demographics, which the sender no longer sends.
    newer = without_demographics(write_csv_bundle(synthetic, tmp_path / "staging" / "pine-3"))
    set_mtime(zip_folder(newer, drop / "pine-3.zip"), 3_000)
    for endpoint in district.endpoints:
        fetch(district, endpoint, lake, "run-4")
        carried = "absent" if endpoint == "demographics" else "imported"
        assert import_log(lake, endpoint) == [
            ("pine-1.zip", "imported"),
            ("pine-2.zip", "skipped"),
            ("pine-3.zip", carried),
        ]
    assert len(refusals(lake)) == 1
    assert [b.mode for b in lake.batches("users", "pine")] == ["full", "full"]
    assert [b.mode for b in lake.batches("demographics", "pine")] == ["full"]
    assert fetch(district, "demographics", lake, "run-5").note == f"no new bundle in {drop}"


def test_bundles_after_a_refused_one_are_held_every_run_until_a_bulk_bundle_supersedes_them(tmp_path, lake):
    drop = tmp_path / "drop"
    district = csv_district("pine", {"path": str(drop)})
    write_bundle(drop / "one", {"orgs": ORGS + "d1,,,District,district,,\r\n"}, mtime=1_000)
    fetch(district, "orgs", lake, "run-1")
    write_bundle(drop / "two", {"orgs": ORGS}, manifest="propertyName,value\r\nfile.orgs,sometimes\r\n", mtime=2_000)
    with pytest.raises(BundleError, match=r"district 'pine', endpoint orgs: bundle two: manifest.csv rejected"):
        fetch(district, "orgs", lake, "run-2")

    # Applying three without two would lose whatever two changed, so three waits, and every run says why.
    renamed = ORGS + "d1,active,2030-01-01T00:00:00Z,Pine District,district,,\r\n"
    write_bundle(drop / "three", {"orgs": renamed}, modes={"orgs": "delta"}, mtime=3_000)
    for run_id in ("run-3", "run-4"):
        with pytest.raises(BundleError) as raised:
            fetch(district, "orgs", lake, run_id)
        assert re.match(
            r"district 'pine', endpoint orgs: three held, not applied, because two was refused on [\d-]+ and "
            r"applying what came after it would lose its changes\. Ask the sender for a new bundle with a bulk orgs "
            r"file, which supersedes them all; or, to apply the held bundles without two's changes, delete it from "
            rf"{re.escape(str(drop))}\.\nWhy two was refused: bundle two: manifest\.csv rejected",
            str(raised.value),
        )
    assert [b.records for b in lake.batches("orgs", "pine")] == [1]

    write_bundle(drop / "four", {"orgs": ORGS + "d1,,,Pine USD,district,,\r\n"}, mtime=4_000)
    outcome = fetch(district, "orgs", lake, "run-5")
    assert outcome.mode_reason == "bundles applied: four (bulk)"
    assert import_log(lake, "orgs") == [
        ("one", "imported"),
        ("two", "skipped"),
        ("three", "skipped"),
        ("four", "imported"),
    ]


def test_deleting_a_refused_bundle_applies_the_held_ones_without_it(tmp_path, lake):
    drop = tmp_path / "drop"
    district = csv_district("pine", {"path": str(drop)})
    write_bundle(drop / "one", {"orgs": ORGS + "d1,,,District,district,,\r\n"}, mtime=1_000)
    write_bundle(drop / "two", {"orgs": ORGS}, manifest="propertyName,value\r\nfile.orgs,sometimes\r\n", mtime=2_000)
    renamed = ORGS + "d1,active,2030-01-01T00:00:00Z,Pine District,district,,\r\n"
    write_bundle(drop / "three", {"orgs": renamed}, modes={"orgs": "delta"}, mtime=3_000)
    with pytest.raises(BundleError, match=r"bundle two: manifest\.csv rejected"):
        fetch(district, "orgs", lake, "run-1")
    assert [b.records for b in lake.batches("orgs", "pine")] == [1]  # the bundle before it is applied

    # The operator accepts losing two's changes by removing it, as the held-bundles error says.
    for path in (drop / "two").iterdir():
        path.unlink()
    (drop / "two").rmdir()
    outcome = fetch(district, "orgs", lake, "run-2")
    assert outcome.mode_reason == "bundles applied: three (delta)"
    assert read_lake(lake, "orgs", "pine")[-1]["name"] == "Pine District"


def test_a_refused_bundle_a_newer_bulk_already_supersedes_is_recorded_without_failing_the_run(tmp_path, lake):
    drop = tmp_path / "drop"
    district = csv_district("pine", {"path": str(drop)})
    write_bundle(drop / "one", {"orgs": ORGS}, manifest="propertyName,value\r\nfile.orgs,sometimes\r\n", mtime=1_000)
    write_bundle(drop / "two", {"orgs": ORGS + "d1,,,District,district,,\r\n"}, mtime=2_000)
    outcome = fetch(district, "orgs", lake, "run-1")
    assert outcome.mode_reason == "bundles applied: two (bulk)"
    assert outcome.note.startswith("one skipped (refused: bundle one: manifest.csv rejected, the bundle is not")
    assert "; superseded by bulk bundle two); two: bulk orgs.csv, 1 records" in outcome.note
    assert [r["reason"] for r in refusals(lake)] == [
        "bundle one: manifest.csv rejected, the bundle is not imported:\n"
        "  - line 2: file.orgs is 'sometimes', expected one of bulk, delta, absent"
    ]


def test_a_refused_bundle_redelivered_fixed_under_the_same_name_is_imported(tmp_path, lake):
    drop = tmp_path / "drop"
    district = csv_district("pine", {"path": str(drop)})
    write_bundle(drop / "one", {"orgs": ORGS + "d1,,,District,district,,\r\n"}, mtime=1_000)
    fetch(district, "orgs", lake, "run-1")
    write_bundle(drop / "two", {"orgs": ORGS}, manifest="propertyName,value\r\nfile.orgs,sometimes\r\n", mtime=2_000)
    with pytest.raises(BundleError, match=r"bundle two: manifest\.csv rejected"):
        fetch(district, "orgs", lake, "run-2")

    (drop / "two" / "manifest.csv").write_text("propertyName,value\r\nfile.orgs,delta\r\n")
    set_mtime(drop / "two", 2_500)  # a new delivery of the same name: the refusal was of the old one
    assert fetch(district, "orgs", lake, "run-3").mode_reason == "bundles applied: two (delta)"


def test_an_unreadable_file_refuses_the_bundle_for_its_endpoint_only(tmp_path, lake):
    drop = tmp_path / "drop"
    district = csv_district("pine", {"path": str(drop)})
    people = USERS + "u1,active,,true,s1,student,kim,Kim,Lee\r\n"
    write_bundle(drop / "one", {"orgs": ORGS + "d1,,,District,district,,\r\n", "users": people}, mtime=1_000)
    for endpoint in ("orgs", "users"):
        fetch(district, endpoint, lake, "run-1")
    # Hundreds of good rows, then one a Latin-1 export wrote: the file cannot be read past it.
    others = "".join(f"u{n},active,2030-01-01T00:00:00Z,true,s1,student,user{n},Ann,Lee\r\n" for n in range(2, 400))
    latin1 = (USERS + others + "u1,active,2030-01-01T00:00:00Z,true,s1,student,kim,Kim,Lé\r\n").encode("latin-1")
    renamed = ORGS + "d1,active,2030-01-01T00:00:00Z,Pine District,district,,\r\n"
    write_bundle(drop / "two", {"orgs": renamed, "users": ""}, modes={"orgs": "delta", "users": "delta"}, mtime=2_000)
    (drop / "two" / "users.csv").write_bytes(latin1)
    set_mtime(drop / "two", 2_000)

    assert fetch(district, "orgs", lake, "run-2").mode_reason == "bundles applied: two (delta)"
    with pytest.raises(BundleError) as raised:
        fetch(district, "users", lake, "run-2")
    assert re.match(
        r"district 'pine', endpoint users, bundle two: two/users.csv, near line \d+: not UTF-8 text "
        r"\(invalid continuation byte\)\nThe bundle is recorded as refused for users and not tried again",
        str(raised.value),
    )
    assert [(r["name"], r["endpoint"]) for r in refusals(lake)] == [("two", "users")]
    assert fetch(district, "users", lake, "run-3").note.startswith("two was refused on ")

    write_bundle(drop / "three", {"orgs": ORGS, "users": USERS}, modes={"orgs": "delta", "users": "delta"}, mtime=3_000)
    assert fetch(district, "orgs", lake, "run-4").mode_reason == "bundles applied: three (delta)"
    with pytest.raises(BundleError, match=r"endpoint users: three held, not applied, because two was refused on "):
        fetch(district, "users", lake, "run-4")


def test_a_refused_zip_fails_one_sync_and_the_district_publishes_again_after_it(world, tmp_path, synthetic):
    drop = tmp_path / "drop"
    set_mtime(write_csv_bundle(synthetic, drop / "pine-1.zip", as_zip=True), 1_000)
    world.entries.append({"id": "pine", "provider": "generic", "source": {"kind": "csv", "path": str(drop)}})
    (world.data_dir / "districts.yaml").write_text(yaml.safe_dump({"districts": world.entries}))
    assert world.sync("pine").success

    traversal(
        write_csv_bundle(synthetic, tmp_path / "staging" / "pine-2", since="2000-01-01T00:00:00Z"), drop / "pine-2.zip"
    )
    set_mtime(drop / "pine-2.zip", 2_000)
    refused = world.sync("pine")
    assert not refused.success
    assert "bundle pine-2.zip: zip member '../evil.csv' would be written outside the work folder" in refused.error

    assert world.sync("pine").success  # the roster as it was, published again

    student = next(u for u in synthetic.records("users") if u["role"] == "student")
    synthetic.upsert("users", {**student, "givenName": "Nova"})
    newer = without_demographics(write_csv_bundle(synthetic, tmp_path / "staging" / "pine-3"))
    set_mtime(zip_folder(newer, drop / "pine-3.zip"), 3_000)
    result = world.sync("pine")
    assert result.success, result.error
    with world.roster() as con:
        query = "SELECT given_name FROM students WHERE district_id = 'pine' AND sourced_id = ?"
        assert con.execute(query, [student["sourcedId"]]).fetchall() == [("Nova",)]


def deliver_refused_then_guardian_change(drop: Path, district, lake) -> None:
    """A roster, then a bundle refused for a bad manifest, then a users delta that adds a guardian."""
    people = USERS + "u1,active,,true,s1,student,kim,Kim,Lee\r\n"
    write_bundle(drop / "one", {"orgs": ORGS + "d1,,,District,district,,\r\n", "users": people}, mtime=1_000)
    for endpoint in ("orgs", "users", "demographics"):
        fetch(district, endpoint, lake, "run-1")
    write_bundle(drop / "two", {"users": USERS}, manifest="propertyName,value\r\nfile.users,sometimes\r\n", mtime=2_000)
    with pytest.raises(BundleError, match=r"bundle two: manifest\.csv rejected"):
        fetch(district, "users", lake, "run-2")
    guardian = USERS + "g1,active,2030-01-01T00:00:00Z,true,s1,guardian,pat,Pat,Lee\r\n"
    write_bundle(drop / "three", {"users": guardian}, modes={"users": "delta"}, mtime=3_000)


def test_a_bulk_bundle_without_users_does_not_release_the_users_deltas_held_behind_a_refused_bundle(tmp_path, lake):
    drop = tmp_path / "drop"
    district = csv_district("pine", {"path": str(drop)})
    deliver_refused_then_guardian_change(drop, district, lake)
    # A whole-roster bundle that carries orgs only (users absent), then another users delta.
    write_bundle(drop / "four", {"orgs": ORGS + "d1,,,Pine USD,district,,\r\n"}, mtime=4_000)
    renamed = USERS + "u1,active,2030-01-02T00:00:00Z,true,s1,student,kim,Kimberly,Lee\r\n"
    write_bundle(drop / "five", {"users": renamed}, modes={"users": "delta"}, mtime=5_000)

    # four says nothing about users, so it cannot stand in for whatever two changed in them.
    with pytest.raises(BundleError, match=r"endpoint users: three, five held, not applied, because two was refused"):
        fetch(district, "users", lake, "run-3")
    assert [b.mode for b in lake.batches("users", "pine")] == ["full"]
    assert import_log(lake, "users") == [("one", "imported")]

    # orgs: four is bulk for orgs and supersedes two as usual.
    assert fetch(district, "orgs", lake, "run-3").mode_reason == "bundles applied: four (bulk)"
    assert import_log(lake, "orgs") == [
        ("one", "imported"),
        ("two", "skipped"),
        ("three", "skipped"),
        ("four", "imported"),
        ("five", "absent"),
    ]
    # demographics: no bundle after two changes it, so moving past two loses nothing more than two itself.
    outcome = fetch(district, "demographics", lake, "run-3")
    assert outcome.mode == "none"
    assert "two skipped (refused: bundle two: manifest.csv rejected" in outcome.note
    assert "set aside after bulk bundle four, which has no demographics file" in outcome.note
    assert [entry for entry, _ in import_log(lake, "demographics")] == ["one", "two", "three", "four", "five"]
    assert fetch(district, "demographics", lake, "run-4").note == f"no new bundle in {drop}"

    # A bulk users file, and only that, supersedes two and the deltas held behind it.
    everyone = USERS + "u1,,,true,s1,student,kim,Kimberly,Lee\r\ng1,,,true,s1,guardian,pat,Pat,Lee\r\n"
    write_bundle(drop / "six", {"users": everyone}, mtime=6_000)
    assert fetch(district, "users", lake, "run-5").mode_reason == "bundles applied: six (bulk)"
    assert import_log(lake, "users") == [
        ("one", "imported"),
        ("two", "skipped"),
        ("three", "skipped"),
        ("four", "skipped"),
        ("five", "skipped"),
        ("six", "imported"),
    ]
    assert {row["sourced_id"] for row in read_lake(lake, "users", "pine")} >= {"u1", "g1"}


def test_a_users_delta_arriving_after_a_refused_bundle_was_set_aside_for_users_is_held(tmp_path, lake):
    drop = tmp_path / "drop"
    district = csv_district("pine", {"path": str(drop)})
    people = USERS + "u1,active,,true,s1,student,kim,Kim,Lee\r\n"
    write_bundle(drop / "one", {"orgs": ORGS + "d1,,,District,district,,\r\n", "users": people}, mtime=1_000)
    fetch(district, "users", lake, "run-1")
    write_bundle(drop / "two", {"users": USERS}, manifest="propertyName,value\r\nfile.users,sometimes\r\n", mtime=2_000)
    with pytest.raises(BundleError, match=r"bundle two: manifest\.csv rejected"):
        fetch(district, "users", lake, "run-2")
    write_bundle(drop / "three", {"orgs": ORGS + "d1,,,Pine USD,district,,\r\n"}, mtime=3_000)
    # Nothing after two changes users yet, so users moves past it: a quiet run, as for an endpoint no longer sent.
    assert fetch(district, "users", lake, "run-3").mode == "none"
    assert import_log(lake, "users") == [("one", "imported"), ("two", "skipped"), ("three", "absent")]

    # But a users change delivered later would go on without two's: it is held, as if two had just been refused.
    guardian = USERS + "g1,active,2030-01-01T00:00:00Z,true,s1,guardian,pat,Pat,Lee\r\n"
    write_bundle(drop / "four", {"users": guardian}, modes={"users": "delta"}, mtime=4_000)
    for run_id in ("run-4", "run-5"):
        with pytest.raises(BundleError, match=r"endpoint users: four held, not applied, because two was refused on "):
            fetch(district, "users", lake, run_id)
    assert [b.mode for b in lake.batches("users", "pine")] == ["full"]

    everyone = USERS + "u1,,,true,s1,student,kim,Kim,Lee\r\ng1,,,true,s1,guardian,pat,Pat,Lee\r\n"
    write_bundle(drop / "five", {"users": everyone}, mtime=5_000)
    assert fetch(district, "users", lake, "run-6").mode_reason == "bundles applied: five (bulk)"
    assert import_log(lake, "users")[-2:] == [("four", "skipped"), ("five", "imported")]


def test_a_refused_bundle_is_passed_per_endpoint_only_where_no_change_to_it_would_be_lost(tmp_path):
    def bundle(name: str, mtime: float, files: dict[str, str] | None) -> PlannedBundle:
        ref = BundleRef(name, tmp_path / name, mtime)
        if files is None:
            return PlannedBundle(ref, None, Refusal(ref.key, name, "unsafe zip", "2030-01-01", "run-1"))
        return PlannedBundle(ref, Manifest("1.2", files))

    roster = bundle("one", 1, {"orgs": "bulk", "users": "bulk", "roles": "bulk"})
    refused = bundle("two", 2, None)
    # A bundle of bulk files only, with no users.csv but a bulk roles.csv: it changes users' roles.
    whole = bundle("three", 3, {"orgs": "bulk", "roles": "bulk"})
    planned, seen = [roster, refused, whole], {roster.bundle.key}

    users = plan_imports(planned, "users", seen)
    assert (users.refused, users.held, users.skipped, users.set_aside) == ([refused], [whole], [], [])
    orgs = plan_imports(planned, "orgs", seen)
    assert [item for item, _ in orgs.skipped] == [refused] and orgs.apply == [whole] and not orgs.set_aside
    demographics = plan_imports(planned, "demographics", seen)
    assert [item for item, _ in demographics.set_aside] == [refused] and demographics.apply == [whole]
    assert not demographics.refused and not demographics.skipped

    # Seen in an earlier run, it is looked at again: quietly aside while nothing changes demographics, refused
    # again, holding the change back, once something does.
    seen |= {refused.bundle.key, whole.bundle.key}
    assert plan_imports(planned, "demographics", seen) == plan_imports([], "demographics", seen)
    change = bundle("four", 4, {"demographics": "delta"})
    later = plan_imports([*planned, change], "demographics", seen)
    assert (later.refused, later.held, later.apply) == ([refused], [change], [])
