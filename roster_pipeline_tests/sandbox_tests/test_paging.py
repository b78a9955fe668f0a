"""Paging: limit/offset over a stable sourcedId order, announced by X-Total-Count and/or Link headers."""

from __future__ import annotations

from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from urllib.parse import parse_qs, urlsplit

import httpx
import pytest

from roster_pipeline_tests.conftest import ServedDistrict
from roster_pipeline_tests.sandbox_tests.raw_http import bearer_client, page_through

Serve = Callable[..., ServedDistrict]


@pytest.mark.parametrize("header_mode", ["both", "total", "link", "none"])
def test_paging_returns_every_record_exactly_once_in_each_header_mode(served_district: Serve, header_mode: str) -> None:
    served = served_district(f"paging-{header_mode}", header_mode=header_mode)
    with bearer_client(served) as client:
        users = page_through(client, "users", header_mode, limit=17)
    expected = [u["sourcedId"] for u in served.district.records("users")]
    assert [u["sourcedId"] for u in users] == expected


def test_default_limit_is_100(oak_api: httpx.Client, oak: ServedDistrict) -> None:
    response = oak_api.get("users")
    assert len(response.json()["users"]) == 100
    assert int(response.headers["x-total-count"]) == len(oak.district.records("users"))


def test_max_page_size_caps_limit_silently(served_district: Serve) -> None:
    served = served_district("capped", max_page_size=25)
    with bearer_client(served) as client:
        response = client.get("users", params={"limit": 1000})
        assert response.status_code == 200
        assert len(response.json()["users"]) == 25
        next_url = urlsplit(response.links["next"]["url"])
        assert parse_qs(next_url.query) == {"limit": ["25"], "offset": ["25"]}
        everything = page_through(client, "users", "both", limit=1000)
    assert len(everything) == len(served.district.records("users"))


def test_link_header_has_first_last_and_next_but_no_next_on_the_last_page(oak_api: httpx.Client) -> None:
    total = int(oak_api.get("users", params={"limit": 1}).headers["x-total-count"])
    first = oak_api.get("users", params={"limit": 50})
    assert set(first.links) == {"first", "next", "last"}
    last_url = first.links["last"]["url"]
    last = oak_api.get(last_url)
    assert "next" not in last.links and "prev" in last.links
    assert len(last.json()["users"]) == total - (total - 1) // 50 * 50


def test_next_link_keeps_the_filter_percent_encoded(oak_api: httpx.Client) -> None:
    response = oak_api.get("users", params={"filter": "role='student'", "limit": 5})
    raw_next = response.headers["link"].split(", ")[1]
    assert "filter=role%3D%27student%27" in raw_next and 'rel="next"' in raw_next
    follow = oak_api.get(response.links["next"]["url"])
    assert all(u["role"] == "student" for u in follow.json()["users"])


def test_offset_past_the_end_returns_an_empty_page(oak_api: httpx.Client) -> None:
    response = oak_api.get("users", params={"offset": 100_000})
    assert response.status_code == 200 and response.json() == {"users": []}
    assert "next" not in response.links


@pytest.mark.parametrize("params", [{"limit": "0"}, {"limit": "ten"}, {"offset": "-1"}])
def test_invalid_limit_or_offset_is_a_400(oak_api: httpx.Client, params: dict[str, str]) -> None:
    response = oak_api.get("users", params=params)
    assert response.status_code == 400
    assert response.json()["imsx_CodeMinor"]["imsx_codeMinorField"][0]["imsx_codeMinorFieldValue"] == "invalid_data"


def test_records_added_while_paging_keep_sourced_id_order(oak_api: httpx.Client, oak: ServedDistrict) -> None:
    first = oak_api.get("orgs", params={"limit": 2}).json()["orgs"]
    oak.district.upsert("orgs", {"sourcedId": "zzzz-late-school", "name": "Late School", "type": "school"})
    rest = oak_api.get("orgs", params={"limit": 100, "offset": 2}).json()["orgs"]
    ids = [o["sourcedId"] for o in first + rest]
    assert ids == sorted(ids) and ids[-1] == "zzzz-late-school"


def test_concurrent_clients_each_page_through_everything_while_records_change(oak: ServedDistrict) -> None:
    def page_all() -> list[str]:
        with bearer_client(oak) as client:
            return [e["sourcedId"] for e in page_through(client, "enrollments", "both", limit=7)]

    expected = [e["sourcedId"] for e in oak.district.records("enrollments")]
    with ThreadPoolExecutor(max_workers=4) as pool:
        futures = [pool.submit(page_all) for _ in range(4)]
        for record in oak.district.records("users")[:20]:  # updates keep ids, so paging stays stable
            oak.district.upsert("users", {**record, "givenName": "Concurrent"})
        results = [f.result() for f in futures]
    assert all(result == expected for result in results)
