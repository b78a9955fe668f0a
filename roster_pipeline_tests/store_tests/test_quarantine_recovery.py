"""After a quarantine: the next run recovers by itself, `release` shows and asks, `discard` starts from last good."""

from __future__ import annotations

import io
from collections.abc import Callable

import dagster as dg
import pytest

from roster_pipeline.app.cli import main
from roster_pipeline.app.sync_results import SyncResult
from roster_pipeline.sandbox.generator import SyntheticDistrict
from roster_pipeline_tests.pipeline_fixtures import PipelineWorld

DISTRICT = "bad-night-usd"


def _serve(world: PipelineWorld, small_district: Callable[..., SyntheticDistrict]) -> SyntheticDistrict:
    district = small_district(DISTRICT)
    world.add_rest_district(district)
    world.monkeypatch.setenv("ROSTER_DATA_DIR", str(world.data_dir))
    world.monkeypatch.setenv("ROSTER_DISTRICTS_FILE", str(world.data_dir / "districts.yaml"))
    assert world.sync(DISTRICT).success
    return district


def _bad_night(world: PipelineWorld, district: SyntheticDistrict) -> tuple[SyncResult, list[dict]]:
    """For one full sync the provider knows only 5 users (a half-restored backend: its list and its single-record
    lookups agree, so the confirmations find the rest gone); then its data is back, unchanged.

    (An outright empty `{"users": []}` no longer gets this far: with no record served, the single-record endpoint
    cannot be checked, so nothing is tombstoned at all.)"""
    users = district.records("users")[5:]
    for user in users:
        district.remove("users", user["sourcedId"])
    result = world.sync(DISTRICT, full=True)
    for user in users:  # back as they were, dateLastModified included: a delta sees no change
        district.upsert("users", user)
        district.get("users", user["sourcedId"]).update(dateLastModified=user["dateLastModified"])
    return result, users


def _students(world: PipelineWorld) -> int:
    with world.roster() as con:
        row = con.execute("SELECT count(*) FROM students WHERE district_id = ?", [DISTRICT]).fetchone()
    assert row is not None
    return int(row[0])


def _guard_metadata(world: PipelineWorld, run_id: str) -> dict[str, object]:
    """The mass-deletion guard's counts as the Dagster UI shows them for a run."""
    for entry in world.instance.all_logs(run_id, of_type=dg.DagsterEventType.ASSET_CHECK_EVALUATION):
        assert entry.dagster_event is not None
        evaluation = entry.dagster_event.asset_check_evaluation_data
        if evaluation.check_name == "mass_deletion_guard":
            return {key: value.value for key, value in evaluation.metadata.items()}
    raise AssertionError("no mass_deletion_guard evaluation in the run")


def test_the_run_after_a_quarantine_is_a_full_sync_and_recovers_when_the_provider_does(
    world: PipelineWorld, small_district: Callable[..., SyntheticDistrict]
) -> None:
    district = _serve(world, small_district)
    students = _students(world)
    quarantined, _ = _bad_night(world, district)
    assert not quarantined.success and "quarantined" in (quarantined.error or "")
    assert _students(world) == students  # the published roster was kept

    nightly = world.sync(DISTRICT)  # a scheduled delta: no full sync asked for

    assert nightly.success, nightly.error
    assert nightly.endpoints["users"]["mode"] == "full"
    assert "quarantined since" in str(nightly.endpoints["users"]["mode_reason"])
    assert _students(world) == students
    assert world.sync(DISTRICT).endpoints["users"]["mode"] == "delta"  # and back to deltas once it published


def test_release_shows_what_would_be_removed_and_asks_before_it_lets_the_wipe_through(
    world: PipelineWorld,
    small_district: Callable[..., SyntheticDistrict],
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    district = _serve(world, small_district)
    students = _students(world)
    quarantined, _ = _bad_night(world, district)
    guard = _guard_metadata(world, quarantined.run_id)
    monkeypatch.setattr("sys.stdin", io.StringIO(""))  # no terminal to ask at

    refused = main(["release", DISTRICT])

    shown = capsys.readouterr()
    assert refused == 2 and "--yes" in shown.err
    assert f"would remove {guard['students_removed']} of {students} active students" in shown.out
    assert f"{guard['links_removed']} of {guard['links_before']} guardian links" in shown.out
    assert guard["students_before"] == students and guard["students_removed"] >= students - 5
    assert "refused batch users/" in shown.out
    assert world.sync(DISTRICT).success  # not released: the next run recovered instead (provider back)

    for user in district.records("users")[5:]:  # now the district really is reduced to five users
        district.remove("users", user["sourcedId"])
    remaining = sum(1 for user in district.records("users") if user["role"] == "student")
    assert not world.sync(DISTRICT, full=True).success
    assert main(["release", DISTRICT, "--yes"]) == 0
    released = world.sync(DISTRICT)

    assert released.success, released.error
    assert _students(world) == remaining
    assert main(["release", DISTRICT, "--yes"]) == 1  # nothing quarantined any more


def test_discard_drops_the_refused_batches_and_the_next_sync_rebuilds_from_the_source(
    world: PipelineWorld, small_district: Callable[..., SyntheticDistrict], capsys: pytest.CaptureFixture[str]
) -> None:
    district = _serve(world, small_district)
    students = _students(world)
    quarantined, _ = _bad_night(world, district)
    lake_users = world.data_dir / "lake" / "users" / f"district={DISTRICT}"
    batches_before = {path.name for path in lake_users.iterdir()}

    assert main(["discard", DISTRICT, "--yes"]) == 0

    said = capsys.readouterr().out
    assert f"dropped {len(quarantined.endpoints)} refused batch(es)" in said  # one per endpoint of the full sync
    assert "next sync is a full sync" in said
    assert len(batches_before - {path.name for path in lake_users.iterdir()}) == 1
    rebuilt = world.sync(DISTRICT)
    assert rebuilt.success, rebuilt.error
    assert rebuilt.endpoints["users"]["mode"] == "full"
    assert "discarded" in str(rebuilt.endpoints["users"]["mode_reason"])
    assert _students(world) == students
    assert main(["status"]) == 0
