"""Flattening: nested references become *_sourced_id columns, lists stay lists, unknown fields are kept."""

from __future__ import annotations

from datetime import UTC, datetime

import orjson
import pytest

from roster_pipeline.oneroster import ENDPOINT_NAMES, normalize_record
from roster_pipeline.oneroster.flatten import ENDPOINT_COLUMNS, flatten_records, lake_schema
from roster_pipeline.sandbox.generator import DistrictSpec, generate_district


def ref(kind: str, sourced_id: str) -> dict:
    return {"href": f"https://sis.example.org/{kind}s/{sourced_id}", "sourcedId": sourced_id, "type": kind}


def test_every_synced_endpoint_has_column_specs_and_no_other_does():
    assert sorted(ENDPOINT_COLUMNS) == sorted(ENDPOINT_NAMES)


def test_user_orgs_agents_user_ids_and_grades_flatten_to_columns():
    user = normalize_record(
        "users",
        {
            "sourcedId": "u1",
            "status": "active",
            "dateLastModified": "2024-05-01T12:00:00.123Z",
            "username": "ada",
            "userIds": [{"type": "LDAP", "identifier": "12"}, {"type": "LTI", "identifier": "15"}],
            "enabledUser": "true",
            "givenName": "Ada",
            "familyName": "Lovelace",
            "role": "student",
            "orgs": [ref("org", "sch-1"), ref("org", "sch-2")],
            "agents": [ref("user", "g1")],
            "grades": ["09"],
            "favouriteColour": "teal",
            "metadata": {"ext:lunch": "free"},
        },
    )
    row = flatten_records("users", "lincoln", [user]).row(0, named=True)
    assert row["district_id"] == "lincoln"
    assert row["org_sourced_ids"] == ["sch-1", "sch-2"]
    assert row["agent_sourced_ids"] == ["g1"]
    assert row["user_ids"] == [{"type": "LDAP", "identifier": "12"}, {"type": "LTI", "identifier": "15"}]
    assert row["grades"] == ["09"]
    assert row["enabled_user"] is True
    assert row["date_last_modified"] == datetime(2024, 5, 1, 12, 0, 0, 123000, tzinfo=UTC)
    assert orjson.loads(row["extra"]) == {"favouriteColour": "teal"}
    assert orjson.loads(row["metadata"]) == {"ext:lunch": "free"}


def test_class_terms_periods_and_single_references():
    record = {
        "sourcedId": "c1",
        "status": "active",
        "dateLastModified": "2024-05-01",
        "title": "Algebra",
        "course": ref("course", "crs-1"),
        "school": ref("org", "sch-1"),
        "terms": [ref("academicSession", "t1"), ref("academicSession", "t2")],
        "periods": ["1", "2"],
    }
    row = flatten_records("classes", "lincoln", [normalize_record("classes", record)]).row(0, named=True)
    assert row["course_sourced_id"] == "crs-1"
    assert row["school_sourced_id"] == "sch-1"
    assert row["term_sourced_ids"] == ["t1", "t2"]
    assert row["periods"] == ["1", "2"]
    assert row["extra"] is None


def test_every_page_has_the_same_schema_even_when_fields_are_missing():
    sparse = flatten_records("enrollments", "d", [{"sourcedId": "e1", "status": "active"}])
    assert dict(sparse.schema) == lake_schema("enrollments")
    assert sparse.row(0, named=True)["user_sourced_id"] is None


def test_a_record_without_sourced_id_is_refused_with_its_position():
    with pytest.raises(ValueError, match=r"endpoint users, the record at position 1: no sourcedId"):
        flatten_records("users", "d", [{"sourcedId": "u1"}, {"givenName": "x"}])


def test_a_field_of_the_wrong_shape_is_refused_naming_record_and_field():
    garbled = [{"sourcedId": "c1", "periods": ["1"]}, {"sourcedId": "c2", "periods": 3}]
    with pytest.raises(
        ValueError, match=r"endpoint classes, record 'c2' \(position 1\): field periods: expected a list"
    ):
        flatten_records("classes", "d", garbled)


def test_with_a_problem_list_the_unreadable_records_are_described_and_the_rest_land():
    problems: list = []
    records = [
        {"sourcedId": "c1", "periods": ["1", "2"]},
        {"sourcedId": "c2", "periods": {"first": "1"}},
        {"title": "no id"},
        {"sourcedId": "c4", "grades": 9},
    ]
    frame = flatten_records("classes", "d", records, problems=problems, first_position=100)
    assert frame["sourced_id"].to_list() == ["c1"] and frame["periods"].to_list() == [["1", "2"]]
    assert [str(p) for p in problems] == [
        "record 'c2' (position 101): field periods: expected a list, got {'first': '1'}",
        "the record at position 102: no sourcedId",
        "record 'c4' (position 103): field grades: expected a list, got 9",
    ]


ODD_BUT_READABLE = {
    "users": {
        "sourcedId": "odd-u",
        "identifier": 12345,  # a number where text is expected is kept as its text
        "enabledUser": "FALSE",
        "grades": "09, 10",  # a comma-separated string where the spec says array
        "orgs": {"sourcedId": "org-1"},  # one reference where a list is expected
        "agents": ["g-1", "g-2"],  # references as plain ids
        "primaryOrg": {"sourcedId": 42},  # a numeric id is kept as its text
        "preferredGivenName": "Al",  # the 1.2 CSV binding's name for preferredFirstName
        "metadata": {"ext:bus": 7},
        "favouriteColour": "teal",
    },
    "enrollments": {"sourcedId": "odd-e", "user": "u-1", "class": {"sourcedId": "c-1"}, "primary": 1},
    "orgs": {
        "sourcedId": "odd-o",
        "parent": {"sourcedId": ""},
        "children": [{"sourcedId": 3}, "o-2", {"sourcedId": ""}],
    },
    "classes": {"sourcedId": "odd-c", "periods": ["1", None, ""], "terms": [], "status": None},
}


@pytest.mark.parametrize("endpoint", ["users", "enrollments", "classes", "demographics", "orgs"])
def test_a_page_is_read_the_same_whether_or_not_one_of_its_records_is_unreadable(endpoint: str):
    # A readable page is converted column by column; one unreadable record sends it record by record instead.
    # Both must land the same rows, whatever the provider's quirks.
    district = generate_district(DistrictSpec("oak", seed=3, schools=1, students_per_school=8))
    page = [normalize_record(endpoint, record) for record in district.records(endpoint)[:40]]
    if endpoint in ODD_BUT_READABLE:
        page.append(normalize_record(endpoint, dict(ODD_BUT_READABLE[endpoint])))
    ignored = ("sms",) if endpoint == "users" else ()
    unreadable = {"sourcedId": "bad", "dateLastModified": "yesterday"}

    readable = flatten_records(endpoint, "oak", page, ignored)
    problems: list = []
    one_by_one = flatten_records(endpoint, "oak", [*page, unreadable], ignored, problems=problems)

    assert len(problems) == 1 and readable.height == len(page)
    assert one_by_one.equals(readable)
