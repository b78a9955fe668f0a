"""OAuth 2.0 client credentials: the token endpoint and bearer checks on every API request."""

from __future__ import annotations

import time
from collections.abc import Callable

import httpx
import pytest

from roster_pipeline.sandbox.server import SandboxServer
from roster_pipeline_tests.conftest import ServedDistrict
from roster_pipeline_tests.sandbox_tests.raw_http import fetch_token, imsx_description

GRANT = {"grant_type": "client_credentials"}


def test_client_secret_basic_gets_a_bearer_token(oak: ServedDistrict) -> None:
    response = httpx.post(oak.token_url, data=GRANT, auth=(oak.auth.client_id, oak.auth.client_secret))
    assert response.status_code == 200
    body = response.json()
    assert body["token_type"] == "bearer" and body["expires_in"] == 3600 and body["access_token"]
    assert response.headers["cache-control"] == "no-store"


def test_client_secret_post_gets_a_bearer_token(oak: ServedDistrict) -> None:
    form = {**GRANT, "client_id": oak.auth.client_id, "client_secret": oak.auth.client_secret}
    response = httpx.post(oak.token_url, data=form)
    assert response.status_code == 200 and response.json()["access_token"]


def test_requested_scope_is_granted_when_allowed(oak: ServedDistrict) -> None:
    form = {**GRANT, "scope": oak.auth.scope}
    response = httpx.post(oak.token_url, data=form, auth=(oak.auth.client_id, oak.auth.client_secret))
    assert response.json()["scope"] == oak.auth.scope
    form["scope"] = "https://purl.imsglobal.org/spec/or/v1p1/scope/roster.createput"
    response = httpx.post(oak.token_url, data=form, auth=(oak.auth.client_id, oak.auth.client_secret))
    assert response.status_code == 400 and response.json()["error"] == "invalid_scope"


@pytest.mark.parametrize("credentials", [("oak-client", "Wr0ng-S3cret"), ("someone-else", "oak-secret")])
def test_wrong_credentials_get_401_with_imsx_body(oak: ServedDistrict, credentials: tuple[str, str]) -> None:
    response = httpx.post(oak.token_url, data=GRANT, auth=credentials)
    assert response.status_code == 401
    assert response.json()["error"] == "invalid_client"
    assert "client authentication failed" in imsx_description(response)
    assert credentials[1] not in response.text  # never echo a secret


def test_other_grant_types_are_refused(oak: ServedDistrict) -> None:
    auth = (oak.auth.client_id, oak.auth.client_secret)
    response = httpx.post(oak.token_url, data={"grant_type": "password"}, auth=auth)
    assert response.status_code == 400 and response.json()["error"] == "unsupported_grant_type"
    assert httpx.get(oak.token_url).status_code == 405


def test_api_requires_a_bearer_token(oak: ServedDistrict) -> None:
    for headers in ({}, {"Authorization": "Bearer not-a-token"}, {"Authorization": "Basic b2FrOm9haw=="}):
        response = httpx.get(f"{oak.base_url}/users", headers=headers)
        assert response.status_code == 401
        assert response.json()["imsx_CodeMinor"]["imsx_codeMinorField"][0]["imsx_codeMinorFieldValue"] == (
            "unauthorisedrequest"
        )
    assert (
        httpx.get(f"{oak.base_url}/users", headers={"Authorization": f"Bearer {fetch_token(oak)}"}).status_code == 200
    )


def test_a_token_is_valid_only_for_its_own_district(served_district: Callable[..., ServedDistrict]) -> None:
    oak, elm = served_district("oak2", seed=1), served_district("elm2", seed=2)
    response = httpx.get(f"{elm.base_url}/users", headers={"Authorization": f"Bearer {fetch_token(oak)}"})
    assert response.status_code == 401 and "unknown access token" in imsx_description(response)


def test_tokens_expire_after_their_lifetime(oak: ServedDistrict, sandbox_server: SandboxServer) -> None:
    sandbox_server.token_lifetime_s = 0.3
    token = fetch_token(oak)
    headers = {"Authorization": f"Bearer {token}"}
    assert httpx.get(f"{oak.base_url}/orgs", headers=headers).status_code == 200
    time.sleep(0.4)
    response = httpx.get(f"{oak.base_url}/orgs", headers=headers)
    assert response.status_code == 401 and "expired" in imsx_description(response)


def test_oauth1_districts_have_no_token_endpoint(served_district: Callable[..., ServedDistrict]) -> None:
    elm = served_district("elm", auth_kind="oauth1")
    response = httpx.post(elm.token_url, data=GRANT, auth=(elm.auth.client_id, elm.auth.client_secret))
    assert response.status_code == 404
