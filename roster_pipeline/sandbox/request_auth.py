"""How the sandbox authenticates clients: OAuth 2.0 client credentials and OAuth 1.0a HMAC-SHA256.

OneRoster 1.1 certifies OAuth 1.0a request signing (RFC 5849, two-legged, HMAC-SHA256 per the IMS Security
Framework) and OneRoster 1.1 deployments widely use OAuth 2.0 client credentials (RFC 6749 §4.4) instead.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import secrets
import threading
import time
from dataclasses import dataclass
from typing import Literal
from urllib.parse import parse_qsl, quote, unquote

DEFAULT_SCOPE = "https://purl.imsglobal.org/spec/or/v1p1/scope/roster-core.readonly"


class AuthError(Exception):
    """A request the server refuses with 401; the message becomes the imsx_description."""


@dataclass(frozen=True)
class DistrictAuth:
    """Credentials a district accepts: `kind` "oauth2" (token endpoint + bearer) or "oauth1" (signed).

    `scope` lists the scopes a client may be granted (all of them when it asks for none); `require_scope`
    makes the token endpoint refuse a request that names no scope, as some providers do.
    """

    kind: Literal["oauth2", "oauth1"]
    client_id: str
    client_secret: str
    scope: str = DEFAULT_SCOPE
    require_scope: bool = False

    def __post_init__(self) -> None:
        if self.kind not in ("oauth2", "oauth1"):
            raise ValueError(f"DistrictAuth.kind must be 'oauth2' or 'oauth1', not {self.kind!r}")


def client_credentials(headers: dict[str, str], form: dict[str, str]) -> tuple[str, str]:
    """The (client_id, client_secret) a token request presents, from HTTP Basic or the form body.

    RFC 6749 §2.3.1: client_secret_basic form-encodes id and secret before base64, so both are unquoted.
    """
    header = headers.get("authorization", "")
    if header[:6].lower() == "basic ":
        try:
            decoded = base64.b64decode(header[6:].strip(), validate=True).decode()
        except (binascii.Error, UnicodeDecodeError):
            raise AuthError("malformed HTTP Basic credentials on the token request") from None
        client_id, sep, secret = decoded.partition(":")
        if not sep:
            raise AuthError("HTTP Basic credentials must be 'client_id:client_secret'")
        return unquote(client_id.replace("+", " ")), unquote(secret.replace("+", " "))
    if "client_id" in form and "client_secret" in form:
        return form["client_id"], form["client_secret"]
    raise AuthError("no client credentials: send HTTP Basic (client_secret_basic) or client_id/client_secret")


class TokenStore:
    """Bearer tokens issued by the token endpoints of one server. Thread-safe."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        # token -> (district, expires_at, epoch, granted scopes)
        self._tokens: dict[str, tuple[str, float, int, frozenset[str]]] = {}

    def issue(self, district_id: str, lifetime_s: float, epoch: int, scopes: frozenset[str] = frozenset()) -> str:
        """A new opaque token for `district_id`, valid for `lifetime_s` while the district's epoch holds."""
        token = secrets.token_urlsafe(32)
        with self._lock:
            self._tokens[token] = (district_id, time.monotonic() + lifetime_s, epoch, scopes)
        return token

    def check(self, district_id: str, header: str, epoch: int) -> frozenset[str]:
        """The scopes granted to the live bearer token in `header`, issued for this district and epoch.

        Raises AuthError for a missing, unknown, foreign or expired token.
        """
        scheme, _, token = header.partition(" ")
        if scheme.lower() != "bearer" or not token.strip():
            raise AuthError("missing bearer token: send 'Authorization: Bearer <access_token>'")
        with self._lock:
            issued = self._tokens.get(token.strip())
        if issued is None or issued[0] != district_id:
            raise AuthError("unknown access token")
        if time.monotonic() >= issued[1] or issued[2] != epoch:
            raise AuthError("access token expired")
        return issued[3]


def percent_encode(value: str) -> str:
    """RFC 5849 §3.6 percent-encoding: everything but unreserved characters, UTF-8, uppercase hex."""
    return quote(value, safe="~")


class OAuth1Verifier:
    """Checks OAuth 1.0a HMAC-SHA256 signed requests (RFC 5849 §3.2) for one district. Thread-safe."""

    def __init__(self, consumer_key: str, consumer_secret: str, window_s: int = 300) -> None:
        self.consumer_key = consumer_key
        self._key = (percent_encode(consumer_secret) + "&").encode()  # no token secret: two-legged
        self.window_s = window_s
        self._lock = threading.Lock()
        self._nonces: dict[tuple[str, str], int] = {}  # (timestamp, nonce) -> timestamp

    def verify(self, method: str, base_uri: str, raw_query: str, authorization: str) -> None:
        """Raise AuthError unless the request is signed with this district's key and secret.

        `base_uri` is scheme://host[:port]/path as the client addressed it; `raw_query` is the query string
        exactly as it came over the wire, so parameters are decoded once, as RFC 5849 §3.4.1.3.1 requires.
        """
        query = parse_qsl(raw_query, keep_blank_values=True)
        oauth = _authorization_params(authorization) if authorization else {}
        if not oauth:  # §3.5.3: the protocol parameters may travel in the query string instead
            oauth = {k: v for k, v in query if k.startswith("oauth_")}
            query = [(k, v) for k, v in query if not k.startswith("oauth_")]
        for name in (
            "oauth_consumer_key",
            "oauth_signature_method",
            "oauth_timestamp",
            "oauth_nonce",
            "oauth_signature",
        ):
            if name not in oauth:
                raise AuthError(f"OAuth 1.0a request is missing {name}")
        if oauth["oauth_consumer_key"] != self.consumer_key:
            raise AuthError("unknown oauth_consumer_key")
        if oauth["oauth_signature_method"] != "HMAC-SHA256":
            raise AuthError(f"unsupported oauth_signature_method {oauth['oauth_signature_method']!r}; use HMAC-SHA256")
        if oauth.get("oauth_version", "1.0") != "1.0":
            raise AuthError("oauth_version must be 1.0")
        params = query + [(k, v) for k, v in oauth.items() if k not in ("oauth_signature", "realm")]
        normalized = "&".join(f"{k}={v}" for k, v in sorted((percent_encode(k), percent_encode(v)) for k, v in params))
        base_string = "&".join((method.upper(), percent_encode(base_uri), percent_encode(normalized)))
        expected = base64.b64encode(hmac.new(self._key, base_string.encode(), hashlib.sha256).digest()).decode()
        if not hmac.compare_digest(expected, oauth["oauth_signature"]):
            raise AuthError("invalid oauth_signature (HMAC-SHA256 over the RFC 5849 signature base string)")
        self._check_fresh(oauth["oauth_timestamp"], oauth["oauth_nonce"])

    def _check_fresh(self, timestamp: str, nonce: str) -> None:
        # §3.3: the timestamp bounds how long a nonce must be remembered, so replays inside the window are
        # caught and nonces older than the window can be forgotten.
        try:
            stamp = int(timestamp)
        except ValueError:
            raise AuthError("oauth_timestamp must be an integer number of seconds") from None
        now = int(time.time())
        if abs(now - stamp) > self.window_s:
            raise AuthError(f"oauth_timestamp is outside the {self.window_s}s window of the server clock")
        with self._lock:
            if (timestamp, nonce) in self._nonces:
                raise AuthError("oauth_nonce was already used with this timestamp")
            self._nonces[(timestamp, nonce)] = stamp
            if len(self._nonces) > 10_000:
                self._nonces = {k: v for k, v in self._nonces.items() if now - v <= self.window_s}


def _authorization_params(header: str) -> dict[str, str]:
    """Parameters of an `Authorization: OAuth k="v", ...` header, percent-decoded (RFC 5849 §3.5.1)."""
    scheme, _, rest = header.strip().partition(" ")
    if scheme.lower() != "oauth":
        raise AuthError("expected 'Authorization: OAuth ...' with an HMAC-SHA256 signature")
    params = {}
    for item in rest.split(","):
        name, sep, value = item.strip().partition("=")
        if not sep or len(value) < 2 or value[0] != '"' or value[-1] != '"':
            raise AuthError(f"malformed OAuth Authorization parameter {item.strip()!r}")
        params[unquote(name)] = unquote(value[1:-1])
    return params
