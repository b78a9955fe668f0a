"""Authentication for OneRoster REST providers, as ``httpx.Auth`` flows on Authlib's core.

Authlib's own httpx integration now warns that it is deprecated in favour of httpx2, and this project
stays on httpx 0.28 (Dagster uses it too), so the two flows here are small ``httpx.Auth`` subclasses
over Authlib's framework-agnostic OAuth 1 and OAuth 2 helpers.

Secrets and tokens never appear in a repr, an exception message or a log line: both classes redact
them and offer ``redact(text)`` so callers can scrub provider-supplied text before showing it, in every
form a provider may echo them (``secret_forms``: form-encoded, in a Basic header's base64, JSON-escaped).
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import re
import threading
import time
from collections.abc import Callable, Generator, Iterable
from dataclasses import dataclass
from urllib.parse import parse_qsl, quote, quote_plus, urlencode

import httpx
import orjson
from authlib.common.encoding import to_bytes, to_unicode
from authlib.oauth1.rfc5849.client_auth import ClientAuth as OAuth1ClientAuth
from authlib.oauth1.rfc5849.signature import SIGNATURE_TYPE_HEADER, generate_signature_base_string
from authlib.oauth1.rfc5849.util import escape
from authlib.oauth2.auth import ClientAuth as OAuth2ClientAuth
from authlib.oauth2.rfc6749.parameters import prepare_token_request

from .errors import AuthenticationFailed

SIGNATURE_HMAC_SHA256 = "HMAC-SHA256"
# Statuses of the token endpoint worth retrying; the client's retry policy handles them.
_RETRYABLE_TOKEN_STATUSES = frozenset({429, 500, 502, 503, 504})
_REDACTED = "***"


# A secret cut short where a provider's text was trimmed ("s3cr…") still gives its first characters away:
# a trailing piece this long of any form of a secret, just before the ellipsis, is masked too.
_TRIMMED = "…"
_TRIMMED_MIN_CHARS = 4
_PERCENT_ESCAPE = re.compile(r"%[0-9A-F]{2}")


def secret_forms(secret: str | None, client_id: str | None = None) -> list[str]:
    """Every form in which ``secret`` may come back in a provider's text, so that each can be masked.

    A token endpoint that echoes the request quotes the form body (the secret form-encoded) or the
    ``Authorization`` header (base64 of ``id:secret``, with or without RFC 6749 §2.3.1's form-encoding of
    both first); a JSON body or a ``repr`` escapes backslashes and quotes. With ``client_id`` the Basic
    forms are included; base64 without its padding, which a trimmed or re-encoded echo may lack.
    """
    if not secret:
        return []
    encoded = {quote(secret, safe=""), quote(secret), quote_plus(secret)}
    encoded |= {_PERCENT_ESCAPE.sub(lambda m: m.group(0).lower(), form) for form in encoded}
    escaped = {
        json.dumps(secret)[1:-1],
        json.dumps(secret, ensure_ascii=False)[1:-1],
        json.dumps(secret)[1:-1].replace("/", "\\/"),
        repr(secret)[1:-1],
        secret.replace("\\", "\\\\").replace("'", "\\'"),
        " ".join(secret.split()),
    }
    forms = {secret} | encoded | escaped
    if client_id is not None:
        pairs = {
            f"{client_id}:{secret}",
            f"{quote_plus(client_id)}:{quote_plus(secret)}",
            f"{quote(client_id, safe='')}:{quote(secret, safe='')}",
        }
        forms |= {to_unicode(base64.b64encode(to_bytes(pair))).rstrip("=") for pair in pairs}
    return sorted((form for form in forms if form), key=len, reverse=True)


def mask_secrets(text: str, forms: Iterable[str]) -> str:
    """``text`` with every occurrence of each of ``forms`` replaced by ``***`` (longest first), and a form's
    beginning cut off by a trim (``…``) masked as well."""
    ordered = sorted({form for form in forms if form}, key=len, reverse=True)
    for form in ordered:
        text = text.replace(form, _REDACTED)
    if _TRIMMED not in text:
        return text
    pieces = text.split(_TRIMMED)
    for index, piece in enumerate(pieces[:-1]):
        cut = max(
            (
                size
                for form in ordered
                for size in range(min(len(form) - 1, len(piece)), _TRIMMED_MIN_CHARS - 1, -1)
                if piece.endswith(form[:size])
            ),
            default=0,
        )
        if cut:
            pieces[index] = piece[:-cut] + _REDACTED
    return _TRIMMED.join(pieces)


def _redact(text: str, secrets: list[str | None], client_id: str | None = None) -> str:
    return mask_secrets(text, [form for secret in secrets for form in secret_forms(secret, client_id)])


# --- OAuth 2.0 client credentials (RFC 6749 §4.4) ---------------------------------------------------


def encode_client_secret_basic(
    client: OAuth2ClientAuth, method: str, uri: str, headers: dict[str, str], body: str
) -> tuple[str, dict[str, str], str]:
    """HTTP Basic client authentication as RFC 6749 §2.3.1 specifies it.

    The id and secret are form-encoded before base64 (Authlib's own encoder skips that step, which breaks
    secrets holding ``+``, ``%`` or ``:`` on servers that decode as the RFC says).
    """
    text = f"{quote_plus(client.client_id)}:{quote_plus(client.client_secret)}"
    headers["Authorization"] = f"Basic {to_unicode(base64.b64encode(to_bytes(text)))}"
    return uri, headers, body


@dataclass(frozen=True)
class _Token:
    access_token: str
    expires_at: float
    refresh_at: float

    def __repr__(self) -> str:
        return f"_Token(access_token={_REDACTED!r}, expires_at={self.expires_at:.0f})"


class OAuth2ClientCredentials(httpx.Auth):
    """OAuth 2.0 client-credentials grant with a shared, thread-safe token cache.

    The token is fetched through the same ``httpx.Client`` as the API requests, cached, and renewed
    shortly before it expires (60 s or 10 % of its lifetime, whichever is less). When the API answers
    401 the token is renewed once and the request retried once; a second 401 is returned to the client,
    which reports it. Concurrent requests that hit the same expired token share a single renewal.

    ``client_auth_method`` is ``"client_secret_basic"`` (HTTP Basic, the default) or
    ``"client_secret_post"`` (id and secret as form fields).
    """

    unauthorized_note = "after token refresh"
    unauthorized_hint = "check the client's permissions and scope for this endpoint"

    def __init__(
        self,
        token_url: str,
        client_id: str,
        client_secret: str,
        scope: str | None = None,
        client_auth_method: str = "client_secret_basic",
        *,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        if client_auth_method not in ("client_secret_basic", "client_secret_post"):
            raise ValueError(
                f"client_auth_method must be client_secret_basic or client_secret_post, got {client_auth_method!r}"
            )
        self.token_url = token_url
        self.client_id = client_id
        self._client_secret = client_secret
        self.scope = scope
        self.client_auth_method = client_auth_method
        self._clock = clock
        self._lock = threading.Lock()
        self._token: _Token | None = None

    def __repr__(self) -> str:
        return (
            f"OAuth2ClientCredentials(token_url={self.token_url!r}, client_id={self.client_id!r}, "
            f"client_secret={_REDACTED!r}, scope={self.scope!r}, "
            f"client_auth_method={self.client_auth_method!r})"
        )

    def redact(self, text: str) -> str:
        """Return ``text`` with the client secret and the current access token masked, in every form the token
        endpoint may echo them (see ``secret_forms``: form-encoded, in the Basic header's base64, ...)."""
        token = self._token
        return _redact(text, [self._client_secret, token.access_token if token else None], self.client_id)

    def auth_flow(self, request: httpx.Request) -> Generator[httpx.Request, httpx.Response, None]:
        token = self._token
        if token is None or self._clock() >= token.refresh_at:
            token = yield from self._renew(request, stale=token)
            if token is None:
                return  # the token endpoint's retryable response goes back to the client's retry loop
        request.headers["Authorization"] = f"Bearer {token.access_token}"
        response = yield request
        if response.status_code != 401:
            return
        # Read the 401 (releasing its pooled connection) before waiting on the token lock; otherwise
        # every pooled connection could be held by a waiter while the renewing thread needs one.
        response.read()
        token = yield from self._renew(request, stale=token)
        if token is None:
            return
        request.headers["Authorization"] = f"Bearer {token.access_token}"
        yield request

    def _renew(
        self, request: httpx.Request, stale: _Token | None
    ) -> Generator[httpx.Request, httpx.Response, _Token | None]:
        with self._lock:
            current = self._token
            # Another thread may have renewed while we waited for the lock: reuse its token.
            if current is not None and current is not stale and self._clock() < current.refresh_at:
                return current
            self._token = None
            response = yield self._token_request(request)
            response.read()
            if response.status_code in _RETRYABLE_TOKEN_STATUSES:
                return None
            self._token = self._parse_token_response(response)
            return self._token

    def request_token(self, http: httpx.Client) -> dict[str, object]:
        """Fetch a fresh token through ``http`` and cache it; return the grant without the token itself.

        For probing a connection (``roster-pipeline check``): the returned ``scope`` is what the server
        granted (``None`` when it does not say) and ``expires_in`` the lifetime it announced.
        """
        request = self._token_request(http.build_request("POST", self.token_url))
        response = http.send(request, auth=None)
        response.read()
        with self._lock:
            self._token = self._parse_token_response(response)
        try:
            payload = orjson.loads(response.content)
        except orjson.JSONDecodeError:
            payload = {}
        return {"scope": payload.get("scope"), "expires_in": payload.get("expires_in")}

    def _token_request(self, api_request: httpx.Request) -> httpx.Request:
        body = prepare_token_request("client_credentials", scope=self.scope)
        headers = {"Content-Type": "application/x-www-form-urlencoded", "Accept": "application/json"}
        method = encode_client_secret_basic if self.client_auth_method == "client_secret_basic" else None
        client_auth = OAuth2ClientAuth(self.client_id, self._client_secret, method or self.client_auth_method)
        _, headers, body = client_auth.prepare("POST", self.token_url, headers, body)
        # A hand-built request carries no timeout of its own: reuse the API request's explicit timeouts.
        extensions = {"timeout": api_request.extensions["timeout"]} if "timeout" in api_request.extensions else {}
        return httpx.Request("POST", self.token_url, headers=headers, content=to_bytes(body), extensions=extensions)

    def _parse_token_response(self, response: httpx.Response) -> _Token:
        try:
            payload = orjson.loads(response.content)
        except orjson.JSONDecodeError:
            payload = {}
        if not isinstance(payload, dict):
            payload = {}
        if response.status_code != 200 or not payload.get("access_token"):
            error = payload.get("error") or "no access_token in response"
            description = payload.get("error_description")
            detail = f"token request to {self.token_url} rejected: HTTP {response.status_code} {error}"
            if description:
                detail += f" ({description})"
            detail += f" — check client id {self.client_id!r} and its client secret"
            raise AuthenticationFailed(self.redact(detail), status=response.status_code)
        # RFC 6749 §5.1 makes expires_in optional; without it assume an hour and rely on 401 renewal.
        try:
            lifetime = max(0.0, float(payload.get("expires_in", 3600)))
        except (TypeError, ValueError):
            lifetime = 3600.0
        now = self._clock()
        margin = min(60.0, lifetime * 0.1)
        return _Token(str(payload["access_token"]), now + lifetime, now + lifetime - margin)


# --- OAuth 1.0a, HMAC-SHA256, two-legged (RFC 5849) -------------------------------------------------


def sign_hmac_sha256(client: OAuth1ClientAuth, request: object) -> str:
    """Authlib signature method for ``HMAC-SHA256``: RFC 5849 §3.4.2 with SHA-256 as the hash."""
    base_string = generate_signature_base_string(request)
    key = f"{escape(client.client_secret or '')}&{escape(client.token_secret or '')}"
    digest = hmac.new(to_bytes(key), to_bytes(base_string), hashlib.sha256).digest()
    return to_unicode(base64.b64encode(digest))


# Authlib keeps signature methods in a class-level (process-wide) table; register ours once.
if SIGNATURE_HMAC_SHA256 not in OAuth1ClientAuth.SIGNATURE_METHODS:
    OAuth1ClientAuth.register_signature_method(SIGNATURE_HMAC_SHA256, sign_hmac_sha256)


def signing_uri(url: httpx.URL) -> str:
    """The URL Authlib should sign for a request that goes on the wire as ``url``.

    RFC 5849 §3.4.1.3 signs the query parameters as decoded from the wire. httpx may leave characters
    such as ``'`` unencoded in a URL taken from a ``Link`` header, which Authlib's strict query parser
    rejects, so the query is decoded here exactly as a server decodes it (form decoding) and
    re-encoded canonically: the decoded parameters, and so the signature, are unchanged.
    """
    query = parse_qsl(url.query.decode("utf-8"), keep_blank_values=True)
    path = url.raw_path.split(b"?", 1)[0].decode("ascii")
    canonical = urlencode(query, quote_via=quote, safe="")
    return f"{url.scheme}://{url.netloc.decode('ascii')}{path}" + (f"?{canonical}" if canonical else "")


class OAuth1HmacSha256(httpx.Auth):
    """Two-legged OAuth 1.0a with HMAC-SHA256 signatures in the ``Authorization`` header.

    Each request is signed over its method, URL and every query parameter exactly as it goes on the
    wire (including ``limit``, ``offset`` and ``filter``, and URLs taken from ``Link`` headers).
    """

    unauthorized_note = ""
    unauthorized_hint = "check the consumer key and secret"

    def __init__(self, consumer_key: str, consumer_secret: str, realm: str | None = None) -> None:
        self.consumer_key = consumer_key
        self._consumer_secret = consumer_secret
        self.realm = realm

    def __repr__(self) -> str:
        return f"OAuth1HmacSha256(consumer_key={self.consumer_key!r}, consumer_secret={_REDACTED!r})"

    def redact(self, text: str) -> str:
        """Return ``text`` with the consumer secret masked, in every form a provider may echo it."""
        return _redact(text, [self._consumer_secret], self.consumer_key)

    def authorization_header(self, method: str, url: httpx.URL) -> str:
        """The ``Authorization: OAuth ...`` value for ``method`` on ``url`` (fresh nonce and timestamp)."""
        client = OAuth1ClientAuth(
            self.consumer_key,
            self._consumer_secret,
            signature_method=SIGNATURE_HMAC_SHA256,
            signature_type=SIGNATURE_TYPE_HEADER,
            realm=self.realm,
        )
        _, headers, _ = client.sign(method, signing_uri(url), {}, b"")
        return str(headers["Authorization"])

    def auth_flow(self, request: httpx.Request) -> Generator[httpx.Request, httpx.Response, None]:
        request.headers["Authorization"] = self.authorization_header(request.method, request.url)
        yield request
