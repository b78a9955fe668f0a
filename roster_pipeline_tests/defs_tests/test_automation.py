"""The project runs itself: registry sensor, schedules, freshness, asset checks and the quarantine round-trip."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import dagster as dg
import pytest
import yaml
from dagster._core.utils import make_new_run_id

from roster_pipeline.app.cli import main as cli_main
from roster_pipeline.config.settings import Settings
from roster_pipeline.defs.automation import (
    district_registry_sensor,
    nightly_delta_sync,
    weekly_full_reconciliation,
)
from roster_pipeline.defs.resources import RosterSettings
from roster_pipeline.defs.run_tags import PROVIDER_TAG
from roster_pipeline.sandbox.generator import DistrictSpec, generate_district
from roster_pipeline.store.freshness import district_status, stale_districts
from roster_pipeline.store.guard import quarantine_state
from roster_pipeline_tests.hand_records import (
    district_of,
    enrollment,
    org,
    school_class,
    session,
    user,
)
from roster_pipeline_tests.pipeline_fixtures import snapshot


def registry_entry(district_id: str, provider: str = "generic", **extra) -> dict:
    return {
        "id": district_id,
        "provider": provider,
        "source": {
            "kind": "rest",
            "base_url": f"https://{district_id}.example.org/ims/oneroster/v1p1",
            "auth": {
                "type": "oauth2",
                "token_url": f"https://{district_id}.example.org/token",
                "client_id_env": "X_ID",
                "client_secret_env": "X_SECRET",
            },
        },
        **extra,
    }


@pytest.fixture
def settings(tmp_path):
    def write(*entries: dict, timezone: str = "UTC") -> RosterSettings:
        (tmp_path / "districts.yaml").write_text(yaml.safe_dump({"timezone": timezone, "districts": list(entries)}))
        return RosterSettings(data_dir=str(tmp_path), districts_file=str(tmp_path / "districts.yaml"))

    return write


def test_registry_sensor_adds_enabled_districts_and_never_deletes_disabled_ones(settings):
    with dg.instance_for_test() as instance:
        resources = settings(registry_entry("oak"), registry_entry("elm"), registry_entry("ash", enabled=False))
        result = district_registry_sensor(dg.build_sensor_context(instance=instance, resources={"settings": resources}))
        assert isinstance(result, dg.SensorResult)
        (request,) = result.dynamic_partitions_requests
        assert sorted(request.partition_keys) == ["elm", "oak"]
        instance.add_dynamic_partitions("district", list(request.partition_keys))

        resources = settings(registry_entry("oak", enabled=False), registry_entry("elm"), registry_entry("pine"))
        result = district_registry_sensor(dg.build_sensor_context(instance=instance, resources={"settings": resources}))
        (request,) = result.dynamic_partitions_requests
        assert list(request.partition_keys) == ["pine"]
        instance.add_dynamic_partitions("district", ["pine"])
        assert sorted(instance.get_dynamic_partitions("district")) == ["elm", "oak", "pine"]

        skip = district_registry_sensor(dg.build_sensor_context(instance=instance, resources={"settings": resources}))
        assert isinstance(skip, dg.SkipReason)


def evaluate(schedule, resources: RosterSettings, instance: dg.DagsterInstance, at: datetime):  # type: ignore[no-untyped-def]
    context = dg.build_schedule_context(
        instance=instance, scheduled_execution_time=at, resources={"settings": resources}
    )
    return schedule(context)


def launch(instance: dg.DagsterInstance, requests) -> list[str]:  # type: ignore[no-untyped-def]
    """What the daemon does with a tick's requests: a run tagged with each run key. Returns the partitions."""
    assert not isinstance(requests, dg.SkipReason), requests
    for request in requests:
        instance.add_run(
            dg.DagsterRun(job_name="district_sync", run_id=make_new_run_id(), tags={"dagster/run_key": request.run_key})
        )
    return sorted(r.partition_key for r in requests)


def test_nightly_schedule_requests_each_due_district_once_with_partition_run_key_and_provider_tag(settings):
    resources = settings(
        registry_entry("oak", provider="powerschool"),
        registry_entry("big", provider="infinite-campus", schedule="0 2 */3 * *"),
        registry_entry("early", schedule="0 1 * * *"),
        registry_entry("off", enabled=False),
    )
    with dg.instance_for_test() as instance:
        # 2026-11-22 is day 22: */3 fires on days 1, 4, …, 22, 25, 28.
        requests = evaluate(nightly_delta_sync, resources, instance, datetime(2026, 11, 22, 2, 0, tzinfo=UTC))
        by_district = {r.partition_key: r for r in requests}
        assert by_district["oak"].tags[PROVIDER_TAG] == "powerschool"
        assert by_district["big"].tags[PROVIDER_TAG] == "infinite-campus"
        assert by_district["oak"].tags["roster/full_sync"] == "false"
        assert by_district["oak"].tags["roster/district"] == "oak"
        assert by_district["oak"].run_key == "delta:oak:2026-11-22T02:00:00+00:00"
        assert launch(instance, requests) == ["big", "early", "oak"]

        def tick(hour: int, minute: int = 0):  # type: ignore[no-untyped-def]
            return evaluate(nightly_delta_sync, resources, instance, datetime(2026, 11, 23, hour, minute, tzinfo=UTC))

        assert isinstance(tick(0, 30), dg.SkipReason)  # every due fire already has its run
        assert launch(instance, tick(1)) == ["early"]
        assert launch(instance, tick(2)) == ["oak"]  # big is every third day
        assert isinstance(tick(2, 15), dg.SkipReason)


def test_a_fire_missed_while_the_daemon_was_down_is_caught_up_once(settings):
    resources = settings(registry_entry("oak"))
    with dg.instance_for_test() as instance:
        # Nothing ran at 02:00 (daemon down from 01:00 to 09:00): the 09:00 tick catches up, the next does not.
        late = evaluate(nightly_delta_sync, resources, instance, datetime(2026, 11, 23, 9, 0, tzinfo=UTC))
        assert [r.run_key for r in late] == ["delta:oak:2026-11-23T02:00:00+00:00"]
        launch(instance, late)
        again = evaluate(nightly_delta_sync, resources, instance, datetime(2026, 11, 23, 9, 15, tzinfo=UTC))
        assert isinstance(again, dg.SkipReason)


def test_nightly_schedule_follows_the_registry_timezone(settings):
    resources = settings(registry_entry("oak"), timezone="America/Chicago")
    with dg.instance_for_test() as instance:
        # 02:00 in Chicago on 23 November (CST, UTC-6) is 08:00 UTC.
        (request,) = evaluate(nightly_delta_sync, resources, instance, datetime(2026, 11, 23, 8, 0, tzinfo=UTC))
        assert request.run_key == "delta:oak:2026-11-23T02:00:00-06:00"


def test_weekly_reconciliation_requests_a_full_sync_of_every_enabled_district(settings):
    resources = settings(registry_entry("oak"), registry_entry("elm"), registry_entry("off", enabled=False))
    with dg.instance_for_test() as instance:
        sunday = datetime(2026, 11, 22, 3, 0, tzinfo=UTC)
        requests = evaluate(weekly_full_reconciliation, resources, instance, sunday)
        assert {r.tags["roster/full_sync"] for r in requests} == {"true"}
        assert {r.run_key for r in requests} == {
            "full:oak:2026-11-22T03:00:00+00:00",
            "full:elm:2026-11-22T03:00:00+00:00",
        }
        assert launch(instance, requests) == ["elm", "oak"]
        monday = datetime(2026, 11, 23, 3, 0, tzinfo=UTC)
        assert isinstance(evaluate(weekly_full_reconciliation, resources, instance, monday), dg.SkipReason)


def test_a_district_due_for_both_gets_both_and_full_follows_the_registry_timezone(settings):
    resources = settings(registry_entry("oak", schedule="0 3 * * *"), timezone="America/Chicago")
    sunday_3am_chicago = datetime(2026, 11, 22, 9, 0, tzinfo=UTC)
    with dg.instance_for_test() as instance:
        (delta,) = evaluate(nightly_delta_sync, resources, instance, sunday_3am_chicago)
        (full,) = evaluate(weekly_full_reconciliation, resources, instance, sunday_3am_chicago)
    assert full.partition_key == delta.partition_key == "oak" and full.tags["roster/full_sync"] == "true"
    # Both carry the district tag, which dagster.yaml limits to one run at a time: they queue, not overlap.
    assert full.tags["roster/district"] == delta.tags["roster/district"] == "oak"


def test_a_weekday_schedule_is_not_stale_at_the_weekend():
    from roster_pipeline.config.registry import parse_registry
    from roster_pipeline.store.freshness import expected_publish_since

    registry = parse_registry({"districts": [registry_entry("oak", schedule="0 2 * * 1-5")]})
    saturday_noon = datetime(2026, 11, 28, 12, 0, tzinfo=UTC)
    assert expected_publish_since(registry.district("oak"), "UTC", saturday_noon) == datetime(
        2026, 11, 27, 2, 0, tzinfo=UTC
    )


def test_freshness_names_each_district_older_than_its_schedule_allows(world):
    world.add_rest_district(generate_district(DistrictSpec("oak", seed=1, students_per_school=10)))
    world.add_rest_district(generate_district(DistrictSpec("elm", seed=2, students_per_school=10)))
    assert world.sync("oak").success
    registry = world.settings.registry()
    database = world.paths
    assert [s["district"] for s in stale_districts(registry, database)] == ["elm"]  # never published
    later = datetime.now(UTC) + timedelta(hours=27)
    stale = stale_districts(registry, database, now=later)
    assert sorted(s["district"] for s in stale) == ["elm", "oak"]
    oak = next(s for s in stale if s["district"] == "oak")
    assert oak["age_hours"] >= 27 and oak["expected_since"] > oak["last_published"]
    assert [row.district_id for row in district_status(registry, Settings.from_env(world.data_dir)) if row.stale] == [
        "elm"
    ]


def test_freshness_check_runs_in_dagster_and_fails_naming_stale_districts(world, monkeypatch):
    from roster_pipeline.definitions import defs

    world.add_rest_district(generate_district(DistrictSpec("oak", seed=1, students_per_school=10)))
    world.add_rest_district(generate_district(DistrictSpec("elm", seed=2, students_per_school=10)))
    assert world.sync("oak").success
    monkeypatch.setenv("ROSTER_DATA_DIR", str(world.data_dir))
    result = defs.resolve_job_def("freshness_check").execute_in_process(instance=world.instance)
    (evaluation,) = result.get_asset_check_evaluations()
    assert not evaluation.passed
    assert evaluation.metadata["stale_districts"].value == "elm"


def bad_district():
    """Every integrity rule broken once: a dangling enrollment, a class in a missing school, an org that does not
    exist, an agent that does not exist, a student without a school, a guardian without students."""
    return district_of(
        "bad",
        orgs=[org("d", "district"), org("north", "school", "d")],
        academicSessions=[session("y1")],
        users=[
            user("s1", "student", ["north"], ["g1"]),
            user("g1", "parent", ["north"], ["s1"]),
            user("s2", "student", ["nowhere"], ["ghost"]),
            user("g2", "guardian", ["north"], []),
        ],
        classes=[school_class("c1", "north"), school_class("c-lost", "gone-school")],
        enrollments=[enrollment("e1", "s1", "c1", "north"), enrollment("e-dangling", "s1", "no-class", "north")],
    )


def test_checks_fail_on_a_purpose_built_bad_district_and_pass_on_a_clean_one(world):
    world.add_rest_district(bad_district())
    result = world.sync("bad")
    assert result.success, result.error
    failed = {name for name, passed in result.checks.items() if not passed}
    assert failed == {
        "enrollments_reference_users_and_classes",
        "classes_reference_schools_courses_and_terms",
        "user_orgs_reference_orgs",
        "agents_reference_users",
        "guardian_links_resolve",
        "students_in_an_enabled_school",
        "guardians_with_students",
    }
    assert result.checks["mass_deletion_guard"] and result.checks["unique_sourced_ids"]

    world.add_rest_district(generate_district(DistrictSpec("clean", seed=4, students_per_school=10)))
    clean = world.sync("clean")
    assert clean.success
    assert {n for n, passed in clean.checks.items() if not passed} <= {"guardians_with_students"}


def test_quarantine_round_trip_keeps_published_tables_until_released(world, monkeypatch):
    district = generate_district(DistrictSpec("oak", seed=6, students_per_school=20))
    world.add_rest_district(district)
    assert world.sync("oak").success
    before = snapshot(world, "oak")
    students = [u["sourcedId"] for u in district.records("users") if u["role"] == "student"]
    for sourced_id in students[: len(students) // 3]:
        district.mark_tobedeleted("users", sourced_id)

    blocked = world.sync("oak")
    assert not blocked.success
    assert "quarantined" in blocked.error and "roster-pipeline release oak" in blocked.error
    assert blocked.checks["mass_deletion_guard"] is False
    assert snapshot(world, "oak") == before
    state = quarantine_state(world.settings.lake(), "oak")
    assert state["students_removed"] == len(students) // 3 and state["students_before"] == len(students)
    (row,) = district_status(world.settings.registry(), Settings.from_env(world.data_dir))
    assert row.quarantine and "would remove" in row.quarantine

    assert not world.sync("oak").success  # still quarantined without a release

    monkeypatch.setenv("ROSTER_DATA_DIR", str(world.data_dir))
    assert cli_main(["release", "oak", "--yes"]) == 0
    released = world.sync("oak")
    assert released.success, released.error
    with world.roster() as con:
        active = con.execute("SELECT count(*) FROM students WHERE district_id = 'oak'").fetchone()
        assert active == (len(students) - len(students) // 3,)
        assert con.execute("SELECT released FROM ops.publishes ORDER BY published_at DESC LIMIT 1").fetchone() == (
            True,
        )
    assert quarantine_state(world.settings.lake(), "oak") is None
