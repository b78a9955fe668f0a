"""Real receivers on 127.0.0.1 for alert tests: a Slack-style webhook and an SMTP server (aiosmtpd)."""

from __future__ import annotations

import datetime
import ipaddress
import json
import socket
import ssl
import threading
from email import message_from_bytes, policy
from email.message import EmailMessage
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

from aiosmtpd.controller import Controller
from aiosmtpd.smtp import AuthResult, LoginPassword
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


class WebhookReceiver:
    """Collects the JSON POSTed to it. With `status` other than 200 it answers an error page that quotes the path
    it was called on (as some receivers do: the path of a Slack hook URL is its secret)."""

    def __init__(self, token: str = "T0ALERTS/B0ROSTER/s3cr3t-h00k-t0k3n") -> None:
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}/services/{token}"
        self.posts: list[dict[str, Any]] = []
        self.status = 200
        self._server: ThreadingHTTPServer | None = None

    def start(self) -> WebhookReceiver:
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
                if receiver.status == 200:
                    receiver.posts.append(json.loads(body))
                    answer = b"ok"
                else:
                    answer = f"no_service: nothing at {self.path}".encode()
                self.send_response(receiver.status)
                self.send_header("Content-Length", str(len(answer)))
                self.end_headers()
                self.wfile.write(answer)

            def log_message(self, format: str, *args: Any) -> None:
                pass

        self._server = ThreadingHTTPServer(("127.0.0.1", self.port), Handler)
        threading.Thread(target=self._server.serve_forever, daemon=True).start()
        return self

    def stop(self) -> None:
        if self._server:
            self._server.shutdown()
            self._server.server_close()
            self._server = None

    def texts(self) -> list[str]:
        return [post["text"] for post in self.posts]


class _Collector:
    def __init__(self, mailbox: Mailbox) -> None:
        self.mailbox = mailbox

    async def handle_RCPT(self, server, session, envelope, address, rcpt_options) -> str:
        if self.mailbox.refuse:
            return "550 5.1.1 mailbox unavailable"
        envelope.rcpt_tos.append(address)
        return "250 OK"

    async def handle_DATA(self, server, session, envelope) -> str:
        message = message_from_bytes(envelope.content, policy=policy.default)
        assert isinstance(message, EmailMessage)
        message["X-Envelope-To"] = ", ".join(envelope.rcpt_tos)
        self.mailbox.messages.append(message)
        return "250 OK"


class Mailbox:
    """An SMTP server on 127.0.0.1 collecting the mail it accepts. With `tls` it offers STARTTLS (a certificate
    for 127.0.0.1 written to `tls.cert_file`) and requires a login with `login`/`password` over it."""

    def __init__(self, *, tls: SelfSignedCertificate | None = None, login: str = "", password: str = "") -> None:
        self.port = free_port()
        self.messages: list[EmailMessage] = []
        self.refuse = False
        self.logins: list[str] = []
        self._tls, self._login, self._password = tls, login, password
        self._controller: Controller | None = None

    def _authenticate(self, server, session, envelope, mechanism, auth_data) -> AuthResult:
        ok = isinstance(auth_data, LoginPassword) and (auth_data.login, auth_data.password) == (
            self._login.encode(),
            self._password.encode(),
        )
        if ok:
            self.logins.append(self._login)
        return AuthResult(success=ok, handled=False)

    def start(self) -> Mailbox:
        options: dict[str, Any] = {}
        if self._tls:
            options = {
                "tls_context": self._tls.server_context(),
                "require_starttls": True,
                "authenticator": self._authenticate,
                "auth_required": True,
            }
        self._controller = Controller(_Collector(self), hostname="127.0.0.1", port=self.port, **options)
        self._controller.start()
        return self

    def stop(self) -> None:
        if self._controller:
            self._controller.stop()
            self._controller = None

    def bodies(self) -> list[str]:
        return [str(message.get_content()).replace("\r\n", "\n") for message in self.messages]


class SelfSignedCertificate:
    """A certificate for 127.0.0.1; point SSL_CERT_FILE at `cert_file` so clients trust it."""

    def __init__(self, folder: Path) -> None:
        key = ec.generate_private_key(ec.SECP256R1())
        name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "127.0.0.1")])
        now = datetime.datetime.now(datetime.UTC)
        certificate = (
            x509.CertificateBuilder()
            .subject_name(name)
            .issuer_name(name)
            .public_key(key.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(now - datetime.timedelta(minutes=5))
            .not_valid_after(now + datetime.timedelta(days=1))
            .add_extension(x509.SubjectAlternativeName([x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]), False)
            .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
            .sign(key, hashes.SHA256())
        )
        self.cert_file, self.key_file = folder / "smtp-cert.pem", folder / "smtp-key.pem"
        self.cert_file.write_bytes(certificate.public_bytes(serialization.Encoding.PEM))
        self.key_file.write_bytes(
            key.private_bytes(
                serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
            )
        )

    def server_context(self) -> ssl.SSLContext:
        context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
        context.load_cert_chain(self.cert_file, self.key_file)
        return context
