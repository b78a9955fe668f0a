"""HTTPS to a provider: every client of a process shares one TLS context, and it still verifies certificates
(certifi's bundle, or the one SSL_CERT_FILE names)."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import orjson
import pytest

from roster_pipeline.oneroster import OAuth1HmacSha256, OneRosterClient, OneRosterError
from roster_pipeline_tests.notify_tests.receivers import SelfSignedCertificate


class _OneOrg(BaseHTTPRequestHandler):
    """Answers every GET with a collection of one org."""

    def do_GET(self) -> None:
        body = orjson.dumps({"orgs": [{"sourcedId": "o1", "status": "active", "name": "Org"}]})
        self.send_response(200)
        for header, value in (("Content-Type", "application/json"), ("X-Total-Count", "1")):
            self.send_header(header, value)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, format: str, *args: object) -> None:
        pass


@pytest.fixture
def https_provider(tmp_path: Path) -> Iterator[tuple[str, Path]]:
    """A provider answering one page of orgs over HTTPS on loopback; its base URL and its certificate."""
    certificate = SelfSignedCertificate(tmp_path)
    server = ThreadingHTTPServer(("127.0.0.1", 0), _OneOrg)
    server.socket = certificate.server_context().wrap_socket(server.socket, server_side=True)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield f"https://127.0.0.1:{server.server_port}/ims/oneroster/v1p1", certificate.cert_file
    server.shutdown()


def read_orgs(base_url: str) -> list[dict]:
    with OneRosterClient(base_url, OAuth1HmacSha256("key", "secret"), label="district 'oak'") as client:
        return [record for page in client.iter_pages("orgs") for record in page.records]


def test_clients_share_one_tls_context_which_trusts_the_bundle_ssl_cert_file_names(https_provider, monkeypatch):
    base_url, cert_file = https_provider
    monkeypatch.setenv("SSL_CERT_FILE", str(cert_file))
    first, second = (read_orgs(base_url) for _ in range(2))
    assert [org["sourcedId"] for org in first] == [org["sourcedId"] for org in second] == ["o1"]
    with (
        OneRosterClient(base_url, OAuth1HmacSha256("key", "secret")) as one,
        OneRosterClient(base_url, OAuth1HmacSha256("key", "secret")) as other,
    ):
        assert one._http._transport._pool._ssl_context is other._http._transport._pool._ssl_context


def test_a_certificate_nobody_vouches_for_is_refused(https_provider, monkeypatch):
    base_url, _ = https_provider
    monkeypatch.delenv("SSL_CERT_FILE", raising=False)
    monkeypatch.delenv("SSL_CERT_DIR", raising=False)
    with pytest.raises(OneRosterError) as raised:
        read_orgs(base_url)
    assert "district 'oak', endpoint orgs" in str(raised.value)
    assert "certificate" in str(raised.value).lower()
