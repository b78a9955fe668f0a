"""Guardian-student links, contacts, student schools, school mappings and link history, on a hand-made district
whose every expected row is written out below."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

import dagster as dg
import pytest
import yaml

from roster_pipeline.sandbox.generator import SyntheticDistrict
from roster_pipeline.sandbox.server import SandboxServer
from roster_pipeline_tests.hand_records import district_of, enrollment, org, ref, school_class, session, user
from roster_pipeline_tests.pipeline_fixtures import PipelineWorld

QUERIES = Path(__file__).resolve().parents[2] / "queries"


def hand_made_district() -> SyntheticDistrict:
    """Two schools (north enabled, south disabled in the registry) and families shaped to test each rule:

    s1-g1 declared on both sides · s2-g2 only by the guardian · s3-g3 only by the student (south) ·
    g4 guardian of s4 (north) and s5 (south) · s6 has three guardians g5, g6, g7 · s7 points to a guardian
    that does not exist · s8's guardian g8 is tombstoned · s9 has no guardian · s4 is also enrolled in a south
    class, so it belongs to both schools.
    """
    users = [
        user("s1", "student", ["north"], ["g1"]),
        user("g1", "parent", ["north"], ["s1"]),
        user("s2", "student", ["north"], []),
        user("g2", "guardian", ["north"], ["s2"]),
        user("s3", "student", ["south"], ["g3"]),
        user("g3", "relative", ["south"], []),
        user("s4", "student", ["north"], ["g4"]),
        user("s5", "student", ["south"], ["g4"]),
        user("g4", "parent", ["north", "south"], ["s4", "s5"]),
        user("s6", "student", ["north"], ["g5", "g6", "g7"]),
        user("g5", "parent", ["north"], []),
        user("g6", "parent", ["north"], []),
        user("g7", "relative", ["north"], []),
        user("s7", "student", ["north"], ["ghost"]),
        user("s8", "student", ["north"], ["g8"]),
        user("g8", "parent", ["north"], ["s8"], status="tobedeleted"),
        user("s9", "student", ["north"], []),
        user("t1", "teacher", ["south"], []),
    ]
    return district_of(
        "hand",
        orgs=[org("d", "district"), org("north", "school", "d"), org("south", "school", "d")],
        academicSessions=[session("y1")],
        users=users,
        classes=[{**school_class("c-south", "south"), "title": "Art"}],
        enrollments=[enrollment("e1", "s4", "c-south", "south")],
    )


@pytest.fixture
def synced(tmp_path, monkeypatch):
    with SandboxServer() as server, dg.instance_for_test() as instance:
        data_dir = tmp_path / "data"
        data_dir.mkdir()
        world = PipelineWorld(server, data_dir, instance, monkeypatch, [])
        district = hand_made_district()
        world.add_rest_district(district, "oauth2")
        world.entries[0]["schools"] = {"sites": [{"sourced_id": "south", "site_id": "SOUTH-MS", "enabled": False}]}
        # One custody change is 1 of 8 links: above the default 10% guard, but real in a district this small.
        world.entries[0]["guard"] = {"max_removed_share": 0.5}
        (data_dir / "districts.yaml").write_text(yaml.safe_dump({"districts": world.entries}))
        result = world.sync("hand")
        assert result.success, result.error
        yield world, district


def rows(world: PipelineWorld, sql: str, params: dict | None = None) -> list[tuple]:
    with world.roster() as con:
        return con.execute(sql, params or {}).fetchall()


def test_links_count_either_side_and_name_which_side_declared_them(synced):
    world, _ = synced
    links = rows(
        world,
        "SELECT student_sourced_id, guardian_sourced_id, relationship, source "
        "FROM guardian_student_links ORDER BY 1, 2",
    )
    assert links == [
        ("s1", "g1", "parent", "both"),
        ("s2", "g2", "guardian", "guardian_agents"),
        ("s3", "g3", "relative", "student_agents"),
        ("s4", "g4", "parent", "both"),
        ("s5", "g4", "parent", "both"),
        ("s6", "g5", "parent", "student_agents"),
        ("s6", "g6", "parent", "student_agents"),
        ("s6", "g7", "relative", "student_agents"),
    ]


def test_dangling_and_tombstoned_links_are_excluded_with_a_reason(synced):
    world, _ = synced
    excluded = rows(
        world,
        "SELECT student_sourced_id, guardian_sourced_id, excluded_reason FROM guardian_link_exclusions ORDER BY 1",
    )
    assert excluded == [("s7", "ghost", "guardian missing"), ("s8", "g8", "guardian tobedeleted")]


def test_student_contacts_leave_out_students_whose_only_school_is_disabled(synced):
    world, _ = synced
    contacts = rows(world, "SELECT student_sourced_id, guardian_sourced_id, phone FROM student_contacts ORDER BY 1, 2")
    # s3 and s5 are only in the disabled south school; s4 is in north too, so stays.
    assert contacts == [
        ("s1", "g1", "555-g1"),
        ("s2", "g2", "555-g2"),
        ("s4", "g4", "555-g4"),
        ("s6", "g5", "555-g5"),
        ("s6", "g6", "555-g6"),
        ("s6", "g7", "555-g7"),
    ]
    assert rows(world, "SELECT count(*) FROM guardian_student_links WHERE student_sourced_id IN ('s3', 's5')") == [(2,)]


def test_student_schools_come_from_orgs_and_enrollments_with_primary_when_unambiguous(synced):
    world, _ = synced
    schools = rows(
        world,
        "SELECT student_sourced_id, school_sourced_id, via, is_primary FROM student_schools "
        "WHERE student_sourced_id IN ('s1', 's4', 's5') ORDER BY 1, 2",
    )
    assert schools == [
        ("s1", "north", "user_orgs", True),
        ("s4", "north", "user_orgs", False),
        ("s4", "south", "enrollments", False),
        ("s5", "south", "user_orgs", True),
    ]


def test_school_mappings_carry_registry_site_ids_flags_and_counts(synced):
    world, _ = synced
    mappings = rows(
        world,
        "SELECT school_sourced_id, identifier, district_org_sourced_id, site_id, enabled, active_students, "
        "active_guardians, active_classes FROM school_mappings ORDER BY 1",
    )
    assert mappings == [
        # north: s1 s2 s4 s6 s7 s8 s9; guardians g1 g2 g4 g5 g6 g7 (g8 is tombstoned)
        ("north", "NORTH", "d", "north", True, 7, 6, 0),
        # south: s3 s4 (by enrollment) s5; guardians g3 g4
        ("south", "SOUTH", "d", "SOUTH-MS", False, 3, 2, 1),
    ]


def test_analyst_queries_answer_their_questions(synced):
    world, _ = synced
    card = rows(world, (QUERIES / "contact_card.sql").read_text(), {"district": "hand", "student": "s6"})
    assert [(r[2], r[3]) for r in card] == [("parent", "G5"), ("parent", "G6"), ("relative", "G7")]
    children = rows(world, (QUERIES / "students_of_guardian.sql").read_text(), {"district": "hand", "guardian": "g4"})
    assert sorted((r[0], r[4]) for r in children) == [("s4", "north"), ("s4", "south"), ("s5", "south")]
    unlinked = rows(world, (QUERIES / "schools_with_unlinked_students.sql").read_text(), {"district": "hand"})
    assert [(r[0], r[4]) for r in unlinked] == [("north", 3)]  # s7 (dangling), s8 (tombstoned), s9 (none)


def test_link_history_follows_a_custody_change_across_three_syncs(synced):
    world, district = synced
    pickup = (QUERIES / "pickup_on_date.sql").read_text()

    def who(at: datetime) -> list[str]:
        return [r[0] for r in rows(world, pickup, {"district": "hand", "student": "s1", "at": at})]

    after_first = datetime.now(UTC)
    district.upsert("users", {**district.get("users", "s1"), "agents": []})
    district.upsert("users", {**district.get("users", "g1"), "agents": []})
    assert world.sync("hand").success
    after_second = datetime.now(UTC)
    district.upsert("users", {**district.get("users", "s1"), "agents": [ref("user", "g1")]})
    assert world.sync("hand").success
    after_third = datetime.now(UTC)

    history = rows(
        world,
        "SELECT source, valid_to IS NULL FROM guardian_link_history "
        "WHERE student_sourced_id = 's1' AND guardian_sourced_id = 'g1' ORDER BY valid_from",
    )
    assert history == [("both", False), ("student_agents", True)]
    assert who(after_first) == ["g1"]
    assert who(after_second) == []
    assert who(after_third) == ["g1"]
