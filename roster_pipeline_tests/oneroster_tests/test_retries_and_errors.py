"""Transient failures are retried over real HTTP; permanent ones fail with where and why."""

import pytest

from roster_pipeline.oneroster import EndpointNotOffered, OneRosterError, RetryPolicy


def api_requests(sandbox, district_id, endpoint="users"):
    return [r for r in sandbox.request_log(district_id) if r.path.endswith(f"/{endpoint}")]


def token_requests(sandbox, district_id):
    return [r for r in sandbox.request_log(district_id) if r.path.endswith("/oauth/token")]


@pytest.fixture(scope="module")
def faulty_district(sandbox):
    return sandbox.add("faulty")


@pytest.fixture
def faulty(sandbox, faulty_district):
    """The shared district, with whatever faults a test injected cleared afterwards."""
    yield faulty_district
    sandbox.server.faults("faulty").clear()


def expected_users(district):
    return [record["sourcedId"] for record in district.records("users")]


def test_rate_limit_burst_is_retried_honouring_retry_after(sandbox, faulty):
    sleeps: list[float] = []
    with sandbox.client("faulty", sleeps=sleeps, page_size=50) as client:
        client.fetch_all("orgs")  # token and connection first, so the burst hits the users pages
        sandbox.server.faults("faulty").rate_limit(count=3, retry_after=2)
        records = client.fetch_all("users")
    assert [r["sourcedId"] for r in records] == expected_users(faulty)
    assert sleeps == [2.0, 2.0, 2.0]
    assert [r.status for r in api_requests(sandbox, "faulty")].count(429) == 3


@pytest.mark.parametrize("status", [502, 503, 504])
def test_server_error_burst_is_retried_with_capped_jittered_backoff(sandbox, faulty, status):
    sleeps: list[float] = []
    retry = RetryPolicy(max_attempts=5, base_delay=0.5, max_delay=1.5, sleep=sleeps.append, random=lambda: 1.0)
    with sandbox.client("faulty", retry=retry, max_concurrency=1, page_size=50) as client:
        client.fetch_all("orgs")
        sandbox.server.faults("faulty").server_errors(count=3, status=status)
        records = client.fetch_all("users")
    assert [r["sourcedId"] for r in records] == expected_users(faulty)
    assert sleeps == [0.5, 1.0, 1.5]  # 0.5 · 2^n capped at max_delay (jitter pinned to its maximum)


def test_a_dropped_connection_is_retried(sandbox, faulty):
    sleeps: list[float] = []
    with sandbox.client("faulty", sleeps=sleeps, page_size=50) as client:
        client.fetch_all("orgs")
        sandbox.server.faults("faulty").drop_connections(count=2)
        records = client.fetch_all("users")
    assert [r["sourcedId"] for r in records] == expected_users(faulty)
    assert len(sleeps) == 2


def test_a_token_expiring_mid_sync_is_renewed_exactly_once(sandbox, faulty):
    before = len(token_requests(sandbox, "faulty"))
    with sandbox.client("faulty", page_size=10, max_concurrency=4) as client:
        client.fetch_all("orgs")
        sandbox.server.faults("faulty").expire_tokens_after(requests=3)
        records = client.fetch_all("users")
    assert [r["sourcedId"] for r in records] == expected_users(faulty)
    assert len(token_requests(sandbox, "faulty")) - before == 2  # the first token and one renewal
    assert 401 in [r.status for r in api_requests(sandbox, "faulty")]


def test_exhausted_retries_report_the_attempts_and_the_imsx_payload(sandbox, faulty):
    retry = RetryPolicy(max_attempts=3, sleep=lambda _: None)
    with sandbox.client("faulty", retry=retry) as client:
        client.fetch_all("orgs")
        sandbox.server.faults("faulty").server_errors(count=10, status=503)
        with pytest.raises(OneRosterError) as caught:
            client.fetch_all("users")
    message = str(caught.value)
    assert message.startswith("district 'faulty', endpoint users, page offset=0: HTTP 503 after 3 attempts")
    assert "imsx_codeMajor=failure" in message
    assert caught.value.status == 503


def test_a_required_endpoint_failing_mid_sync_names_the_page(sandbox, faulty):
    sandbox.server.faults("faulty").fail_endpoint("users", status=500, after_offset=40)
    with sandbox.client("faulty", page_size=20) as client, pytest.raises(OneRosterError) as caught:
        client.fetch_all("users")
    assert "endpoint users, page offset=40: HTTP 500" in str(caught.value)
    assert caught.value.offset == 40 and caught.value.code_major == "failure"


def test_an_optional_endpoint_that_404s_is_not_offered(sandbox):
    sandbox.add("no-extras", offered={"academicSessions", "orgs", "users", "classes", "enrollments"})
    with sandbox.client("no-extras") as client:
        for endpoint in ("courses", "demographics"):
            with pytest.raises(EndpointNotOffered) as caught:
                client.fetch_all(endpoint)
            assert caught.value.status == 404 and caught.value.endpoint == endpoint
        assert client.fetch_all("users")


def test_a_required_endpoint_that_404s_is_an_error_not_a_skip(sandbox):
    sandbox.add("no-enrollments", offered={"academicSessions", "orgs", "users", "classes"})
    with sandbox.client("no-enrollments") as client, pytest.raises(OneRosterError) as caught:
        client.fetch_all("enrollments")
    assert not isinstance(caught.value, EndpointNotOffered)
    assert "district 'no-enrollments', endpoint enrollments, page offset=0: HTTP 404" in str(caught.value)
