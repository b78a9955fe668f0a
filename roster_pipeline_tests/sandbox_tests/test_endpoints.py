"""Endpoints: collection envelopes, single records, optional endpoints a district does not offer."""

from __future__ import annotations

from collections.abc import Callable

import httpx
import pytest

from roster_pipeline.sandbox.generator import COLLECTIONS, GUID_TYPES
from roster_pipeline_tests.conftest import ServedDistrict
from roster_pipeline_tests.sandbox_tests.raw_http import bearer_client, imsx_description


@pytest.mark.parametrize("collection", COLLECTIONS)
def test_each_collection_and_its_single_record_use_oneroster_envelopes(oak_api: httpx.Client, collection: str) -> None:
    listing = oak_api.get(collection)
    assert listing.status_code == 200 and listing.headers["content-type"] == "application/json"
    first = listing.json()[collection][0]
    single = oak_api.get(f"{collection}/{first['sourcedId']}")
    assert single.status_code == 200
    assert single.json() == {GUID_TYPES[collection]: first}


def test_unknown_sourced_id_is_a_404_unknown_object(oak_api: httpx.Client) -> None:
    response = oak_api.get("users/no-such-user")
    assert response.status_code == 404
    assert response.json()["imsx_CodeMinor"]["imsx_codeMinorField"][0]["imsx_codeMinorFieldValue"] == "unknownobject"


def test_endpoints_not_offered_answer_404(served_district: Callable[..., ServedDistrict]) -> None:
    served = served_district("core-only", offered={"academicSessions", "orgs", "users", "classes", "enrollments"})
    with bearer_client(served) as client:
        for endpoint in ("courses", "demographics"):
            response = client.get(endpoint)
            assert response.status_code == 404 and "not offered" in imsx_description(response)
        student = served.district.records("demographics")[0]["sourcedId"]
        assert client.get(f"demographics/{student}").status_code == 404
        assert client.get("users").status_code == 200


def test_unknown_paths_and_districts_are_404(oak: ServedDistrict, oak_api: httpx.Client) -> None:
    assert oak_api.get("students").status_code == 404
    assert oak_api.get("users/a/b").status_code == 404
    assert httpx.get(oak.base_url.replace("/oak/", "/nowhere/") + "/users").status_code == 404


def test_the_api_is_read_only(oak_api: httpx.Client) -> None:
    response = oak_api.post("users", json={"sourcedId": "x"})
    assert response.status_code == 405 and response.headers["allow"] == "GET"


def test_wrapped_errors_use_a_status_info_set(served_district: Callable[..., ServedDistrict]) -> None:
    served = served_district("wrapped", wrap_errors=True)
    response = httpx.get(f"{served.base_url}/users")
    assert response.status_code == 401
    assert response.json()["statusInfoSet"][0]["imsx_codeMajor"] == "failure"


def test_connections_are_kept_alive_across_pages(oak: ServedDistrict, oak_api: httpx.Client) -> None:
    responses = [oak_api.get("users", params={"offset": offset}) for offset in (0, 100)]
    assert all(r.http_version == "HTTP/1.1" and r.headers.get("connection") != "close" for r in responses)
