"""OAuth 1.0a with HMAC-SHA256 (RFC 5849), signed independently here with authlib's base-string helpers."""

from __future__ import annotations

import base64
import hashlib
import hmac
import secrets
import time
from collections.abc import Callable
from urllib.parse import parse_qsl, quote, urlsplit

import httpx
import pytest
from authlib.oauth1.rfc5849.signature import construct_base_string

from roster_pipeline_tests.conftest import ServedDistrict
from roster_pipeline_tests.sandbox_tests.raw_http import imsx_description


def rfc3986(value: str) -> str:
    return quote(value, safe="~")


def oauth_header(
    method: str,
    wire_url: str,
    key: str,
    secret: str,
    timestamp: int | None = None,
    nonce: str | None = None,
    signature_method: str = "HMAC-SHA256",
) -> str:
    """An Authorization header signing `wire_url` exactly as it will be sent (RFC 5849 §3.4)."""
    oauth = {
        "oauth_consumer_key": key,
        "oauth_nonce": nonce or secrets.token_hex(8),
        "oauth_signature_method": signature_method,
        "oauth_timestamp": str(timestamp or int(time.time())),
        "oauth_version": "1.0",
    }
    parts = urlsplit(wire_url)
    params = parse_qsl(parts.query, keep_blank_values=True) + list(oauth.items())
    base_string = construct_base_string(method, f"{parts.scheme}://{parts.netloc}{parts.path}", params)
    signing_key = f"{rfc3986(secret)}&".encode()
    signature = base64.b64encode(hmac.new(signing_key, base_string.encode(), hashlib.sha256).digest()).decode()
    oauth["oauth_signature"] = signature
    return "OAuth " + ", ".join(f'{k}="{rfc3986(v)}"' for k, v in oauth.items())


@pytest.fixture
def elm(served_district: Callable[..., ServedDistrict]) -> ServedDistrict:
    return served_district("elm", auth_kind="oauth1")


def signed_get(served: ServedDistrict, wire_url: str, **header_options: object) -> httpx.Response:
    header = oauth_header("GET", wire_url, served.auth.client_id, served.auth.client_secret, **header_options)  # type: ignore[arg-type]
    return httpx.get(httpx.URL(wire_url), headers={"Authorization": header})


def test_correctly_signed_request_is_accepted(elm: ServedDistrict) -> None:
    response = signed_get(elm, f"{elm.base_url}/users?limit=5&offset=10")
    assert response.status_code == 200, response.text
    assert len(response.json()["users"]) == 5


def test_signature_covers_percent_encoded_filter_and_repeated_reserved_characters(elm: ServedDistrict) -> None:
    wire = f"{elm.base_url}/orgs?filter=name%3D%27O%27%27Brien%20%26%20Sons%27%20OR%20type%3D%27school%27&limit=50"
    response = signed_get(elm, wire)
    assert response.status_code == 200, response.text
    assert {o["type"] for o in response.json()["orgs"]} == {"school"}


def test_plus_in_the_query_decodes_to_a_space_when_signing(elm: ServedDistrict) -> None:
    response = signed_get(elm, f"{elm.base_url}/users?filter=role%3D%27student%27+AND+status%3D%27active%27")
    assert response.status_code == 200, response.text


def test_tampered_query_is_rejected(elm: ServedDistrict) -> None:
    header = oauth_header("GET", f"{elm.base_url}/users?limit=5", elm.auth.client_id, elm.auth.client_secret)
    response = httpx.get(f"{elm.base_url}/users?limit=500", headers={"Authorization": header})
    assert response.status_code == 401 and "invalid oauth_signature" in imsx_description(response)


def test_wrong_secret_unknown_key_and_wrong_method_are_rejected(elm: ServedDistrict) -> None:
    url = f"{elm.base_url}/users"
    cases = {
        "invalid oauth_signature": oauth_header("GET", url, elm.auth.client_id, "not-the-secret"),
        "unknown oauth_consumer_key": oauth_header("GET", url, "stranger", elm.auth.client_secret),
        "unsupported oauth_signature_method": oauth_header(
            "GET", url, elm.auth.client_id, elm.auth.client_secret, signature_method="HMAC-SHA1"
        ),
        # signed for POST but sent as GET: the method is part of the base string
        "invalid oauth_signature ": oauth_header("POST", url, elm.auth.client_id, elm.auth.client_secret),
    }
    for problem, header in cases.items():
        response = httpx.get(url, headers={"Authorization": header})
        assert response.status_code == 401
        assert problem.strip() in imsx_description(response)


def test_stale_timestamp_and_replayed_nonce_are_rejected(elm: ServedDistrict) -> None:
    url = f"{elm.base_url}/orgs"
    stale = signed_get(elm, url, timestamp=int(time.time()) - 3600)
    assert stale.status_code == 401 and "window" in imsx_description(stale)
    header = oauth_header("GET", url, elm.auth.client_id, elm.auth.client_secret, nonce="once")
    assert httpx.get(url, headers={"Authorization": header}).status_code == 200
    replay = httpx.get(url, headers={"Authorization": header})
    assert replay.status_code == 401 and "nonce" in imsx_description(replay)


def test_unsigned_request_is_rejected(elm: ServedDistrict) -> None:
    response = httpx.get(f"{elm.base_url}/users")
    assert response.status_code == 401 and "missing" in imsx_description(response)
