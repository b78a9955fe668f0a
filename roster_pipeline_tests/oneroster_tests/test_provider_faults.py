"""A provider's real-world faults, each over real HTTP against the sandbox: what is retried until it passes, and
what fails with the provider's own words, the content type and the number of attempts."""

from __future__ import annotations

import socket
from collections.abc import Iterator

import pytest

from roster_pipeline.oneroster import (
    EndpointNotOffered,
    OAuth2ClientCredentials,
    OneRosterClient,
    OneRosterError,
    RetryPolicy,
)
from roster_pipeline.sandbox.faults import Faults
from roster_pipeline.sandbox.generator import DistrictSpec, SyntheticDistrict, generate_district
from roster_pipeline.sandbox.server import DistrictAuth, SandboxServer
from roster_pipeline_tests.oneroster_tests.conftest import SECRET, Sandbox

DISTRICT = "flaky"
HTML = "text/html; charset=utf-8"


@pytest.fixture(scope="module")
def flaky_district(sandbox: Sandbox) -> SyntheticDistrict:
    return sandbox.add(DISTRICT)


@pytest.fixture
def faults(sandbox: Sandbox, flaky_district: SyntheticDistrict) -> Iterator[Faults]:
    """The district's fault injector, on a fresh request log; whatever a test queued is cleared afterwards."""
    sandbox.server.clear_request_log(DISTRICT)
    yield sandbox.server.faults(DISTRICT)
    sandbox.server.faults(DISTRICT).clear()


def retry(max_attempts: int = 3, waits: list[float] | None = None) -> RetryPolicy:
    """A retry budget whose waits are recorded instead of slept, so a test spends no time backing off."""
    return RetryPolicy(max_attempts=max_attempts, sleep=(waits if waits is not None else []).append)


def user_ids(records: list[dict]) -> list[str]:
    return [record["sourcedId"] for record in records]


def users_statuses(sandbox: Sandbox) -> list[tuple[int, str | None]]:
    """(status, injected fault) of every users request the district saw."""
    return [(r.status, r.fault) for r in sandbox.request_log(DISTRICT) if r.path.endswith("/users")]


def fail_to_fetch_users(sandbox: Sandbox, timeout: float = 10.0) -> OneRosterError:
    """The error that fetching every user ends with, on a budget of 3 attempts (one page at a time, so the first
    page is the one failing)."""
    client = sandbox.client(DISTRICT, retry=retry(), timeout=timeout, max_concurrency=1)
    with client, pytest.raises(OneRosterError) as caught:
        client.fetch_all("users")
    return caught.value


# --- HTTP 500 and the statuses that are final ------------------------------------------------------------------


def test_a_500_on_a_page_is_retried_and_the_sync_gets_every_record(sandbox, faults, flaky_district):
    waits: list[float] = []
    faults.server_errors(count=2, status=500, description="Backend database unavailable")
    with sandbox.client(DISTRICT, retry=retry(waits=waits), page_size=50) as client:
        records = client.fetch_all("users")
    assert user_ids(records) == user_ids(flaky_district.records("users"))
    assert len(waits) == 2
    assert [status for status, _ in users_statuses(sandbox)].count(500) == 2


def test_a_500_that_persists_fails_after_the_budget_quoting_the_provider_and_counting_attempts(sandbox, faults):
    faults.server_errors(count=10, status=500, description="Backend database unavailable")
    error = fail_to_fetch_users(sandbox)
    assert str(error).startswith("district 'flaky', endpoint users, page offset=0: HTTP 500 after 3 attempts")
    assert "imsx_description=Backend database unavailable" in str(error)
    assert "application/json" in str(error)
    assert (error.status, error.description) == (500, "Backend database unavailable")
    assert users_statuses(sandbox) == [(500, "server_error")] * 3


@pytest.mark.parametrize("status", [400, 501])
def test_a_4xx_or_a_501_is_final_and_asked_only_once(sandbox, faults, status):
    # 501 means the provider does not offer the endpoint, 400 that the request is wrong: asking again cannot help.
    faults.fail_endpoint("users", status=status)
    error = fail_to_fetch_users(sandbox)
    assert f"page offset=0: HTTP {status} (application/json: imsx_codeMajor=failure" in str(error)
    assert users_statuses(sandbox) == [(status, "endpoint")]


def test_an_optional_endpoint_not_offered_says_what_the_provider_said(sandbox):
    # A 403 or 404 is skipped as "not offered"; the provider's words tell a missing endpoint from a missing scope.
    sandbox.add("no-courses", offered={"academicSessions", "orgs", "users", "classes", "enrollments"})
    with sandbox.client("no-courses") as client, pytest.raises(EndpointNotOffered) as caught:
        client.fetch_all("courses")
    assert "HTTP 404: optional endpoint not offered by this provider (application/json: " in str(caught.value)
    assert caught.value.description == "endpoint 'courses' is not offered by this district"


# --- HTML where JSON was expected -----------------------------------------------------------------------------


def test_a_maintenance_page_served_with_503_is_named_by_its_title_and_content_type(sandbox, faults):
    faults.html_pages(count=10, status=503, title="Scheduled maintenance")
    error = fail_to_fetch_users(sandbox)
    assert str(error).endswith(f"HTTP 503 after 3 attempts ({HTML}: 'Scheduled maintenance')")
    assert "<html" not in str(error)


def test_a_maintenance_page_served_with_200_is_retried_until_the_api_is_back(sandbox, faults, flaky_district):
    waits: list[float] = []
    faults.html_pages(count=2, status=200)
    with sandbox.client(DISTRICT, retry=retry(waits=waits), page_size=50) as client:
        records = client.fetch_all("users")
    assert user_ids(records) == user_ids(flaky_district.records("users"))
    assert len(waits) == 2


def test_a_maintenance_page_served_with_200_that_stays_fails_naming_it(sandbox, faults):
    faults.html_pages(count=10, status=200, title="Scheduled maintenance")
    error = fail_to_fetch_users(sandbox)
    assert str(error).endswith(f"HTTP 200 after 3 attempts: response is not JSON ({HTML}: 'Scheduled maintenance')")
    assert users_statuses(sandbox) == [(200, "html")] * 3


def test_a_record_looked_up_by_id_is_retried_past_a_maintenance_page(sandbox, faults, flaky_district):
    user = flaky_district.records("users")[0]
    faults.html_pages(count=1, status=200)
    with sandbox.client(DISTRICT, retry=retry()) as client:
        record = client.get_record("users", user["sourcedId"])
    assert record is not None and record["sourcedId"] == user["sourcedId"]


def test_provider_text_in_an_error_loses_its_control_characters(sandbox, faults):
    # A title is the provider's text, not ours: escape sequences and line breaks must not reach a terminal or a log.
    faults.html_pages(count=10, status=503, title="Down\x1b[31m for\r\nmaintenance\x07")
    error = fail_to_fetch_users(sandbox)
    assert str(error).endswith(f"({HTML}: 'Down [31m for maintenance')")


# --- a 200 that is not the records --------------------------------------------------------------------------


def test_an_imsx_error_envelope_served_with_200_fails_at_once_quoting_its_description(sandbox, faults):
    # The provider answered deliberately; asking again would get the same answer.
    faults.error_envelopes(count=1, description="Service suspended for this tenant")
    error = fail_to_fetch_users(sandbox)
    assert "HTTP 200 without a 'users' array (application/json: imsx_codeMajor=failure" in str(error)
    assert (error.status, error.code_major, error.description) == (200, "failure", "Service suspended for this tenant")
    assert users_statuses(sandbox) == [(200, "envelope")]


@pytest.mark.parametrize("how", ["length", "json"])
def test_a_body_cut_short_is_retried_and_the_sync_gets_every_record(sandbox, faults, flaky_district, how):
    waits: list[float] = []
    faults.truncate_bodies(count=2, how=how)
    with sandbox.client(DISTRICT, retry=retry(waits=waits), page_size=50) as client:
        records = client.fetch_all("users")
    assert user_ids(records) == user_ids(flaky_district.records("users"))
    assert len(waits) == 2
    assert [fault for _, fault in users_statuses(sandbox)].count("truncate") == 2


@pytest.mark.parametrize(
    ("how", "said"),
    [
        (
            "length",
            "RemoteProtocolError after 3 attempts: peer closed connection without sending complete message body",
        ),
        ("json", "HTTP 200 after 3 attempts: response JSON is cut short or malformed: "),
    ],
)
def test_a_body_cut_short_on_every_attempt_fails_saying_so(sandbox, faults, how, said):
    faults.truncate_bodies(count=10, how=how)
    error = fail_to_fetch_users(sandbox)
    assert f"page offset=0: {said}" in str(error)


# --- the connection itself ------------------------------------------------------------------------------------


def test_a_hang_past_the_read_timeout_is_retried_and_then_succeeds(sandbox, faults, flaky_district):
    waits: list[float] = []
    faults.slow(seconds=1.0, count=1)
    with sandbox.client(DISTRICT, retry=retry(waits=waits), timeout=0.3, max_concurrency=1) as client:
        records = client.fetch_all("users")
    assert user_ids(records) == user_ids(flaky_district.records("users"))
    assert len(waits) == 1


def test_a_hang_on_every_attempt_fails_naming_the_read_timeout(sandbox, faults):
    faults.slow(seconds=0.6, count=3)
    error = fail_to_fetch_users(sandbox, timeout=0.2)
    assert str(error).endswith("page offset=0: ReadTimeout after 3 attempts: no response within the 0.2 s read timeout")


def test_a_connection_dropped_on_every_attempt_fails_counting_the_attempts(sandbox, faults):
    faults.drop_connections(count=10)
    error = fail_to_fetch_users(sandbox)
    assert "page offset=0: RemoteProtocolError after 3 attempts: Server disconnected" in str(error)


def unused_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def test_a_refused_connection_is_retried_until_the_provider_is_back():
    late = SandboxServer(port=unused_port())
    district = generate_district(DistrictSpec("late", seed=3))
    late.add_district(district, auth=DistrictAuth("oauth2", "late-id", SECRET))
    waits: list[float] = []

    def wait_then_come_up_on_the_second_retry(seconds: float) -> None:
        waits.append(seconds)
        if len(waits) == 2:
            late.start()

    auth = OAuth2ClientCredentials(late.token_url("late"), "late-id", SECRET)
    policy = RetryPolicy(max_attempts=4, sleep=wait_then_come_up_on_the_second_retry)
    try:
        with OneRosterClient(late.base_url("late"), auth, retry=policy, label="district 'late'") as client:
            records = client.fetch_all("users")
    finally:
        late.stop()
    assert user_ids(records) == user_ids(district.records("users"))
    assert len(waits) == 2


def test_a_connection_refused_on_every_attempt_fails_counting_the_attempts():
    base = f"http://127.0.0.1:{unused_port()}/nobody/ims/oneroster/v1p1"
    auth = OAuth2ClientCredentials(base + "/oauth/token", "nobody-id", SECRET)
    client = OneRosterClient(base, auth, retry=retry(), label="district 'nobody'")
    with client, pytest.raises(OneRosterError) as caught:
        client.fetch_all("users")
    assert str(caught.value).startswith(
        "district 'nobody', endpoint users, page offset=0: ConnectError after 3 attempts"
    )
