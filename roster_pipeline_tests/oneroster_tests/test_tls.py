"""HTTPS to a provider: every client of a process shares one TLS context, and it still verifies certificates
(certifi's bundle, or the one SSL_CERT_FILE names)."""

from __future__ import annotations

import datetime as dt
import ipaddress
import ssl
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import orjson
import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from roster_pipeline.oneroster import OAuth1HmacSha256, OneRosterClient, OneRosterError


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


def self_signed(folder: Path) -> tuple[Path, Path]:
    """A certificate for 127.0.0.1 signed by its own key, and that key, as PEM files."""
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "roster test provider")])
    now = dt.datetime.now(dt.UTC)
    certificate = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(minutes=5))
        .not_valid_after(now + dt.timedelta(hours=1))
        .add_extension(x509.SubjectAlternativeName([x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]), False)
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .sign(key, hashes.SHA256())
    )
    cert_file, key_file = folder / "provider.pem", folder / "provider.key"
    cert_file.write_bytes(certificate.public_bytes(serialization.Encoding.PEM))
    key_file.write_bytes(
        key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption())
    )
    return cert_file, key_file


@pytest.fixture
def https_provider(tmp_path: Path) -> Iterator[tuple[str, Path]]:
    """A provider answering one page of orgs over HTTPS on loopback; its base URL and its certificate."""
    cert_file, key_file = self_signed(tmp_path)
    server = ThreadingHTTPServer(("127.0.0.1", 0), _OneOrg)
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(cert_file, key_file)
    server.socket = context.wrap_socket(server.socket, server_side=True)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield f"https://127.0.0.1:{server.server_port}/ims/oneroster/v1p1", cert_file
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
