"""Pauses, blackout windows and per-kind change thresholds, as a district's administrator configures them."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import dagster as dg
import pytest
import yaml

from roster_pipeline.config.registry import RegistryError, parse_registry
from roster_pipeline.defs.automation import nightly_delta_sync
from roster_pipeline.defs.resources import RosterSettings
from roster_pipeline.sandbox.generator import DistrictSpec, generate_district
from roster_pipeline.store.freshness import expected_publish_since, is_stale
from roster_pipeline.store.guard import quarantine_state
from roster_pipeline_tests.defs_tests.test_automation import evaluate, launch, registry_entry
from roster_pipeline_tests.pipeline_fixtures import PipelineWorld

SUMMER = {"from": "2027-06-20", "to": "2027-08-15", "reason": "summer break"}


def _settings(tmp_path: Any, document: dict[str, Any]) -> RosterSettings:
    (tmp_path / "districts.yaml").write_text(yaml.safe_dump(document))
    return RosterSettings(data_dir=str(tmp_path), districts_file=str(tmp_path / "districts.yaml"))


def test_no_scheduled_sync_during_a_summer_pause_and_one_catch_up_after_it(tmp_path: Any) -> None:
    resources = _settings(
        tmp_path,
        {"pauses": [SUMMER], "districts": [registry_entry("oak"), registry_entry("pine", pauses=[])]},
    )
    with dg.instance_for_test() as instance:
        during = evaluate(nightly_delta_sync, resources, instance, datetime(2027, 7, 1, 2, 0, tzinfo=UTC))
        assert launch(instance, during) == ["pine"]  # pine's own (empty) list overrides the registry default

        quiet = evaluate(nightly_delta_sync, resources, instance, datetime(2027, 7, 1, 2, 15, tzinfo=UTC))
        assert isinstance(quiet, dg.SkipReason)
        assert "oak: summer break (2027-06-20 to 2027-08-15)" in (quiet.skip_message or "")

        after = evaluate(nightly_delta_sync, resources, instance, datetime(2027, 8, 16, 2, 0, tzinfo=UTC))
        assert launch(instance, after) == ["oak", "pine"]


def test_a_fire_inside_a_blackout_window_runs_when_the_window_closes(tmp_path: Any) -> None:
    blackout = {"days": ["mon", "tue", "wed", "thu", "fri"], "from": "07:00", "to": "09:00"}
    resources = _settings(
        tmp_path,
        {
            "timezone": "America/Chicago",
            "districts": [registry_entry("oak", schedule="30 7 * * *", blackouts=[blackout])],
        },
    )
    with dg.instance_for_test() as instance:
        # Tuesday 2026-12-01, 07:30 in Chicago is 13:30 UTC: inside the window, so held.
        held = evaluate(nightly_delta_sync, resources, instance, datetime(2026, 12, 1, 13, 30, tzinfo=UTC))
        assert isinstance(held, dg.SkipReason)
        assert "blackout window mon,tue,wed,thu,fri 07:00-09:00" in (held.skip_message or "")
        # 09:00 in Chicago: the window is closed, the 07:30 fire runs once.
        opened = evaluate(nightly_delta_sync, resources, instance, datetime(2026, 12, 1, 15, 0, tzinfo=UTC))
        assert [r.run_key for r in opened] == ["delta:oak:2026-12-01T07:30:00-06:00"]
        # Saturday is outside the listed days.
        weekend = evaluate(nightly_delta_sync, resources, instance, datetime(2026, 12, 5, 13, 30, tzinfo=UTC))
        assert not isinstance(weekend, dg.SkipReason)


def test_an_overnight_blackout_covers_the_morning_of_the_next_day() -> None:
    registry = parse_registry(
        {"districts": [registry_entry("oak", blackouts=[{"days": ["fri"], "from": "22:00", "to": "06:00"}])]}
    )
    oak = registry.district("oak")
    assert oak.schedule_paused(datetime(2026, 12, 4, 23, 0, tzinfo=UTC))  # Friday night
    assert oak.schedule_paused(datetime(2026, 12, 5, 5, 0, tzinfo=UTC))  # Saturday early morning
    assert oak.schedule_paused(datetime(2026, 12, 5, 23, 0, tzinfo=UTC)) is None  # Saturday night


def test_a_sync_started_by_hand_runs_during_a_pause(world: PipelineWorld) -> None:
    district = generate_district(DistrictSpec("oak", seed=3, students_per_school=10))
    world.add_rest_district(district, registry_entry={"pauses": [{"from": "2000-01-01", "to": "2999-12-31"}]})

    assert world.sync("oak").success


@pytest.mark.parametrize(
    ("extra", "problem"),
    [
        ({"pauses": [{"from": "2027-08-15", "to": "2027-06-20"}]}, "pauses[1]: '2027-08-15' to '2027-06-20'"),
        ({"pauses": [{"from": "2027-06-20"}]}, "pauses[1]: must be {from"),
        ({"blackouts": [{"days": ["someday"], "from": "07:00", "to": "09:00"}]}, "blackouts[1].days"),
        ({"blackouts": [{"from": "7am", "to": "09:00"}]}, "blackouts[1]: '7am' to '09:00'"),
        ({"guard": {"max_users_changed": 2}}, "guard.max_users_changed: '2' must be a number between 0 and 1"),
        ({"guard": {"max_student_removed": 0.2}}, "guard.max_student_removed: unknown limit"),
    ],
)
def test_a_wrong_pause_blackout_or_limit_is_refused_naming_the_field(extra: dict[str, Any], problem: str) -> None:
    with pytest.raises(RegistryError) as refused:
        parse_registry({"districts": [registry_entry("oak", **extra)]})
    assert problem in str(refused.value)


def _rollover(district: Any) -> int:
    """End of the school year in the SIS: every enrollment gets an end date."""
    enrollments = district.records("enrollments")
    for record in enrollments:
        district.upsert("enrollments", {**record, "endDate": "2027-06-19"})
    return len(enrollments)


def test_a_sync_that_changes_most_enrollments_is_held_with_counts_until_the_limit_allows_it(
    world: PipelineWorld,
) -> None:
    district = generate_district(DistrictSpec("oak", seed=5, students_per_school=10))
    world.add_rest_district(district)
    assert world.sync("oak").success
    changed = _rollover(district)

    held = world.sync("oak")

    assert not held.success and held.checks["mass_deletion_guard"] is False
    state = quarantine_state(world.settings.lake(), "oak")
    assert state is not None
    assert (state["enrollments_changed"], state["enrollments_before"]) == (changed, changed)
    assert state["users_changed"] == 0 and state["students_removed"] == 0
    assert any(f"would change {changed} of {changed} active enrollments (100% > 75%)" in r for r in state["reasons"])

    world.entries[0]["guard"] = {"max_enrollments_changed": 1.0}  # the district expects its rollover
    (world.data_dir / "districts.yaml").write_text(yaml.safe_dump({"districts": world.entries}))
    allowed = world.sync("oak")

    assert allowed.success, allowed.error
    with world.roster() as con:
        ended = con.execute("SELECT count(*) FROM enrollments WHERE district_id = 'oak' AND end_date IS NOT NULL")
        assert ended.fetchone() == (changed,)


def test_students_removed_and_guardian_links_removed_have_their_own_limits(world: PipelineWorld) -> None:
    district = generate_district(DistrictSpec("oak", seed=7, students_per_school=20))
    world.add_rest_district(district, registry_entry={"guard": {"max_students_removed": 0.5}})
    assert world.sync("oak").success
    students = [u["sourcedId"] for u in district.records("users") if u["role"] == "student"]
    for sourced_id in students[: len(students) // 4]:  # 25% of students leave, and with them their links
        district.mark_tobedeleted("users", sourced_id)

    result = world.sync("oak")

    assert not result.success  # students pass their 50% limit; guardian links still have the default 10%
    state = quarantine_state(world.settings.lake(), "oak")
    assert state is not None
    assert not any("active students" in reason for reason in state["reasons"])
    assert any("active guardian links" in reason for reason in state["reasons"])


def test_a_paused_district_is_judged_fresh_by_its_last_fire_before_the_pause() -> None:
    registry = parse_registry({"districts": [registry_entry("oak", pauses=[SUMMER])]})
    oak = registry.district("oak")

    expected = expected_publish_since(oak, registry.timezone, datetime(2027, 7, 10, 12, 0, tzinfo=UTC))

    assert expected == datetime(2027, 6, 19, 2, 0, tzinfo=UTC)  # 02:00 nightly; the summer break starts the 20th
    assert not is_stale(datetime(2027, 6, 19, 2, 30, tzinfo=UTC), expected)
    after = expected_publish_since(oak, registry.timezone, datetime(2027, 8, 17, 12, 0, tzinfo=UTC))
    assert after == datetime(2027, 8, 17, 2, 0, tzinfo=UTC)
