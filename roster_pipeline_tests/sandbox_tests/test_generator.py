"""The synthetic district generator: deterministic, OneRoster-shaped, with realistic guardian links."""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable
from datetime import datetime

import pytest

from roster_pipeline.sandbox.generator import (
    COLLECTIONS,
    GUARDIAN_ROLES,
    DistrictSpec,
    SyntheticDistrict,
    generate_district,
)

District = Callable[..., SyntheticDistrict]


def users_by_role(district: SyntheticDistrict) -> dict[str, list[dict]]:
    by_role: dict[str, list[dict]] = {}
    for user in district.records("users"):
        by_role.setdefault(user["role"], []).append(user)
    return by_role


def test_same_spec_gives_identical_records(small_district: District) -> None:
    first, second = small_district("d", seed=5), small_district("d", seed=5)
    for collection in COLLECTIONS:
        assert first.records(collection) == second.records(collection)


def test_different_seed_or_district_id_gives_different_ids(small_district: District) -> None:
    base = {u["sourcedId"] for u in small_district("d", seed=5).records("users")}
    assert base.isdisjoint(u["sourcedId"] for u in small_district("d", seed=6).records("users"))
    assert base.isdisjoint(u["sourcedId"] for u in small_district("e", seed=5).records("users"))


def test_counts_follow_the_spec(small_district: District) -> None:
    district = small_district(schools=3, students_per_school=10, teachers_per_school=2, classes_per_school=4)
    counts = district.counts()
    roles = Counter(u["role"] for u in district.records("users"))
    assert counts["orgs"] == 4  # the district and three schools
    assert roles["student"] == 30 and roles["teacher"] == 6 and roles["administrator"] == 1
    assert counts["classes"] == 12
    assert counts["demographics"] == 30
    assert counts["users"] == sum(roles.values())
    # every student takes min(classes_per_student, classes_per_school) classes, every class has a teacher
    student_enrollments = [e for e in district.records("enrollments") if e["role"] == "student"]
    assert len(student_enrollments) == 30 * 4


def test_orgs_are_a_district_with_school_children(small_district: District) -> None:
    orgs = small_district(schools=2).records("orgs")
    (district,) = [o for o in orgs if o["type"] == "district"]
    schools = [o for o in orgs if o["type"] == "school"]
    assert district["parent"] is None
    assert {c["sourcedId"] for c in district["children"]} == {s["sourcedId"] for s in schools}
    assert all(s["parent"]["sourcedId"] == district["sourcedId"] for s in schools)


def test_academic_sessions_are_a_school_year_with_terms(small_district: District) -> None:
    sessions = small_district().records("academicSessions")
    (year,) = [s for s in sessions if s["type"] == "schoolYear"]
    terms = [s for s in sessions if s["type"] == "term"]
    assert year["schoolYear"] == "2025" and len(terms) == 2
    assert {c["sourcedId"] for c in year["children"]} == {t["sourcedId"] for t in terms}
    assert all(t["parent"]["sourcedId"] == year["sourcedId"] for t in terms)


def test_students_carry_oneroster_1_1_fields(small_district: District) -> None:
    district = small_district()
    school_ids = {o["sourcedId"] for o in district.records("orgs") if o["type"] == "school"}
    for student in users_by_role(district)["student"]:
        assert student["enabledUser"] == "true"  # a string in 1.1, not a boolean
        assert len(student["grades"]) == 1
        assert student["orgs"][0]["sourcedId"] in school_ids
        assert student["userIds"][0]["type"] == "LDAP"
        assert "@" in student["email"]
        assert "password" not in student
        assert datetime.fromisoformat(student["dateLastModified"]) <= datetime.fromisoformat("2024-09-01T00:00:00Z")


def test_every_student_has_a_guardian_and_some_have_three(small_district: District) -> None:
    district = small_district(schools=3, students_per_school=60)
    by_role = users_by_role(district)
    guardians = [u for role in GUARDIAN_ROLES for u in by_role.get(role, [])]
    linked: dict[str, set[str]] = {}
    for guardian in guardians:
        for agent in guardian["agents"]:
            linked.setdefault(agent["sourcedId"], set()).add(guardian["sourcedId"])
    for student in by_role["student"]:
        for agent in student["agents"]:
            linked.setdefault(student["sourcedId"], set()).add(agent["sourcedId"])
    assert {s["sourcedId"] for s in by_role["student"]} == set(linked)
    assert max(len(g) for g in linked.values()) == 3
    assert {u["role"] for u in guardians} == set(GUARDIAN_ROLES)


def test_some_guardians_have_children_in_two_schools(small_district: District) -> None:
    district = small_district(schools=2)
    students = {u["sourcedId"]: u for u in users_by_role(district)["student"]}
    schools_per_guardian = [
        {students[a["sourcedId"]]["orgs"][0]["sourcedId"] for a in guardian["agents"]}
        for role in GUARDIAN_ROLES
        for guardian in users_by_role(district).get(role, [])
    ]
    assert any(len(schools) == 2 for schools in schools_per_guardian)


def test_most_agent_links_are_declared_on_both_sides_but_a_few_on_one(small_district: District) -> None:
    users = small_district(schools=3, students_per_school=60).records("users")
    from_guardians = {(u["sourcedId"], a["sourcedId"]) for u in users if u["role"] != "student" for a in u["agents"]}
    from_students = {(a["sourcedId"], u["sourcedId"]) for u in users if u["role"] == "student" for a in u["agents"]}
    both = from_guardians & from_students
    assert from_guardians - from_students, "expected a link only the guardian declares"
    assert from_students - from_guardians, "expected a link only the student declares"
    assert len(both) > 0.9 * len(from_guardians | from_students)


def test_enrollments_and_classes_reference_existing_records(small_district: District) -> None:
    district = small_district()
    ids = {c: {r["sourcedId"] for r in district.records(c)} for c in COLLECTIONS}
    for klass in district.records("classes"):
        assert klass["course"]["sourcedId"] in ids["courses"]
        assert klass["school"]["sourcedId"] in ids["orgs"]
        assert {t["sourcedId"] for t in klass["terms"]} <= ids["academicSessions"]
        assert klass["periods"]
    for enrollment in district.records("enrollments"):
        assert enrollment["user"]["sourcedId"] in ids["users"]
        assert enrollment["class"]["sourcedId"] in ids["classes"]
        assert enrollment["primary"] in ("true", "false")
    teachers_primary = [e for e in district.records("enrollments") if e["role"] == "teacher" and e["primary"] == "true"]
    assert len(teachers_primary) == len(ids["classes"])
    assert ids["demographics"] == {u["sourcedId"] for u in users_by_role(district)["student"]}


def test_records_are_ordered_by_sourced_id(small_district: District) -> None:
    ids = [u["sourcedId"] for u in small_district().records("users")]
    assert ids == sorted(ids)


def test_mutations_stamp_strictly_increasing_modification_times(small_district: District) -> None:
    district = small_district()
    student = users_by_role(district)["student"][0]
    updated = district.upsert("users", {**student, "givenName": "Renamed"})
    enrollment = district.records("enrollments")[0]
    tombstone = district.mark_tobedeleted("enrollments", enrollment["sourcedId"])
    stamps = [student["dateLastModified"], updated["dateLastModified"], tombstone["dateLastModified"]]
    instants = [datetime.fromisoformat(s) for s in stamps]
    assert instants == sorted(instants) and len(set(instants)) == 3
    assert district.get("users", student["sourcedId"])["givenName"] == "Renamed"
    assert tombstone["status"] == "tobedeleted"
    assert district.counts()["enrollments"] == len(district.records("enrollments")) - 1


def test_remove_makes_a_record_vanish(small_district: District) -> None:
    district = small_district()
    enrollment = district.records("enrollments")[3]
    before = len(district.records("enrollments"))
    district.remove("enrollments", enrollment["sourcedId"])
    assert len(district.records("enrollments")) == before - 1
    with pytest.raises(KeyError):
        district.get("enrollments", enrollment["sourcedId"])


def test_upsert_adds_a_new_record_in_sourced_id_order(small_district: District) -> None:
    district = small_district()
    district.upsert("orgs", {"sourcedId": "0000-new-school", "name": "New School", "type": "school"})
    assert district.records("orgs")[0]["sourcedId"] == "0000-new-school"
    assert district.get("orgs", "0000-new-school")["status"] == "active"


def test_for_users_sizes_a_district_by_total_users() -> None:
    spec = DistrictSpec.for_users("sized", 5_000, seed=2)
    users = generate_district(spec).counts()["users"]
    assert abs(users - 5_000) / 5_000 < 0.05


@pytest.mark.slow
def test_a_million_user_district_builds() -> None:
    counts = generate_district(DistrictSpec.for_users("huge", 1_000_000, seed=1)).counts()
    assert abs(counts["users"] - 1_000_000) / 1_000_000 < 0.02
