"""A provider that misbehaves gets a clear refusal, never our credentials or a cryptic crash."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import orjson
import pytest

from roster_pipeline.oneroster import OAuth1HmacSha256, OAuth2ClientCredentials, OneRosterClient, OneRosterError


class _Recorder(BaseHTTPRequestHandler):
    """Answers every GET with one page of orgs; `link` (class attribute) becomes its Link rel=next header."""

    link = ""
    seen: list[dict[str, str]]

    def do_GET(self) -> None:
        type(self).seen.append(dict(self.headers))
        body = orjson.dumps({"orgs": [{"sourcedId": "o1", "status": "active", "name": "Org"}]})
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        if self.link:
            self.send_header("Link", f'<{self.link}>; rel="next"')
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, format: str, *args: object) -> None:
        pass


def serve(link: str = "") -> tuple[ThreadingHTTPServer, type[_Recorder]]:
    handler = type("Handler", (_Recorder,), {"link": link, "seen": []})
    server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return server, handler


@pytest.fixture
def elsewhere() -> Iterator[tuple[ThreadingHTTPServer, type[_Recorder]]]:
    server, handler = serve()
    yield server, handler
    server.shutdown()


def test_a_link_to_another_server_is_refused_before_any_credential_reaches_it(elsewhere):
    other, other_handler = elsewhere
    provider, _ = serve(link=f"http://127.0.0.1:{other.server_port}/ims/oneroster/v1p1/orgs?offset=1")
    try:
        base = f"http://127.0.0.1:{provider.server_port}/ims/oneroster/v1p1"
        auth = OAuth1HmacSha256("key", "very-secret-value")
        with OneRosterClient(base, auth, label="district 'oak'") as client, pytest.raises(OneRosterError) as raised:
            list(client.iter_pages("orgs"))
        message = str(raised.value)
        assert "district 'oak', endpoint orgs" in message and "refusing to send credentials" in message
        assert "very-secret-value" not in message
        assert other_handler.seen == []
    finally:
        provider.shutdown()


def test_a_record_with_an_unreadable_date_is_left_out_and_named_while_the_rest_are_read(served_district):
    served = served_district("oak")
    users = served.district.records("users")
    broken = users[3]
    broken["dateLastModified"] = "05/01/2024 10:00"  # a US-style date where ISO-8601 is required
    auth = OAuth2ClientCredentials(served.token_url, served.auth.client_id, served.auth.client_secret)
    with OneRosterClient(served.base_url, auth, label="district 'oak'") as client:
        pages = list(client.iter_pages("users"))
        assert sum(len(page.records) for page in pages) == len(users) - 1
        [problem] = [problem for page in pages for problem in page.malformed]
        assert (problem.sourced_id, problem.position, problem.field) == (broken["sourcedId"], 3, "dateLastModified")
        assert "not an ISO-8601 timestamp: '05/01/2024 10:00'" in str(problem)
        with pytest.raises(OneRosterError) as raised:  # the all-in-one helper refuses rather than drop a record
            client.fetch_all("users")
    message = str(raised.value)
    assert "district 'oak', endpoint users, page offset=0" in message
    assert f"record '{broken['sourcedId']}'" in message and "provider must fix this record" in message


def test_a_link_may_upgrade_the_same_host_to_https_but_not_downgrade_or_move():
    import httpx

    from roster_pipeline.oneroster.client import _same_server

    base = httpx.URL("http://sis.example.org/ims/oneroster/v1p1")
    assert _same_server(httpx.URL("https://sis.example.org/ims/oneroster/v1p1/users?offset=5"), base)
    assert not _same_server(httpx.URL("https://evil.example.org/users"), base)
    secure = httpx.URL("https://sis.example.org/ims/oneroster/v1p1")
    assert not _same_server(httpx.URL("http://sis.example.org/users"), secure)
