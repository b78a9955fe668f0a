"""Paging returns every record exactly once, whatever the server announces and however it caps pages."""

import threading
from collections.abc import Generator
from concurrent.futures import ThreadPoolExecutor

import httpx
import pytest

from roster_pipeline.oneroster import OAuth1HmacSha256

from .conftest import SECRET

HEADER_MODES = ["both", "total", "link", "none"]


@pytest.mark.parametrize("max_page_size", [None, 7], ids=["uncapped", "server-caps-at-7"])
@pytest.mark.parametrize("header_mode", HEADER_MODES)
def test_every_record_exactly_once(sandbox, header_mode, max_page_size):
    district_id = f"paging-{header_mode}-{max_page_size or 'nocap'}"
    district = sandbox.add(district_id, header_mode=header_mode, max_page_size=max_page_size)
    expected = [record["sourcedId"] for record in district.records("users")]
    with sandbox.client(district_id, page_size=20) as client:
        pages = list(client.iter_pages("users"))
    got = [record["sourcedId"] for page in pages for record in page.records]
    assert got == expected
    assert [page.number for page in pages] == list(range(len(pages)))
    offsets = [page.offset for page in pages]
    assert offsets == sorted(offsets) and offsets[0] == 0
    if header_mode in ("both", "total"):
        assert {page.total for page in pages} == {len(expected)}


def test_page_offsets_step_by_what_a_capping_server_returned(sandbox):
    district = sandbox.add("paging-cap-offsets", header_mode="total", max_page_size=7)
    with sandbox.client("paging-cap-offsets", page_size=20) as client:
        pages = list(client.iter_pages("users"))
    assert [page.offset for page in pages] == list(range(0, len(district.records("users")), 7))
    assert all(len(page.records) == 7 for page in pages[:-1])
    # Later pages ask for exactly the served size, so a cap that lifts mid-sync cannot overlap pages.
    limits = [r.query["limit"] for r in sandbox.request_log("paging-cap-offsets") if r.path.endswith("/users")]
    assert limits[0] == "20" and set(limits[1:]) == {"7"}


def test_records_added_during_a_sync_past_the_announced_total_are_still_fetched(sandbox):
    district = sandbox.add("paging-drift", header_mode="total")
    with sandbox.client("paging-drift", page_size=10) as client:
        pages = client.iter_pages("users")
        first = next(pages)
        # Ids sort after every generated id, so they land beyond the total announced on page one.
        template = district.records("users")[0]
        for n in range(25):
            district.upsert("users", {**template, "sourcedId": f"zz-late-{n:02d}"})
        rest = [record["sourcedId"] for page in pages for record in page.records]
    got = [record["sourcedId"] for record in first.records] + rest
    assert got == [record["sourcedId"] for record in district.records("users")]
    assert got[-1] == "zz-late-24"


class CountingOAuth1(OAuth1HmacSha256):
    """Real OAuth1 signing that also records how many requests were in flight at once."""

    def __init__(self, key: str, secret: str) -> None:
        super().__init__(key, secret)
        self._lock = threading.Lock()
        self.in_flight = 0
        self.max_in_flight = 0

    def auth_flow(self, request: httpx.Request) -> Generator[httpx.Request, httpx.Response, None]:
        with self._lock:
            self.in_flight += 1
            self.max_in_flight = max(self.max_in_flight, self.in_flight)
        try:
            yield from super().auth_flow(request)
        finally:
            with self._lock:
                self.in_flight -= 1


@pytest.mark.parametrize(
    "header_mode, max_concurrency, expect_parallel",
    [("total", 4, True), ("total", 1, False), ("link", 4, False)],
)
def test_pages_are_fetched_concurrently_only_when_the_total_is_known(
    sandbox, header_mode, max_concurrency, expect_parallel
):
    district_id = f"concurrency-{header_mode}-{max_concurrency}"
    sandbox.add(district_id, kind="oauth1", header_mode=header_mode)
    sandbox.server.faults(district_id).slow(seconds=0.15)
    auth = CountingOAuth1(f"{district_id}-id", SECRET)
    with sandbox.client(district_id, auth=auth, page_size=30, max_concurrency=max_concurrency) as client:
        pages = list(client.iter_pages("users"))
    sandbox.server.faults(district_id).clear()
    assert len(pages) > max_concurrency
    if expect_parallel:
        assert 1 < auth.max_in_flight <= max_concurrency
    else:
        assert auth.max_in_flight == 1


def test_clients_sharing_a_budget_stay_within_it_together_and_one_alone_gets_it_whole(sandbox):
    district_id = "shared-budget"
    sandbox.add(district_id, kind="oauth1")
    sandbox.server.faults(district_id).slow(seconds=0.1)
    auth = CountingOAuth1(f"{district_id}-id", SECRET)
    budget = threading.BoundedSemaphore(3)
    endpoints = ["users", "enrollments", "demographics"]
    clients = [
        sandbox.client(district_id, auth=auth, page_size=5, max_concurrency=3, in_flight=budget) for _ in endpoints
    ]
    try:
        with ThreadPoolExecutor(len(clients)) as pool:
            paged = list(pool.map(lambda client, endpoint: list(client.iter_pages(endpoint)), clients, endpoints))
        assert all(len(pages) > 3 for pages in paged)
        assert auth.max_in_flight == 3  # three clients paging with three each would have had nine
        auth.max_in_flight = 0
        list(clients[0].iter_pages("users"))
        assert auth.max_in_flight == 3  # the last one paging takes the whole budget
    finally:
        sandbox.server.faults(district_id).clear()
        for client in clients:
            client.close()


@pytest.mark.parametrize("header_mode", ["both", "total", "link"])
def test_an_endpoint_that_fits_on_one_page_costs_one_request(sandbox, header_mode):
    district_id = f"one-page-{header_mode}"
    district = sandbox.add(district_id, header_mode=header_mode)
    with sandbox.client(district_id, page_size=100) as client:
        orgs = client.fetch_all("orgs")
    assert len(orgs) == district.size("orgs") < 100
    assert len([r for r in sandbox.request_log(district_id) if r.path.endswith("/orgs")]) == 1
