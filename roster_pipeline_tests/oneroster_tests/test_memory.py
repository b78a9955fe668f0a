"""Paging a large district keeps memory flat: bounded by a few pages, not by the district's size."""

import gc
import tracemalloc

import pytest

from roster_pipeline.oneroster import OAuth2ClientCredentials, OneRosterClient
from roster_pipeline.sandbox.generator import DistrictSpec, generate_district
from roster_pipeline.sandbox.server import DistrictAuth, SandboxServer

PAGE_SIZE = 1000
CONCURRENCY = 4


@pytest.mark.e2e
def test_paging_200k_users_holds_only_a_few_pages_at_once():
    district = generate_district(DistrictSpec.for_users("memory-200k", 200_000, seed=1))
    users = district.size("users")
    with SandboxServer() as server:
        server.add_district(district, auth=DistrictAuth(kind="oauth2", client_id="mem", client_secret="mem-secret"))
        auth = OAuth2ClientCredentials(server.token_url("memory-200k"), "mem", "mem-secret")
        with OneRosterClient(
            server.base_url("memory-200k"), auth, page_size=PAGE_SIZE, max_concurrency=CONCURRENCY
        ) as client:
            tracemalloc.start()
            try:
                # The size of one parsed, normalised page, measured the same way as the peak below.
                pages = client.iter_pages("users")
                page = next(pages)
                pages.close()
                gc.collect()
                with_page = tracemalloc.get_traced_memory()[0]
                del page, pages
                gc.collect()
                one_page = with_page - tracemalloc.get_traced_memory()[0]

                tracemalloc.reset_peak()
                baseline = tracemalloc.get_traced_memory()[0]
                seen = 0
                for page in client.iter_pages("users"):
                    seen += len(page.records)
                peak = tracemalloc.get_traced_memory()[1] - baseline
            finally:
                tracemalloc.stop()
    assert seen == users > 190_000
    district_pages = users / PAGE_SIZE
    # Alive at once: the page being consumed, up to CONCURRENCY finished pages waiting their turn, and
    # CONCURRENCY pages in flight (body plus parsed records), with the in-process server's buffers on top.
    assert one_page > 0
    assert peak / one_page < 3 * CONCURRENCY + 4 < district_pages / 10
