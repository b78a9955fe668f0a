"""A token endpoint that echoes what it was sent — the form body (the secret form-encoded), the Basic header (base64 of
``id:secret``), the values decoded — must not carry the secret, in any of those forms, into an error's text.

Over real HTTP: a small token endpoint on 127.0.0.1 answers every token request with the request quoted back, as an
OAuth error, a plain-text 503 page or an imsx status; the client meets it as it meets any provider."""

from __future__ import annotations

import base64
import json
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qsl, quote, quote_plus

import pytest

from roster_pipeline.oneroster import OAuth1HmacSha256, OAuth2ClientCredentials, OneRosterClient, OneRosterError
from roster_pipeline.oneroster.auth import mask_secrets, secret_forms
from roster_pipeline.oneroster.client import RetryPolicy

# (client id, secret): the review's example; one with a space, a percent sign, quotes, a backslash and non-ASCII;
# and a plain one, whose core word is checked for as well.
CREDENTIALS = [
    ("oak-id", "s3cr+t/x="),
    ("oak id+1", "pä ss:w%rd&=+/\\\"'~*"),
    ("oak-id", "Zq9-secret-value-7"),
]


def basic(client_id: str, secret: str, *, encoded: bool) -> str:
    pair = f"{quote_plus(client_id)}:{quote_plus(secret)}" if encoded else f"{client_id}:{secret}"
    return base64.b64encode(pair.encode()).decode()


def forms_of(client_id: str, secret: str) -> list[str]:
    """The forms the review names, worked out here independently of `secret_forms`."""
    forms = [secret, quote(secret, safe=""), quote_plus(secret)]
    for encoded in (False, True):
        padded = basic(client_id, secret, encoded=encoded)
        forms += [padded, padded.rstrip("=")]
    if "secret-value" in secret:
        forms.append("secret-value")
    return forms


def leaks(text: str, client_id: str, secret: str) -> list[str]:
    return [form for form in forms_of(client_id, secret) if form in text]


class EchoTokenEndpoint:
    """Answers every POST with what it was sent: the raw body, the Authorization header and the decoded form, in the
    shape of `answer` — an OAuth error (401, JSON), a 503 page (text), a 503 imsx status (JSON) or a 503 page whose
    echo runs past the 200 characters an error quotes. GETs (the API) answer an empty users page."""

    def __init__(self) -> None:
        self.answer = "oauth401"
        self.padding = 0
        self.requests: list[tuple[str, str]] = []
        self._server = ThreadingHTTPServer(("127.0.0.1", 0), self._handler())
        self.base_url = f"http://127.0.0.1:{self._server.server_address[1]}"
        self.token_url = f"{self.base_url}/token"

    def _handler(self) -> type[BaseHTTPRequestHandler]:
        endpoint = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers.get("Content-Length", 0))).decode()
                authorization = self.headers.get("Authorization", "")
                endpoint.requests.append((body, authorization))
                decoded = dict(parse_qsl(body))
                if authorization.startswith("Basic "):
                    decoded["basic"] = base64.b64decode(authorization[6:]).decode()
                echo = f"you sent {body} with Authorization: {authorization}; we read {decoded}"
                if endpoint.answer == "oauth401":
                    status, kind = 401, "application/json"
                    answer = json.dumps({"error": "invalid_client", "error_description": echo})
                elif endpoint.answer == "imsx503":
                    status, kind = 503, "application/json"
                    info = {"imsx_codeMajor": "failure", "imsx_severity": "error", "imsx_description": echo}
                    answer = json.dumps({"imsx_statusInfo": info})
                else:
                    status, kind = 503, "text/plain"
                    answer = "x" * endpoint.padding + echo
                self._send(status, kind, answer.encode())

            def do_GET(self) -> None:
                self._send(200, "application/json", b'{"users": []}')

            def _send(self, status: int, kind: str, answer: bytes) -> None:
                self.send_response(status)
                self.send_header("Content-Type", kind)
                self.send_header("Content-Length", str(len(answer)))
                self.end_headers()
                self.wfile.write(answer)

            def log_message(self, format: str, *args: Any) -> None:
                pass

        return Handler

    def start(self) -> EchoTokenEndpoint:
        threading.Thread(target=self._server.serve_forever, daemon=True).start()
        return self

    def stop(self) -> None:
        self._server.shutdown()
        self._server.server_close()

    def client(self, client_id: str, secret: str, method: str) -> OneRosterClient:
        auth = OAuth2ClientCredentials(self.token_url, client_id, secret, client_auth_method=method)
        retry = RetryPolicy(max_attempts=2, sleep=lambda _: None)
        return OneRosterClient(self.base_url, auth, label="district 'echo'", retry=retry, timeout=10.0)


@pytest.fixture(scope="module")
def echo() -> Iterator[EchoTokenEndpoint]:
    endpoint = EchoTokenEndpoint().start()
    yield endpoint
    endpoint.stop()


def fail(echo: EchoTokenEndpoint, client_id: str, secret: str, method: str, *, probe: bool = False) -> OneRosterError:
    echo.requests.clear()
    with echo.client(client_id, secret, method) as client, pytest.raises(OneRosterError) as caught:
        if probe:
            client.request_token()
        else:
            client.fetch_all("users")
    body, authorization = echo.requests[-1]
    # The endpoint really was sent the secret in the forms checked for, so an empty `leaks` means each was masked.
    if method == "client_secret_post":
        assert f"client_secret={quote_plus(secret)}" in body
    else:
        assert authorization == f"Basic {basic(client_id, secret, encoded=True)}"
    return caught.value


METHODS = ["client_secret_basic", "client_secret_post"]


@pytest.mark.parametrize("method", METHODS)
@pytest.mark.parametrize(("client_id", "secret"), CREDENTIALS)
@pytest.mark.parametrize("probe", [False, True], ids=["sync", "check"])
def test_an_oauth_error_echoing_the_request_names_the_refusal_without_the_secret(
    echo, client_id, secret, method, probe
):
    echo.answer = "oauth401"
    error = fail(echo, client_id, secret, method, probe=probe)
    text = str(error)
    assert "rejected: HTTP 401 invalid_client (you sent " in text and "***" in text
    assert leaks(text, client_id, secret) == []
    assert leaks(error.detail, client_id, secret) == []


@pytest.mark.parametrize("method", METHODS)
@pytest.mark.parametrize(("client_id", "secret"), CREDENTIALS)
def test_a_503_page_echoing_the_request_is_quoted_without_the_secret(echo, client_id, secret, method):
    echo.answer, echo.padding = "text503", 0
    error = fail(echo, client_id, secret, method)
    text = str(error)
    assert "token request HTTP 503 after 2 attempts (text/plain: " in text and "you sent grant_type=" in text
    assert "***" in text
    assert leaks(text, client_id, secret) == []


@pytest.mark.parametrize("method", METHODS)
@pytest.mark.parametrize(("client_id", "secret"), CREDENTIALS)
def test_an_imsx_status_echoing_the_request_is_quoted_without_the_secret(echo, client_id, secret, method):
    echo.answer = "imsx503"
    error = fail(echo, client_id, secret, method)
    text = str(error)
    assert "token request HTTP 503 after 2 attempts (application/json: imsx_codeMajor=failure" in text
    assert leaks(text, client_id, secret) == []


@pytest.mark.parametrize("method", METHODS)
def test_the_imsx_description_attribute_is_redacted_too(echo, method):
    client_id, secret = CREDENTIALS[0]
    echo.answer = "imsx503"
    error = fail(echo, client_id, secret, method)
    assert error.description and leaks(error.description, client_id, secret) == []


@pytest.mark.parametrize("method", METHODS)
def test_a_secret_cut_off_where_the_excerpt_ends_is_masked_not_half_shown(echo, method):
    client_id, secret = CREDENTIALS[2]
    echo.answer = "text503"
    for padding in range(150, 200):  # the 200-character excerpt ends somewhere inside the echoed secret
        echo.padding = padding
        text = str(fail(echo, client_id, secret, method))
        excerpt = text.split("(text/plain: ", 1)[1][1:-2]  # the quoted excerpt, its quotes and bracket taken off
        assert excerpt.startswith("x" * padding) and excerpt.endswith("…") and len(excerpt) <= 200
        assert leaks(text, client_id, secret) == [], (padding, text)
        # What is left of a secret cut short is at most its first three characters.
        assert [size for size in range(4, len(secret)) if secret[:size] in text] == [], (padding, text)


def test_the_secret_forms_hold_every_form_the_review_names():
    for client_id, secret in CREDENTIALS:
        named = {secret, quote(secret, safe=""), quote_plus(secret)}
        named |= {basic(client_id, secret, encoded=encoded).rstrip("=") for encoded in (False, True)}
        assert named <= set(secret_forms(secret, client_id))


def test_the_oauth1_consumer_secret_is_masked_in_its_encoded_forms():
    auth = OAuth1HmacSha256("oak-key", "s3cr+t/x=")
    text = auth.redact("echo: oauth_consumer_secret=s3cr%2Bt%2Fx%3D, s3cr%2bt%2fx%3d and s3cr+t/x=")
    assert text == "echo: oauth_consumer_secret=***, *** and ***"


def test_masking_leaves_text_without_a_secret_alone():
    forms = secret_forms("Zq9-secret-value-7", "oak-id")
    for text in ("HTTP 503 after 2 attempts (text/plain: 'maintenance…')", "no secret here", "Zq9…"):
        assert mask_secrets(text, forms) == text
