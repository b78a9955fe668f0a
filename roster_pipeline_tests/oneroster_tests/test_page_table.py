"""A plain page read straight into its lake frame lands exactly what reading it record by record lands; a page
that is not plain is declined, never read differently."""

from __future__ import annotations

import copy
from typing import Any

import orjson
import pytest
from polars.testing import assert_frame_equal

from roster_pipeline.oneroster import ENDPOINT_NAMES, endpoint_spec
from roster_pipeline.oneroster.flatten import flatten_records, lake_schema
from roster_pipeline.oneroster.normalize import RecordProblem, read_record
from roster_pipeline.oneroster.page_table import read_lake_page
from roster_pipeline.sandbox import v1p2
from roster_pipeline.sandbox.generator import DistrictSpec, generate_district
from roster_pipeline_tests.oneroster_tests.conftest import Sandbox

DISTRICT = generate_district(DistrictSpec("elm", seed=11, schools=2, students_per_school=40))


def body_of(endpoint: str, records: list[dict[str, Any]]) -> bytes:
    return orjson.dumps({endpoint: records, "note": "other keys are not records"})


def record_by_record(endpoint: str, body: bytes, ignored: frozenset[str] = frozenset()):
    """What the page lands read the long way (client._parse, then flatten_records), and its unreadable records."""
    read = [read_record(endpoint, record, i) for i, record in enumerate(orjson.loads(body)[endpoint])]
    readable = [record for record in read if not isinstance(record, RecordProblem)]
    problems = [record for record in read if isinstance(record, RecordProblem)]
    return flatten_records(endpoint, "elm", readable, ignored, problems=problems), problems


def fast(endpoint: str, body: bytes, ignored: frozenset[str] = frozenset()):
    return read_lake_page(endpoint, endpoint_spec(endpoint).envelope_key, "elm", ignored, body)


@pytest.mark.parametrize("endpoint", ENDPOINT_NAMES)
def test_every_endpoint_of_a_generated_district_lands_the_same_rows_both_ways(endpoint):
    body = body_of(endpoint, DISTRICT.records(endpoint))
    frame = fast(endpoint, body)
    assert frame is not None, f"{endpoint}: a generated page is plain"
    assert frame.height == len(DISTRICT.records(endpoint))
    assert_frame_equal(frame, record_by_record(endpoint, body)[0])


@pytest.mark.parametrize("endpoint", ["orgs", "classes", "enrollments", "demographics"])
def test_12_pages_with_json_booleans_land_the_same_rows_both_ways(endpoint):
    body = body_of(endpoint, [v1p2.to_v1p2(endpoint, record) for record in DISTRICT.records(endpoint)])
    frame = fast(endpoint, body)
    assert frame is not None
    assert_frame_equal(frame, record_by_record(endpoint, body)[0])


def test_12_users_with_roles_are_read_record_by_record():
    body = body_of("users", [v1p2.to_v1p2("users", record) for record in DISTRICT.records("users")])
    assert fast("users", body) is None


def plain_user() -> dict[str, Any]:
    return copy.deepcopy(next(u for u in DISTRICT.records("users") if u["role"] == "student" and u["agents"]))


# One change to an otherwise plain record each: what providers send that the specification does not promise.
ODD_USERS: dict[str, Any] = {
    "number where text belongs": {"identifier": 12345},
    "float where text belongs": {"identifier": 1.0},
    "boolean where text belongs": {"givenName": True},
    "JSON boolean flag": {"enabledUser": False},
    "shouted flag": {"enabledUser": "TRUE"},
    "numeric flag": {"enabledUser": 1},
    "empty flag": {"enabledUser": ""},
    "inactive status": {"status": "inactive"},
    "deleted status": {"status": "deleted"},
    "shouted status": {"status": "Active"},
    "no status": {"status": None},
    "empty status": {"status": ""},
    "numeric status": {"status": 1},
    "unknown field": {"favouriteColour": "teal"},
    "metadata": {"metadata": {"ext:lunch": "free"}},
    "empty metadata": {"metadata": {}},
    "null metadata": {"metadata": None},
    "1.2 roles": {"roles": [{"roleType": "primary", "role": "student", "org": {"sourcedId": "o"}}]},
    "1.2 preferred name alias": {"preferredGivenName": "Al"},
    "1.2 pronouns": {"pronouns": "they/them"},
    "blank sourcedId": {"sourcedId": "  "},
    "numeric sourcedId": {"sourcedId": 42},
    "no sourcedId": {"sourcedId": None},
    "padded sourcedId": {"sourcedId": " u-1 "},
    "timestamp with offset": {"dateLastModified": "2024-05-01T12:00:00+02:00"},
    "date alone": {"dateLastModified": "2024-05-01"},
    "seven fractional digits": {"dateLastModified": "2024-05-01T12:00:00.1234567Z"},
    "no such day": {"dateLastModified": "2024-06-31T12:00:00Z"},
    "leap second": {"dateLastModified": "2016-12-31T23:59:60Z"},
    "lower-case zone": {"dateLastModified": "2024-05-01t12:00:00z"},
    "empty timestamp": {"dateLastModified": ""},
    "no timestamp": {"dateLastModified": None},
    "garbage timestamp": {"dateLastModified": "yesterday"},
    "reference as plain id": {"orgs": ["org-1"]},
    "single reference not in a list": {"orgs": {"sourcedId": "org-1", "type": "org"}},
    "reference without sourcedId": {"agents": [{"type": "user"}]},
    "reference with empty sourcedId": {"agents": [{"sourcedId": "", "type": "user"}]},
    "null in a reference list": {"agents": [None]},
    "grades as comma text": {"grades": "09, 10"},
    "empty and null grades": {"grades": ["", None, "09"]},
    "numeric grade": {"grades": [9]},
    "userIds with blanks": {"userIds": [{"type": "", "identifier": "7"}, {"type": "LDAP"}]},
    "userIds item not an object": {"userIds": ["LDAP:7"]},
    "null list": {"orgs": None, "agents": None, "userIds": None, "grades": None},
    "empty text": {"middleName": "", "email": ""},
    "not an object": "just text",
}


@pytest.mark.parametrize("case", list(ODD_USERS))
def test_an_odd_record_is_read_the_same_or_declined(case):
    odd = ODD_USERS[case]
    record = {**plain_user(), **odd} if isinstance(odd, dict) else odd
    body = body_of("users", [plain_user(), record])
    frame = fast("users", body)
    if frame is not None:
        landed, problems = record_by_record("users", body)
        assert not problems, f"{case}: a page with an unreadable record must be declined"
        assert_frame_equal(frame, landed)


@pytest.mark.parametrize(
    "case",
    [
        "number where text belongs",
        "float where text belongs",
        "boolean where text belongs",
        "shouted flag",
        "numeric flag",
        "shouted status",
        "unknown field",
        "metadata",
        "1.2 roles",
        "1.2 preferred name alias",
        "blank sourcedId",
        "numeric sourcedId",
        "timestamp with offset",
        "no such day",
        "leap second",
        "garbage timestamp",
        "reference as plain id",
        "grades as comma text",
        "not an object",
    ],
)
def test_what_polars_would_read_unlike_python_is_declined(case):
    odd = ODD_USERS[case]
    record = {**plain_user(), **odd} if isinstance(odd, dict) else odd
    assert fast("users", body_of("users", [plain_user(), record])) is None


@pytest.mark.parametrize(
    "case", ["JSON boolean flag", "empty flag", "inactive status", "no status", "empty timestamp", "null list"]
)
def test_spellings_the_specification_allows_stay_on_the_fast_path(case):
    record = {**plain_user(), **ODD_USERS[case]}
    assert fast("users", body_of("users", [plain_user(), record])) is not None


def test_a_field_the_profile_ignores_may_hold_anything_and_lands_empty():
    ignored = frozenset({"grades", "sms"})
    record = {**plain_user(), "grades": {"broken": True}, "sms": 5551234}
    body = body_of("users", [plain_user(), record])
    frame = fast("users", body, ignored)
    assert frame is not None
    assert frame["grades"].to_list() == [[], []] and frame["sms"].to_list() == [None, None]
    assert_frame_equal(frame, record_by_record("users", body, ignored)[0])


def test_an_empty_page_is_an_empty_frame_and_a_body_that_is_not_json_is_declined():
    empty = fast("users", body_of("users", []))
    assert empty is not None and empty.height == 0 and empty.schema == lake_schema("users")
    assert fast("users", b'{"users": [{"sourcedId": "u1"') is None
    assert fast("users", b"<html>maintenance</html>") is None
    assert fast("users", b'{"orgs": []}') is None  # no envelope: the record path says what is wrong


def test_a_repeated_envelope_or_sourcedid_is_declined_so_no_record_is_lost():
    record = orjson.dumps(plain_user())
    # Polars reads a repeated key's first copy, msgspec and orjson its last: an empty first envelope would have
    # read as an empty page, which ends paging.
    assert fast("users", b'{"users": [], "users": [' + record + b"]}") is None
    repeated_id = record.replace(b'{"sourcedId":', b'{"sourcedId":"other","sourcedId":', 1)
    assert repeated_id != record and fast("users", b'{"users": [' + repeated_id + b"]}") is None


@pytest.mark.parametrize(
    "ignored, sent",
    [
        (frozenset({"preferredGivenName"}), {"preferredGivenName": "Al"}),  # the alias still fills its column
        (frozenset({"roles"}), {"roles": [{"roleType": "primary", "role": "student", "org": {"sourcedId": "o9"}}]}),
    ],
)
def test_an_ignored_field_that_feeds_another_column_is_read_the_same_or_declined(ignored, sent):
    body = body_of("users", [plain_user(), {**plain_user(), **sent}])
    frame = fast("users", body, ignored)
    if frame is not None:
        assert_frame_equal(frame, record_by_record("users", body, ignored)[0])


def test_what_msgspec_or_polars_cannot_read_is_declined_not_raised():
    year_zero = {**plain_user(), "dateLastModified": "0000-01-01T00:00:00Z"}  # Python's datetime has no year 0
    assert fast("users", body_of("users", [year_zero])) is None
    record = orjson.dumps(plain_user())
    assert fast("users", b'{"total": 1e400, "users": [' + record + b"]}") is None  # no double holds it
    deep = b"[" * 1000 + b"]" * 1000  # deeper than msgspec reads (orjson reads it)
    assert fast("users", b'{"extra": ' + deep + b', "users": [' + record + b"]}") is None


def test_over_http_plain_pages_come_as_frames_and_an_odd_page_as_records(sandbox: Sandbox):
    district = sandbox.add("frames", schools=2, students_per_school=30)
    odd = district.records("users")[45]["sourcedId"]
    district.upsert("users", {**district.get("users", odd), "favouriteColour": "teal"})
    reader = lambda body: read_lake_page("users", "users", "frames", frozenset(), body)  # noqa: E731
    with sandbox.client("frames", page_size=20) as client:
        pages = list(client.iter_pages("users", reader=reader))
        records = client.fetch_all("users")
    assert [page.frame is None for page in pages] == [index == 2 for index in range(len(pages))]
    assert pages[2].records[5]["sourcedId"] == odd and pages[2].records[5]["favouriteColour"] == "teal"
    landed = [sid for page in pages for sid in (page.frame["sourced_id"] if page.frame is not None else [])]
    landed += [record["sourcedId"] for record in pages[2].records]
    assert sorted(landed) == sorted(record["sourcedId"] for record in records)
    assert sum(page.served for page in pages) == len(records)
