"""A client syncs whole districts over real HTTP with either OAuth flavour, or fails clearly."""

import pytest

from roster_pipeline.oneroster import ENDPOINTS_V1P1, OAuth2ClientCredentials, OneRosterClient, OneRosterError
from roster_pipeline.sandbox.generator import DistrictSpec, generate_district
from roster_pipeline.sandbox.server import DistrictAuth, SandboxServer

from .conftest import SECRET, settled_log


def ids(records):
    return [record["sourcedId"] for record in records]


@pytest.mark.parametrize(
    "kind, client_auth_method",
    [("oauth2", "client_secret_basic"), ("oauth2", "client_secret_post"), ("oauth1", None)],
)
def test_client_syncs_every_endpoint_of_a_district(sandbox, kind, client_auth_method):
    district_id = f"sync-{kind}-{client_auth_method or 'signed'}".replace("_", "-")
    district = sandbox.add(district_id, kind=kind)
    options = {"client_auth_method": client_auth_method} if client_auth_method else {}
    with sandbox.client(district_id, kind=kind, page_size=25, **options) as client:
        for spec in ENDPOINTS_V1P1:
            records = client.fetch_all(spec)
            assert ids(records) == ids(district.records(spec.name)), spec.name
            assert len(records) == district.counts()[spec.name] > 0


def test_records_arrive_normalized(sandbox):
    sandbox.add("normalized")
    with sandbox.client("normalized") as client:
        users = client.fetch_all("users")
        enrollments = client.fetch_all("enrollments")
    assert {type(user["enabledUser"]) for user in users} == {bool}
    assert {type(enrollment["primary"]) for enrollment in enrollments} == {bool}
    assert all(user["dateLastModified"].utcoffset().total_seconds() == 0 for user in users)
    assert {user["status"] for user in users} <= {"active", "tobedeleted"}


@pytest.mark.parametrize("kind", ["oauth2", "oauth1"])
def test_wrong_secret_fails_naming_district_and_endpoint_without_the_secret(sandbox, kind):
    district_id = f"wrong-secret-{kind}"
    sandbox.add(district_id, kind=kind)
    wrong = "Wr0ng-secret-xyz"
    with sandbox.client(district_id, kind=kind, secret=wrong) as client, pytest.raises(OneRosterError) as caught:
        client.fetch_all("users")
    message = str(caught.value)
    assert message.startswith(f"district '{district_id}', endpoint users, page offset=0: ")
    assert "401" in message
    assert "check" in message
    assert wrong not in message and SECRET not in message
    assert caught.value.__cause__ is None  # nothing chained that could carry request details
    assert caught.value.status == 401


def test_a_401_that_survives_token_renewal_fails_after_exactly_one_renewal():
    # Tokens from this server are dead on arrival, so renewing cannot help.
    with SandboxServer(token_lifetime_s=0) as server:
        server.add_district(generate_district(DistrictSpec("dead-tokens")), auth=DistrictAuth("oauth2", "dt", SECRET))
        auth = OAuth2ClientCredentials(server.token_url("dead-tokens"), "dt", SECRET)
        client = OneRosterClient(server.base_url("dead-tokens"), auth, label="district 'dead-tokens'")
        with client, pytest.raises(OneRosterError) as caught:
            client.fetch_all("orgs")
        log = settled_log(server, "dead-tokens")
    assert str(caught.value).startswith(
        "district 'dead-tokens', endpoint orgs, page offset=0: HTTP 401 after token refresh"
    )
    assert "access token expired" in str(caught.value)
    assert [r.status for r in log if r.path.endswith("/orgs")] == [401, 401]


def test_error_bodies_wrapped_in_status_info_set_are_reported(sandbox):
    district = generate_district(DistrictSpec("wrapped-errors"))
    sandbox.server.add_district(district, auth=DistrictAuth("oauth1", "wrapped-errors-id", SECRET), wrap_errors=True)
    with (
        sandbox.client("wrapped-errors", kind="oauth1", secret="not-it") as client,
        pytest.raises(OneRosterError) as caught,
    ):
        client.fetch_all("users")
    assert caught.value.code_major == "failure"
    assert "imsx_description=invalid oauth_signature" in str(caught.value)
