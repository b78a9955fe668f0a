"""Filters with awkward values survive percent-encoding and OAuth 1.0a signing end to end."""

from datetime import UTC, datetime

import pytest

from roster_pipeline.oneroster import Filter, parse_datetime

TRICKY_NAMES = ["O'Brien", "Smith & Sons", "Mary Ann", "a=b", "1+1", "50% off", "Zoë 'Z' Ng", "x''y"]


@pytest.fixture(scope="module")
def tricky(sandbox):
    district = sandbox.add("filters-oauth1", kind="oauth1")
    template = district.records("users")[0]
    for n, name in enumerate(TRICKY_NAMES):
        district.upsert("users", {**template, "sourcedId": f"tricky-{n}", "familyName": name})
    return district


@pytest.mark.parametrize("name", TRICKY_NAMES)
def test_equality_filter_on_a_tricky_value_finds_exactly_that_record(sandbox, tricky, name):
    with sandbox.client("filters-oauth1", kind="oauth1") as client:
        records = client.fetch_all("users", filter=Filter.eq("familyName", name))
    expected = [u["sourcedId"] for u in tricky.records("users") if u["familyName"] == name]
    assert [record["sourcedId"] for record in records] == expected
    assert f"tricky-{TRICKY_NAMES.index(name)}" in expected


def test_two_predicate_filter_with_or(sandbox, tricky):
    flt = Filter.eq("familyName", "O'Brien") | Filter.eq("familyName", "Smith & Sons")
    with sandbox.client("filters-oauth1", kind="oauth1") as client:
        records = client.fetch_all("users", filter=flt)
    expected = [u["sourcedId"] for u in tricky.records("users") if u["familyName"] in ("O'Brien", "Smith & Sons")]
    assert [record["sourcedId"] for record in records] == expected
    assert {"tricky-0", "tricky-1"} <= set(expected)


def test_delta_filter_on_date_last_modified_returns_only_newer_records(sandbox, tricky):
    users = tricky.records("users")
    generated = [parse_datetime(u["dateLastModified"]) for u in users if not u["sourcedId"].startswith("tricky")]
    # The filter has whole-second precision, so the cut falls on the second boundary.
    cutoff = max(generated).replace(microsecond=0)
    expected = sorted(
        u["sourcedId"] for u in users if parse_datetime(u["dateLastModified"]) > cutoff and u["status"] == "active"
    )
    with sandbox.client("filters-oauth1", kind="oauth1", page_size=3) as client:
        flt = Filter.gt("dateLastModified", cutoff) & Filter.eq("status", "active")
        records = client.fetch_all("users", filter=flt)
    assert sorted(record["sourcedId"] for record in records) == expected
    assert {f"tricky-{n}" for n in range(len(TRICKY_NAMES))} <= set(expected)
    assert all(record["dateLastModified"] > cutoff for record in records)
    assert cutoff < datetime.now(UTC)


def test_link_pages_of_a_filtered_query_are_signed_as_the_server_wrote_them(sandbox):
    district = sandbox.add("filters-oauth1-links", kind="oauth1", header_mode="link")
    template = district.records("users")[0]
    for n in range(3):
        district.upsert("users", {**template, "sourcedId": f"linked-{n}", "familyName": "Smith & Sons = 1"})
    with sandbox.client("filters-oauth1-links", kind="oauth1", page_size=1) as client:
        pages = list(client.iter_pages("users", filter=Filter.eq("familyName", "Smith & Sons = 1")))
    assert [record["sourcedId"] for page in pages for record in page.records] == ["linked-0", "linked-1", "linked-2"]
    followed = [r for r in sandbox.request_log("filters-oauth1-links") if r.path.endswith("/users")]
    assert [r.status for r in followed] == [200, 200, 200]
    assert all(r.query["filter"] == "familyName='Smith & Sons = 1'" for r in followed)
    # The contract's wire form: the whole filter percent-encoded, a space as %20.
    assert "filter=familyName%3D%27Smith%20%26%20Sons%20%3D%201%27" in followed[0].raw_query
