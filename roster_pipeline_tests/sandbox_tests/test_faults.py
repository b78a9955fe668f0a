"""Fault injection: each fault a real provider produces mid-sync, seen over real HTTP."""

from __future__ import annotations

import httpx
import pytest

from roster_pipeline_tests.conftest import ServedDistrict
from roster_pipeline_tests.sandbox_tests.raw_http import fetch_token, imsx_description


def statuses(client: httpx.Client, count: int, endpoint: str = "orgs") -> list[int]:
    return [client.get(endpoint).status_code for _ in range(count)]


def test_rate_limit_answers_429_with_retry_after_then_recovers(oak: ServedDistrict, oak_api: httpx.Client) -> None:
    oak.faults.rate_limit(count=3, retry_after=7)
    response = oak_api.get("users")
    assert response.status_code == 429 and response.headers["retry-after"] == "7"
    assert "too many requests" in imsx_description(response)
    assert statuses(oak_api, 3) == [429, 429, 200]
    assert [r.fault for r in oak.server.request_log("oak") if r.status == 429] == ["rate_limit"] * 3


@pytest.mark.parametrize("status", [502, 503, 504])
def test_server_errors_answer_5xx_with_imsx_body(oak: ServedDistrict, oak_api: httpx.Client, status: int) -> None:
    oak.faults.server_errors(count=2, status=status)
    first = oak_api.get("users")
    assert first.status_code == status and imsx_description(first)
    assert statuses(oak_api, 2) == [status, 200]


def test_server_errors_carry_the_description_asked_for(oak: ServedDistrict, oak_api: httpx.Client) -> None:
    oak.faults.server_errors(count=1, status=500, description="Backend database unavailable")
    response = oak_api.get("users")
    assert response.status_code == 500 and imsx_description(response) == "Backend database unavailable"


@pytest.mark.parametrize("status", [200, 503])
def test_html_pages_answer_with_a_titled_page_and_the_status_asked_for(
    oak: ServedDistrict, oak_api: httpx.Client, status: int
) -> None:
    oak.faults.html_pages(count=1, status=status, title="Scheduled <maintenance>")
    response = oak_api.get("users")
    assert response.status_code == status
    assert response.headers["content-type"] == "text/html; charset=utf-8"
    assert "<title>Scheduled &lt;maintenance&gt;</title>" in response.text
    assert oak_api.get("users").status_code == 200 and "users" in oak_api.get("users").json()


def test_error_envelopes_answer_200_with_an_imsx_failure_instead_of_records(
    oak: ServedDistrict, oak_api: httpx.Client
) -> None:
    oak.faults.error_envelopes(count=1, description="Service suspended for this tenant")
    response = oak_api.get("users")
    assert response.status_code == 200 and "users" not in response.json()
    assert imsx_description(response) == "Service suspended for this tenant"
    assert "users" in oak_api.get("users").json()


def test_a_truncated_body_announces_more_than_it_sends_then_closes(oak: ServedDistrict, oak_api: httpx.Client) -> None:
    oak.faults.truncate_bodies(count=1, how="length")
    with pytest.raises(httpx.RemoteProtocolError, match="without sending complete message body"):
        oak_api.get("users")
    assert oak_api.get("users").status_code == 200
    assert [r.status for r in oak.server.request_log("oak") if r.fault == "truncate"] == [200]


def test_truncated_json_is_cut_mid_way_with_a_matching_length(oak: ServedDistrict, oak_api: httpx.Client) -> None:
    whole = oak_api.get("users")
    oak.faults.truncate_bodies(count=1, how="json")
    cut = oak_api.get("users")
    assert cut.status_code == 200 and len(cut.content) == len(whole.content) // 2
    assert int(cut.headers["content-length"]) == len(cut.content)
    with pytest.raises(ValueError):
        cut.json()
    assert oak_api.get("users").json() == whole.json()


def test_dropped_connection_closes_without_a_response(oak: ServedDistrict, oak_api: httpx.Client) -> None:
    oak.faults.drop_connections(count=1)
    with pytest.raises(httpx.RemoteProtocolError):
        oak_api.get("users")
    assert oak_api.get("users").status_code == 200
    dropped = [r for r in oak.server.request_log("oak") if r.fault == "drop"]
    assert len(dropped) == 1 and dropped[0].status == 0


def test_slow_responses_outlast_a_short_client_timeout(oak: ServedDistrict, oak_api: httpx.Client) -> None:
    oak.faults.slow(seconds=0.5, count=1)
    with pytest.raises(httpx.ReadTimeout):
        oak_api.get("orgs", timeout=0.1)
    assert oak_api.get("orgs", timeout=5).status_code == 200


def test_tokens_expire_mid_sync_and_a_new_token_works(oak: ServedDistrict, oak_api: httpx.Client) -> None:
    oak.faults.expire_tokens_after(requests=2)
    assert statuses(oak_api, 3) == [200, 200, 401]
    assert "expired" in imsx_description(oak_api.get("orgs"))
    fresh = {"Authorization": f"Bearer {fetch_token(oak)}"}
    assert oak_api.get("orgs", headers=fresh).status_code == 200


def test_endpoint_fails_from_an_offset_until_cleared(oak: ServedDistrict, oak_api: httpx.Client) -> None:
    oak.faults.fail_endpoint("users", status=500, after_offset=50)
    assert oak_api.get("users", params={"offset": 0, "limit": 50}).status_code == 200
    assert oak_api.get("users", params={"offset": 50, "limit": 50}).status_code == 500
    assert oak_api.get("users", params={"offset": 100, "limit": 50}).status_code == 500
    assert oak_api.get("enrollments", params={"offset": 100}).status_code == 200
    oak.faults.clear()
    assert oak_api.get("users", params={"offset": 50, "limit": 50}).status_code == 200


def test_faults_spare_the_token_endpoint(oak: ServedDistrict) -> None:
    oak.faults.rate_limit(count=1).server_errors(count=1).drop_connections(count=1)
    oak.faults.html_pages(count=1).error_envelopes(count=1).truncate_bodies(count=1)
    assert fetch_token(oak)


def test_request_log_records_method_path_query_and_status(oak: ServedDistrict, oak_api: httpx.Client) -> None:
    oak_api.get("users", params={"limit": 5, "filter": "role='teacher'"})
    last = oak.server.request_log("oak")[-1]
    assert (last.method, last.path, last.status) == ("GET", "/oak/ims/oneroster/v1p1/users", 200)
    assert last.query == {"limit": "5", "filter": "role='teacher'"}
    assert oak.server.request_log("oak")[0].path == "/oak/oauth/token"
