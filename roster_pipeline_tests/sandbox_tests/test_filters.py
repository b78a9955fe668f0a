"""The filter parameter: one or two predicates, quoted values, instants for dateLastModified."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import httpx
import pytest

from roster_pipeline.sandbox.filter_eval import FilterError, Predicate, parse_filter
from roster_pipeline_tests.conftest import ServedDistrict
from roster_pipeline_tests.sandbox_tests.raw_http import imsx_description


def filtered(client: httpx.Client, endpoint: str, text: str) -> list[dict]:
    response = client.get(endpoint, params={"filter": text, "limit": 10_000})
    assert response.status_code == 200, response.text
    return response.json()[endpoint]


def test_parser_unescapes_doubled_quotes_and_keeps_logical_words_inside_values() -> None:
    expression = parse_filter("familyName='O''Brien AND Sons' OR givenName~'x'")
    assert expression.logical == "OR"
    assert expression.predicates == (Predicate("familyName", "=", "O'Brien AND Sons"), Predicate("givenName", "~", "x"))


@pytest.mark.parametrize(
    ("text", "problem"),
    [
        ("role='student", "unterminated"),
        ("role=student", "single quotes"),
        ("role=='student'", "single quotes"),
        ("role'student'", "operator"),
        ("role='student' and status='active'", "uppercase"),
        ("role='a' AND role='b' AND role='c'", "at most two"),
        ("", "empty"),
    ],
)
def test_parser_names_the_problem(text: str, problem: str) -> None:
    with pytest.raises(FilterError, match=problem):
        parse_filter(text)


def test_equality_on_a_string_field(oak_api: httpx.Client, oak: ServedDistrict) -> None:
    students = filtered(oak_api, "users", "role='student'")
    assert {u["role"] for u in students} == {"student"}
    assert len(students) == sum(u["role"] == "student" for u in oak.district.records("users"))


def test_and_narrows_and_or_widens(oak_api: httpx.Client) -> None:
    students = filtered(oak_api, "users", "role='student'")
    teachers = filtered(oak_api, "users", "role='teacher'")
    name = students[0]["givenName"]
    both = filtered(oak_api, "users", f"role='student' AND givenName='{name}'")
    assert both and all(u["givenName"] == name and u["role"] == "student" for u in both)
    either = filtered(oak_api, "users", "role='student' OR role='teacher'")
    assert len(either) == len(students) + len(teachers)


def test_quotes_and_ampersands_in_values_survive_the_query_string(oak_api: httpx.Client, oak: ServedDistrict) -> None:
    org = oak.district.upsert("orgs", {"sourcedId": "tricky", "name": "Smith & O'Brien = Academy", "type": "school"})
    found = filtered(oak_api, "orgs", "name='Smith & O''Brien = Academy'")
    assert [o["sourcedId"] for o in found] == [org["sourcedId"]]


def test_contains_is_case_insensitive(oak_api: httpx.Client) -> None:
    schools = filtered(oak_api, "orgs", "name~'SCHOOL'")
    assert schools and all("school" in o["name"].lower() for o in schools)


def test_date_last_modified_compares_as_instants(oak_api: httpx.Client, oak: ServedDistrict) -> None:
    changed = oak.district.upsert("users", {**oak.district.records("users")[0], "givenName": "Changed"})
    stamp = datetime.fromisoformat(changed["dateLastModified"])
    just_before = (stamp - timedelta(milliseconds=500)).astimezone(UTC)
    as_offset = just_before.astimezone(datetime.now().astimezone().tzinfo).isoformat()
    for text in (
        f"dateLastModified>'{just_before.strftime('%Y-%m-%dT%H:%M:%S.%fZ')}'",  # six fractional digits
        f"dateLastModified>'{just_before.isoformat(timespec='milliseconds')}'",  # +00:00 offset
        f"dateLastModified>'{as_offset}'",  # the same instant in local time
        f"dateLastModified>='{changed['dateLastModified']}'",
    ):
        assert [u["sourcedId"] for u in filtered(oak_api, "users", text)] == [changed["sourcedId"]], text
    assert filtered(oak_api, "users", f"dateLastModified>'{changed['dateLastModified']}'") == []


def test_date_only_value_means_midnight_utc(oak_api: httpx.Client, oak: ServedDistrict) -> None:
    everything = filtered(oak_api, "users", "dateLastModified>'2024-08-01'")
    before_base = filtered(oak_api, "users", "dateLastModified<'2024-09-01'")
    assert len(everything) == len(before_base) == len(oak.district.records("users"))


def test_status_filter_finds_tombstones(oak_api: httpx.Client, oak: ServedDistrict) -> None:
    gone = oak.district.records("enrollments")[5]["sourcedId"]
    oak.district.mark_tobedeleted("enrollments", gone)
    assert [e["sourcedId"] for e in filtered(oak_api, "enrollments", "status='tobedeleted'")] == [gone]


@pytest.mark.parametrize(
    ("text", "problem"),
    [
        ("agents='x'", "not filterable"),
        ("shoeSize='9'", "not filterable"),
        ("dateLastModified>'last tuesday'", "ISO 8601"),
        ("role='student' AND", "expected"),
    ],
)
def test_a_bad_filter_is_a_400_naming_the_problem(oak_api: httpx.Client, text: str, problem: str) -> None:
    response = oak_api.get("users", params={"filter": text})
    assert response.status_code == 400
    assert problem in imsx_description(response)
