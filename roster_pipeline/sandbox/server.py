"""A OneRoster 1.1 and 1.2 REST server over real HTTP on 127.0.0.1, hosting many synthetic districts.

Each district lives under `/<district_id>/ims/oneroster/v1p1/<collection>[/<sourcedId>]` (or, served as 1.2,
`/<district_id>/ims/oneroster/rostering/v1p2/...`; see v1p2.py), with its OAuth 2.0 token endpoint at
`/<district_id>/oauth/token`. The HTTP stack is the standard library's threading server
speaking HTTP/1.1 with keep-alive: it adds no dependency, each request runs on a plain thread so a fault can
sleep or close the socket exactly when asked (an ASGI server would answer a dropped connection itself), and
at OneRoster page sizes the cost is in JSON encoding, which orjson keeps small.
"""

from __future__ import annotations

import contextlib
import hmac
import html
import math
import socket
import sys
import threading
import time
from collections import OrderedDict
from collections.abc import Iterable
from dataclasses import dataclass, field, replace
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from types import TracebackType
from typing import Literal
from urllib.parse import parse_qsl, quote, unquote, urlencode

import orjson

from roster_pipeline.sandbox import v1p2
from roster_pipeline.sandbox.faults import Fault, Faults
from roster_pipeline.sandbox.filter_eval import FilterError, compile_filter, parse_filter
from roster_pipeline.sandbox.generator import COLLECTIONS, GUID_TYPES, SyntheticDistrict
from roster_pipeline.sandbox.request_auth import (
    DEFAULT_SCOPE,
    AuthError,
    DistrictAuth,
    OAuth1Verifier,
    TokenStore,
    client_credentials,
)

__all__ = ["DistrictAuth", "Faults", "RequestRecord", "SandboxServer"]

API_PATH = v1p2.API_PATH_V1P1  # the 1.1 base path; a 1.2 district is served under v1p2.API_PATH_V1P2
VERSIONS = ("1.1", "1.2")
DEFAULT_LIMIT = 100  # OneRoster 1.1 §3.4.1: a server pages by 100 when the consumer gives no limit
HeaderMode = Literal["both", "total", "link", "none"]
HEADER_MODES = ("both", "total", "link", "none")


@dataclass(frozen=True)
class RequestRecord:
    """One request as the sandbox saw it. `status` is 0 when the connection was dropped unanswered."""

    method: str
    path: str
    query: dict[str, str]
    status: int
    raw_query: str = ""
    fault: str | None = None


@dataclass
class _HostedDistrict:
    district: SyntheticDistrict
    auth: DistrictAuth
    header_mode: HeaderMode
    max_page_size: int | None
    offered: frozenset[str]
    wrap_errors: bool
    district_id: str = ""
    version: str = "1.1"
    ignore_filter: bool = False
    garbage_periods: bool = False
    faults: Faults = field(default_factory=Faults)
    log: list[RequestRecord] = field(default_factory=list)
    token_epoch: int = 0
    lock: threading.Lock = field(default_factory=threading.Lock)
    filter_cache: OrderedDict[tuple[str, str], tuple[int, list[dict]]] = field(default_factory=OrderedDict)
    oauth1: OAuth1Verifier | None = None

    @property
    def api_path(self) -> str:
        return v1p2.API_PATHS[self.version]

    def matching(self, collection: str, text: str) -> list[dict]:
        """Records of `collection` matching filter `text`, cached until the collection changes.

        A client paging through a filtered result asks the same question once per page; recomputing it
        over a large district each time would make paging quadratic.
        """
        version = self.district.version(collection)
        key = (collection, text)
        with self.lock:
            cached = self.filter_cache.get(key)
            if cached is not None and cached[0] == version:
                self.filter_cache.move_to_end(key)
                return cached[1]
        records = self.district.select(collection, compile_filter(parse_filter(text), collection))
        with self.lock:
            self.filter_cache[key] = (version, records)
            while len(self.filter_cache) > 16:
                self.filter_cache.popitem(last=False)
        return records


class SandboxServer:
    """One HTTP server hosting many OneRoster 1.1 and 1.2 districts on 127.0.0.1; also a context manager."""

    def __init__(self, token_lifetime_s: float = 3600, port: int = 0, host: str = "127.0.0.1") -> None:
        self.token_lifetime_s = token_lifetime_s
        self.host = host
        self._port = port
        self._districts: dict[str, _HostedDistrict] = {}
        self._tokens = TokenStore()
        self._httpd: _HTTPServer | None = None
        self._thread: threading.Thread | None = None

    # -- configuration --------------------------------------------------------------------------------

    def add_district(
        self,
        district: SyntheticDistrict,
        auth: DistrictAuth,
        header_mode: HeaderMode = "both",
        max_page_size: int | None = None,
        offered: Iterable[str] | None = None,
        wrap_errors: bool = False,
        *,
        version: str = "1.1",
        district_id: str | None = None,
        ignore_filter: bool = False,
        garbage_periods: bool = False,
    ) -> None:
        """Serve `district` under its id (or under `district_id`, to serve one district twice).

        `header_mode` picks the paging headers sent (X-Total-Count, Link, both or neither);
        `max_page_size` silently caps `limit`; `offered` lists the endpoints served (others answer 404);
        `wrap_errors` wraps imsx error bodies in `{"statusInfoSet": [...]}` as some vendors do.
        `version` "1.2" serves the same records as OneRoster 1.2 rostering (OAuth 2 only; with the default
        `auth.scope` every 1.2 scope may be granted, and each endpoint checks the token's scopes).
        Provider quirks: `ignore_filter` answers as if no `filter` were sent; `garbage_periods` sends each
        class's `periods` as a bare number instead of a list of strings.
        """
        if header_mode not in HEADER_MODES:
            raise ValueError(f"header_mode must be one of {HEADER_MODES}, not {header_mode!r}")
        if version not in VERSIONS:
            raise ValueError(f"version must be one of {VERSIONS}, not {version!r}")
        if version == "1.2" and auth.kind != "oauth2":
            raise ValueError("OneRoster 1.2 requires OAuth 2.0; serve an oauth1 district as 1.1")
        if version == "1.2" and auth.scope == DEFAULT_SCOPE:
            auth = replace(auth, scope=" ".join(v1p2.SCOPES_V1P2))
        endpoints = frozenset(COLLECTIONS if offered is None else offered)
        if unknown := endpoints - set(COLLECTIONS):
            raise ValueError(f"offered names unknown endpoints {sorted(unknown)}; known: {COLLECTIONS}")
        if max_page_size is not None and max_page_size < 1:
            raise ValueError("max_page_size must be a positive number of records")
        served_id = district_id or district.district_id
        hosted = _HostedDistrict(
            district,
            auth,
            header_mode,
            max_page_size,
            endpoints,
            wrap_errors,
            district_id=served_id,
            version=version,
            ignore_filter=ignore_filter,
            garbage_periods=garbage_periods,
        )
        if auth.kind == "oauth1":
            hosted.oauth1 = OAuth1Verifier(auth.client_id, auth.client_secret)
        self._districts[served_id] = hosted

    def district(self, district_id: str) -> SyntheticDistrict:
        """The district served under `district_id`."""
        return self._hosted(district_id).district

    def faults(self, district_id: str) -> Faults:
        """The fault injector for `district_id` (mutable while the server runs)."""
        return self._hosted(district_id).faults

    def request_log(self, district_id: str) -> list[RequestRecord]:
        """A copy of every request made to `district_id` so far, oldest first."""
        hosted = self._hosted(district_id)
        with hosted.lock:
            return list(hosted.log)

    def clear_request_log(self, district_id: str) -> None:
        """Forget the requests logged for `district_id`."""
        hosted = self._hosted(district_id)
        with hosted.lock:
            hosted.log.clear()

    # -- lifecycle ------------------------------------------------------------------------------------

    def start(self, port: int | None = None) -> SandboxServer:
        """Bind (a free port unless one is given) and serve on a background thread."""
        if self._httpd is not None:
            raise RuntimeError("the sandbox server is already running")
        self._httpd = _HTTPServer((self.host, self._port if port is None else port), self)
        self._port = self._httpd.server_address[1]
        # A short poll interval makes stop() prompt: serve_forever notices shutdown only between polls.
        self._thread = threading.Thread(
            target=self._httpd.serve_forever, kwargs={"poll_interval": 0.05}, name="oneroster-sandbox", daemon=True
        )
        self._thread.start()
        return self

    def stop(self) -> None:
        """Stop serving and close every open connection."""
        httpd, self._httpd = self._httpd, None
        if httpd is None:
            return
        httpd.shutdown()
        httpd.close_connections()
        httpd.server_close()
        if self._thread is not None:
            self._thread.join()

    def serve_forever(self, port: int | None = None) -> None:
        """Block the calling thread while serving (starting first if needed) until interrupted (Ctrl-C)."""
        if self._httpd is None:
            self.start(port)
        try:
            while True:
                time.sleep(3600)
        finally:
            self.stop()

    def __enter__(self) -> SandboxServer:
        return self if self._httpd is not None else self.start()

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.stop()

    # -- addresses ------------------------------------------------------------------------------------

    @property
    def port(self) -> int:
        """The bound port (0 before `start`)."""
        return self._port

    @property
    def url(self) -> str:
        """The server origin, e.g. http://127.0.0.1:PORT."""
        return f"http://{self.host}:{self._port}"

    def base_url(self, district_id: str) -> str:
        """The OneRoster base URL of a district: http://127.0.0.1:PORT/<district_id>/ims/oneroster/v1p1
        (…/ims/oneroster/rostering/v1p2 for a district served as 1.2)."""
        return f"{self.url}/{district_id}/{self._hosted(district_id).api_path}"

    def token_url(self, district_id: str) -> str:
        """The OAuth 2.0 token endpoint of a district."""
        self._hosted(district_id)
        return f"{self.url}/{district_id}/oauth/token"

    def _hosted(self, district_id: str) -> _HostedDistrict:
        try:
            return self._districts[district_id]
        except KeyError:
            raise KeyError(f"the sandbox serves no district {district_id!r}; add it with add_district") from None


class _HTTPServer(ThreadingHTTPServer):
    daemon_threads = True
    allow_reuse_address = True
    request_queue_size = 128

    def __init__(self, address: tuple[str, int], sandbox: SandboxServer) -> None:
        self.sandbox = sandbox
        self._open: set[socket.socket] = set()
        self._open_lock = threading.Lock()
        super().__init__(address, _Handler)

    def process_request(self, request: socket.socket, client_address: tuple[str, int]) -> None:  # type: ignore[override]
        with self._open_lock:
            self._open.add(request)
        super().process_request(request, client_address)

    def shutdown_request(self, request: socket.socket) -> None:  # type: ignore[override]
        with self._open_lock:
            self._open.discard(request)
        super().shutdown_request(request)

    def handle_error(self, request: socket.socket | tuple[bytes, socket.socket], client_address: object) -> None:
        # A client that gave up (its read timeout passed while a `slow` fault stalled the answer) has closed the
        # socket the answer is written to: that is the fault working, not a sandbox failure worth a traceback.
        if isinstance(sys.exc_info()[1], ConnectionError):
            return
        super().handle_error(request, client_address)

    def close_connections(self) -> None:
        # Keep-alive handler threads block reading the next request; shutting their sockets down lets
        # them finish now instead of when the client goes away.
        with self._open_lock:
            sockets = list(self._open)
        for sock in sockets:
            with contextlib.suppress(OSError):
                sock.shutdown(socket.SHUT_RDWR)


def imsx_status(description: str, code_minor: str) -> dict:
    """A OneRoster 1.1 imsx_StatusInfo error object."""
    return {
        "imsx_codeMajor": "failure",
        "imsx_severity": "error",
        "imsx_description": description,
        "imsx_CodeMinor": {
            "imsx_codeMinorField": [
                {"imsx_codeMinorFieldName": "TargetEndSystem", "imsx_codeMinorFieldValue": code_minor}
            ]
        },
    }


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"  # keep-alive, as OneRoster clients page over one connection
    disable_nagle_algorithm = True  # headers and body are two writes; Nagle would stall each response
    timeout = 60  # close idle keep-alive connections
    server: _HTTPServer
    _hosted: _HostedDistrict | None = None
    server_version = "OneRosterSandbox/1.1"

    def log_message(self, format: str, *args: object) -> None:
        """Stay quiet: the request log holds what tests need."""

    def do_GET(self) -> None:
        self._dispatch()

    do_POST = do_PUT = do_DELETE = do_PATCH = do_HEAD = do_GET

    # -- routing --------------------------------------------------------------------------------------

    def _dispatch(self) -> None:
        path, _, raw_query = self.path.partition("?")
        self._raw_query = raw_query
        self._query = dict(parse_qsl(raw_query, keep_blank_values=True))
        self._path = path
        self._fault: str | None = None
        self._hosted = None
        body = self._read_body()
        district_id, _, rest = path.lstrip("/").partition("/")
        hosted = self.server.sandbox._districts.get(unquote(district_id))
        if hosted is None:
            self._error(404, f"no district {unquote(district_id)!r} is served here", "unknownobject")
            return
        self._hosted = hosted
        try:
            api = hosted.api_path
            if rest == "oauth/token":
                self._token(hosted, body)
            elif rest == api or rest.startswith(api + "/"):
                self._api(hosted, [unquote(s) for s in rest[len(api) + 1 :].split("/")])
            else:
                self._error(404, f"no such path {path!r}; the API lives under /{district_id}/{api}", "unknownobject")
        finally:
            self._hosted = None

    def _read_body(self) -> bytes:
        length = int(self.headers.get("Content-Length") or 0)
        return self.rfile.read(length) if length else b""

    # -- OAuth 2.0 token endpoint ---------------------------------------------------------------------

    def _token(self, hosted: _HostedDistrict, body: bytes) -> None:
        if hosted.auth.kind != "oauth2":
            self._error(
                404, "this district authenticates with OAuth 1.0a signatures; it has no token endpoint", "unknownobject"
            )
            return
        if self.command != "POST":
            self._error(405, "the token endpoint accepts POST only", "invalid_data", {"Allow": "POST"})
            return
        form = dict(parse_qsl(body.decode("utf-8", "replace"), keep_blank_values=True))
        if form.get("grant_type") != "client_credentials":
            self._oauth_error(400, "unsupported_grant_type", "grant_type must be client_credentials")
            return
        try:
            client_id, secret = client_credentials({"authorization": self.headers.get("Authorization", "")}, form)
        except AuthError as exc:
            self._oauth_error(401, "invalid_client", str(exc))
            return
        auth = hosted.auth
        id_ok = hmac.compare_digest(client_id.encode(), auth.client_id.encode())
        if not (hmac.compare_digest(secret.encode(), auth.client_secret.encode()) and id_ok):
            self._oauth_error(401, "invalid_client", "client authentication failed: unknown client_id or wrong secret")
            return
        allowed = auth.scope.split()
        if auth.require_scope and not form.get("scope", "").split():
            self._oauth_error(400, "invalid_scope", f"this server requires an explicit scope: {' '.join(allowed)!r}")
            return
        requested = form.get("scope", "").split() or allowed
        if not set(requested) <= set(allowed):
            self._oauth_error(400, "invalid_scope", f"scope must be within {' '.join(allowed)!r}")
            return
        lifetime = self.server.sandbox.token_lifetime_s
        with hosted.lock:
            epoch = hosted.token_epoch
        token = self.server.sandbox._tokens.issue(hosted.district_id, lifetime, epoch, frozenset(requested))
        payload = {
            "access_token": token,
            "token_type": "bearer",
            "expires_in": math.ceil(lifetime),
            "scope": " ".join(requested),
        }
        self._send(200, orjson.dumps(payload), {"Cache-Control": "no-store", "Pragma": "no-cache"})

    def _oauth_error(self, status: int, error: str, description: str) -> None:
        # RFC 6749 §5.2 error fields plus the OneRoster imsx fields, so either kind of client can read it.
        payload = {"error": error, "error_description": description, **imsx_status(description, "unauthorisedrequest")}
        headers = {"Cache-Control": "no-store"}
        if status == 401:
            headers["WWW-Authenticate"] = 'Basic realm="oneroster-sandbox"'
        self._send(status, orjson.dumps(payload), headers)

    # -- OneRoster API --------------------------------------------------------------------------------

    def _api(self, hosted: _HostedDistrict, segments: list[str]) -> None:
        fault = hosted.faults.take_transport_fault()
        if fault is not None:
            self._apply_fault(fault)
            return
        delay = hosted.faults.take_delay()
        if delay:
            time.sleep(delay)
        try:
            granted = self._authenticate(hosted)
        except AuthError as exc:
            self._error(401, str(exc), "unauthorisedrequest", {"WWW-Authenticate": self._challenge(hosted)})
            return
        if self.command != "GET":
            self._error(
                405,
                f"the OneRoster {hosted.version} rostering API is read-only: use GET",
                "invalid_data",
                {"Allow": "GET"},
            )
            return
        collection, detail = segments[0], segments[1:]
        if collection not in GUID_TYPES:
            self._error(
                404, f"unknown endpoint {collection!r}; the sandbox serves {', '.join(COLLECTIONS)}", "unknownobject"
            )
            return
        if collection not in hosted.offered:
            self._error(404, f"endpoint {collection!r} is not offered by this district", "unknownobject")
            return
        if hosted.version == "1.2" and granted is not None and not v1p2.endpoint_allowed(collection, granted):
            needed = " or ".join(v1p2.SCOPE_V1P2 + name for name in v1p2.ENDPOINT_SCOPES_V1P2[collection])
            # RFC 6750 §3.1: a valid token without the scope a resource needs gets 403 insufficient_scope.
            self._error(
                403,
                f"the access token's scope does not cover {collection!r}; it needs {needed}",
                "forbidden",
                {"WWW-Authenticate": 'Bearer realm="oneroster-sandbox", error="insufficient_scope"'},
            )
            return
        if len(detail) > 1 or detail == [""]:
            self._error(404, f"no such resource under {collection!r}", "unknownobject")
        elif detail:
            self._single(hosted, collection, detail[0])
        else:
            self._collection(hosted, collection)

    def _authenticate(self, hosted: _HostedDistrict) -> frozenset[str] | None:
        """Check the request's credentials; the bearer token's granted scopes (None for signed requests)."""
        header = self.headers.get("Authorization", "")
        if hosted.oauth1 is not None:
            host = (self.headers.get("Host") or f"{self.server.sandbox.host}:{self.server.sandbox.port}").lower()
            host = host.removesuffix(":80")
            hosted.oauth1.verify(self.command, f"http://{host}{self._path}", self._raw_query, header)
            return None
        if hosted.faults.tokens_expire_now():
            with hosted.lock:
                hosted.token_epoch += 1
        with hosted.lock:
            epoch = hosted.token_epoch
        return self.server.sandbox._tokens.check(hosted.district_id, header, epoch)

    def _challenge(self, hosted: _HostedDistrict) -> str:
        if hosted.oauth1 is not None:
            return 'OAuth realm="oneroster-sandbox"'
        return 'Bearer realm="oneroster-sandbox", error="invalid_token"'

    def _single(self, hosted: _HostedDistrict, collection: str, sourced_id: str) -> None:
        if (status := hosted.faults.record_failure(sourced_id)) is not None:
            self._error(status, f"injected failure looking up {sourced_id!r}", "internal_server_error")
            return
        try:
            if hosted.faults.single_records_missing():
                raise KeyError(sourced_id)
            record = hosted.district.get(collection, sourced_id)
        except KeyError:
            self._error(404, f"no {GUID_TYPES[collection]} with sourcedId {sourced_id!r}", "unknownobject")
            return
        self._send_records(hosted, self._body(hosted, collection, GUID_TYPES[collection], [record], single=True))

    def _collection(self, hosted: _HostedDistrict, collection: str) -> None:
        try:
            limit = self._int_param("limit", DEFAULT_LIMIT, minimum=1)
            offset = self._int_param("offset", 0, minimum=0)
        except ValueError as exc:
            self._error(400, str(exc), "invalid_data")
            return
        failure = hosted.faults.endpoint_fault(collection, offset)
        if failure is not None:
            self._apply_fault(failure)
            return
        for change in hosted.faults.take_changes(collection, offset):
            change()
        if hosted.max_page_size is not None:
            limit = min(limit, hosted.max_page_size)
        text = None if hosted.ignore_filter else self._query.get("filter")
        if text is None:
            total = hosted.district.size(collection)
            page = hosted.district.page(collection, offset, offset + limit)
        else:
            try:
                matching = hosted.matching(collection, text)
            except FilterError as exc:
                self._error(400, f"invalid filter {text!r}: {exc}", "invalid_filter_field")
                return
            total = len(matching)
            page = matching[offset : offset + limit]
        headers = {}
        if hosted.header_mode in ("both", "total"):
            headers["X-Total-Count"] = str(total)
        if hosted.header_mode in ("both", "link"):
            headers["Link"] = self._links(limit, offset, len(page), total)
        self._send_records(hosted, self._body(hosted, collection, collection, page), headers)

    def _body(
        self, hosted: _HostedDistrict, collection: str, key: str, records: list[dict], single: bool = False
    ) -> bytes:
        """The JSON body for `records` in the district's version, with its quirks applied."""
        if hosted.garbage_periods and collection == "classes":
            records = [{**record, "periods": len(record.get("periods") or [])} for record in records]
        if hosted.version == "1.2":
            records = [v1p2.to_v1p2(collection, record) for record in records]
        body = orjson.dumps({key: records[0] if single else records})
        return v1p2.rewrite_hrefs(body) if hosted.version == "1.2" else body

    def _int_param(self, name: str, default: int, minimum: int) -> int:
        raw = self._query.get(name)
        if raw is None:
            return default
        try:
            value = int(raw)
        except ValueError:
            raise ValueError(f"{name} must be an integer, got {raw!r}") from None
        if value < minimum:
            raise ValueError(f"{name} must be >= {minimum}, got {value}")
        return value

    def _links(self, limit: int, offset: int, count: int, total: int) -> str:
        """RFC 8288 Link header; `next` only while records remain, so its absence marks the last page."""
        host = self.headers.get("Host") or f"{self.server.sandbox.host}:{self.server.sandbox.port}"
        kept = [(k, v) for k, v in self._query.items() if k not in ("limit", "offset") and not k.startswith("oauth_")]

        def link(target: int, rel: str) -> str:
            query = urlencode([*kept, ("limit", limit), ("offset", target)], quote_via=quote, safe="")
            return f'<http://{host}{self._path}?{query}>; rel="{rel}"'

        links = [link(0, "first")]
        if offset > 0:
            links.append(link(max(0, offset - limit), "prev"))
        if offset + count < total:
            links.append(link(offset + count, "next"))
        links.append(link(max(0, (total - 1) // limit * limit), "last"))
        return ", ".join(links)

    # -- responses ------------------------------------------------------------------------------------

    def _apply_fault(self, fault: Fault) -> None:
        self._fault = fault.kind
        if fault.kind == "drop":
            self.close_connection = True
            with contextlib.suppress(OSError):
                self.connection.shutdown(socket.SHUT_RDWR)
            self._log(0)
        elif fault.kind == "rate_limit":
            self._error(
                429,
                "too many requests; retry after the Retry-After delay",
                "server_busy",
                {"Retry-After": str(fault.retry_after)},
            )
        elif fault.kind == "html":
            title = html.escape(fault.text)
            page = f"<!DOCTYPE html>\n<html><head><title>{title}</title></head>\n<body><h1>{title}</h1></body></html>\n"
            self._send(fault.status, page.encode(), content_type="text/html; charset=utf-8")
        elif fault.kind == "envelope":
            self._send(200, orjson.dumps(imsx_status(fault.text, "server_busy")))
        else:
            description = fault.text or f"injected server failure (HTTP {fault.status})"
            self._error(fault.status, description, "internal_server_error")

    def _error(self, status: int, description: str, code_minor: str, headers: dict[str, str] | None = None) -> None:
        payload: dict = imsx_status(description, code_minor)
        hosted = self._hosted
        if hosted is not None and hosted.wrap_errors:
            payload = {"statusInfoSet": [payload]}
        self._send(status, orjson.dumps(payload), headers)

    def _send_records(self, hosted: _HostedDistrict, body: bytes, headers: dict[str, str] | None = None) -> None:
        """Answer 200 with `body`, cut short when a truncation fault is queued."""
        how = hosted.faults.take_truncation()
        if how is None:
            self._send(200, body, headers)
            return
        self._fault = "truncate"
        half = body[: len(body) // 2]
        if how == "json":
            self._send(200, half, headers)
            return
        self._send(200, half, headers, length=len(body))
        # The announced length is never reached: end the connection, as a transfer that died would.
        self.close_connection = True
        with contextlib.suppress(OSError):
            self.wfile.flush()
            self.connection.shutdown(socket.SHUT_RDWR)

    def _send(
        self,
        status: int,
        body: bytes,
        headers: dict[str, str] | None = None,
        *,
        content_type: str = "application/json",
        length: int | None = None,
    ) -> None:
        """Answer `status` with `body`; `length` announces another Content-Length than the body's own."""
        # Log before answering: a client that has the response must find its request in the log.
        self._log(status)
        self.send_response(status)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(body) if length is None else length))
        for name, value in (headers or {}).items():
            self.send_header(name, value)
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(body)

    def _log(self, status: int) -> None:
        hosted = self._hosted
        if hosted is None:
            return
        record = RequestRecord(self.command, self._path, self._query, status, self._raw_query, self._fault)
        with hosted.lock:
            hosted.log.append(record)
