"""OneRoster REST client: paging, retries and error reporting over one ``httpx.Client``.

Paging follows what the provider announces on the first page (offset 0):

- ``X-Total-Count``: the remaining offsets are known, so pages are fetched concurrently (bounded by
  ``max_concurrency``) and yielded in order. Offsets step by the number of records the server actually
  returned on the first page, because some servers silently cap ``limit``. Totals drift during a sync,
  so paging continues past the announced total while the last page was full.
- only ``Link: <...>; rel="next"``: the links are followed one after another.
- neither: offsets advance by the records received until an empty page. A short page is not the end,
  since a capping server returns short pages throughout.

Pages are yielded as they arrive and at most ``max_concurrency`` are buffered, so memory stays flat
however large the district.
"""

from __future__ import annotations

import contextlib
import functools
import logging
import os
import random
import re
import ssl
import threading
import time
from collections import deque
from collections.abc import Callable, Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import UTC, datetime
from email.utils import parsedate_to_datetime
from types import TracebackType
from typing import Any
from urllib.parse import quote, urlencode

import httpx
import orjson
import polars as pl

from .endpoints import EndpointSpec, endpoint_spec, version_key
from .errors import AuthenticationFailed, EndpointNotOffered, OneRosterError, clean_text, provider_words
from .filters import Filter
from .normalize import RecordProblem, StatusInfo, read_record, status_info

# Reads a page's body straight into a frame of its records, or declines it (None): see `iter_pages`.
PageReader = Callable[[bytes], pl.DataFrame | None]

log = logging.getLogger(__name__)

# Statuses that mean "this provider does not offer the endpoint" (skipped when optional).
NOT_OFFERED_STATUSES = frozenset({403, 404, 501})
# Transport failures worth retrying: refused connects, dropped or reset connections, a body cut short of its
# Content-Length (RemoteProtocolError), and connect or read timeouts.
RETRYABLE_ERRORS = (httpx.TimeoutException, httpx.NetworkError, httpx.RemoteProtocolError)

_LINK = re.compile(r"<([^>]*)>([^<]*)")
_REL = re.compile(r"""rel\s*=\s*(?:"([^"]*)"|([^\s;,]+))""", re.IGNORECASE)


@dataclass(frozen=True)
class RetryPolicy:
    """How transient failures are retried, with capped exponential backoff and full jitter.

    Retried: 429 (honouring ``Retry-After``); 500, 502, 503 and 504 (a provider's database or upstream
    hiccup usually passes); refused, dropped or reset connections and timeouts (``RETRYABLE_ERRORS``); and a
    200 whose body is not JSON, which is a transfer cut short or a maintenance page that usually goes away.
    Not retried: other 4xx and 501, which say the request is wrong or the endpoint not offered, and a 200
    whose JSON is an imsx error rather than records, which the provider sent on purpose and would send again.

    ``max_attempts`` counts the first try. ``sleep`` and ``random`` can be replaced in tests.
    """

    max_attempts: int = 6
    base_delay: float = 0.5
    max_delay: float = 30.0
    max_retry_after: float = 300.0
    retry_statuses: frozenset[int] = frozenset({429, 500, 502, 503, 504})
    sleep: Callable[[float], None] = field(default=time.sleep, repr=False)
    random: Callable[[], float] = field(default=random.random, repr=False)

    def backoff(self, attempt: int) -> float:
        """Full-jitter delay before retry number ``attempt`` (1-based)."""
        return self.random() * min(self.max_delay, self.base_delay * 2 ** (attempt - 1))

    def delay(self, attempt: int, retry_after: str | None) -> float:
        """Delay before retry ``attempt``: the server's ``Retry-After`` when given, else the backoff."""
        seconds = parse_retry_after(retry_after)
        if seconds is None:
            return self.backoff(attempt)
        return min(seconds, self.max_retry_after)


def parse_retry_after(value: str | None) -> float | None:
    """Seconds to wait from a ``Retry-After`` header: delta-seconds or an HTTP date (RFC 9110 §10.2.3)."""
    if not value:
        return None
    value = value.strip()
    try:
        return max(0.0, float(value))
    except ValueError:
        pass
    try:
        when = parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    if when.tzinfo is None:
        when = when.replace(tzinfo=UTC)
    return max(0.0, (when - datetime.now(UTC)).total_seconds())


def parse_next_link(values: list[str]) -> str | None:
    """The target of the ``rel="next"`` link in ``Link`` header values (RFC 8288), or ``None``."""
    for value in values:
        for match in _LINK.finditer(value):
            for rel in _REL.finditer(match.group(2)):
                if "next" in (rel.group(1) or rel.group(2) or "").lower().split():
                    return match.group(1).strip()
    return None


@dataclass(frozen=True, slots=True)
class Page:
    """One page of an endpoint: normalised records and where they came from.

    ``number`` counts pages from 0 in the order they are yielded; ``total`` is the server's
    ``X-Total-Count`` if it sent one; ``raw_bytes`` the size of the response body; ``link_header`` whether
    the response carried an RFC 8288 ``Link`` header.
    """

    endpoint: str
    records: list[dict[str, Any]]
    offset: int
    number: int
    total: int | None
    raw_bytes: int
    link_header: bool = False
    server_date: datetime | None = None  # the response's HTTP Date: the server's clock, for delta watermarks
    malformed: tuple[RecordProblem, ...] = ()  # records the server sent that could not be read, left out
    # With a `PageReader`: the page's records as the reader's frame, when it could read them (`records` is empty).
    frame: pl.DataFrame | None = None

    @property
    def served(self) -> int:
        """How many records the server sent on this page, readable or not (what paging counts)."""
        return _served(self.records, self.malformed, self.frame)


@dataclass
class _Response:
    records: list[dict[str, Any]]
    total: int | None
    next_url: httpx.URL | None
    raw_bytes: int
    has_links: bool
    server_date: datetime | None = None
    malformed: tuple[RecordProblem, ...] = ()
    first_id: Any = None  # the first record's sourcedId as sent, readable or not
    frame: pl.DataFrame | None = None

    @property
    def served(self) -> int:
        return _served(self.records, self.malformed, self.frame)


def _served(records: list[dict[str, Any]], malformed: tuple[RecordProblem, ...], frame: pl.DataFrame | None) -> int:
    """Records a response held: readable, unreadable, and those a `PageReader` read as a frame."""
    return len(records) + len(malformed) + (0 if frame is None else frame.height)


@functools.cache
def shared_tls_context(cert_file: str | None, cert_dir: str | None) -> ssl.SSLContext:
    """httpx's default TLS context (certifi's CA bundle, or SSL_CERT_FILE / SSL_CERT_DIR), made once per process
    for each value of those two variables. Loading the bundle costs about 40 ms of CPU; a district's run makes a
    client per endpoint, and a night's runs make thousands. A context is safe to share between clients."""
    del cert_file, cert_dir  # the cache key: httpx reads the same variables itself
    return httpx.create_ssl_context()


class OneRosterClient:
    """Reads OneRoster collections from one provider.

    ``label`` (e.g. ``"district 'demo-oak'"``) starts every error message. ``version``
    (``"v1p1"``/``"v1p2"``) picks the endpoint table when an endpoint is named by a string. Use as a
    context manager, or call ``close()``.

    ``max_concurrency`` bounds this client's requests in flight; ``in_flight``, a semaphore shared by several
    clients (a district's endpoints fetched side by side), bounds them all together as well.
    """

    def __init__(
        self,
        base_url: str,
        auth: httpx.Auth,
        page_size: int = 1000,
        max_concurrency: int = 4,
        timeout: float = 30.0,
        retry: RetryPolicy | None = None,
        label: str = "OneRoster",
        *,
        version: str = "v1p1",
        in_flight: threading.Semaphore | None = None,
    ) -> None:
        if page_size < 1 or max_concurrency < 1:
            raise ValueError("page_size and max_concurrency must be at least 1")
        self.base_url = base_url.rstrip("/")
        self.auth = auth
        self.page_size = page_size
        self.max_concurrency = max_concurrency
        self.retry = retry or RetryPolicy()
        self.label = label
        self.version = version_key(version)
        self._in_flight = in_flight or contextlib.nullcontext()
        self._timeout = httpx.Timeout(timeout)
        self._http = httpx.Client(
            auth=auth,
            http1=True,
            http2=False,
            timeout=self._timeout,
            # One connection per concurrent page request, kept alive across pages.
            limits=httpx.Limits(max_connections=max_concurrency, max_keepalive_connections=max_concurrency),
            headers={"Accept": "application/json"},
            follow_redirects=False,
            verify=shared_tls_context(os.environ.get("SSL_CERT_FILE"), os.environ.get("SSL_CERT_DIR")),
        )

    def __enter__(self) -> OneRosterClient:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

    def __repr__(self) -> str:
        return f"OneRosterClient({self.base_url!r}, auth={self.auth!r}, label={self.label!r})"

    def close(self) -> None:
        """Close the pooled connections."""
        self._http.close()

    # --- public API --------------------------------------------------------------------------------

    def iter_pages(
        self, spec: EndpointSpec | str, filter: Filter | str | None = None, *, reader: PageReader | None = None
    ) -> Iterator[Page]:
        """Yield every page of ``spec`` in order, each record normalised (see ``normalize_record``).

        A record that cannot be read (not an object, no sourcedId, an unreadable timestamp) is left out of the
        page's ``records`` and described in its ``malformed``, so one bad record never costs the rest.

        With a ``reader``, each page's body is offered to it first: a page it reads comes as its ``frame`` (one row
        per record, a ``sourced_id`` column), and only a page it declines is read record by record.

        ``filter`` (a ``Filter`` or its wire text) is sent as the ``filter`` query parameter. Raises
        ``EndpointNotOffered`` when an optional endpoint answers 403/404/501, ``OneRosterError`` for any
        other failure that retries did not cure.
        """
        if isinstance(spec, str):
            spec = endpoint_spec(spec, self.version)
        filter_text = None if filter is None else str(filter)
        limit = self.page_size
        first = self._get(spec, self._page_url(spec, 0, limit, filter_text), 0, reader)
        served, total, next_url, has_links = first.served, first.total, first.next_url, first.has_links
        first_id = first.first_id
        page = self._page(spec, first, 0, 0)
        del first  # this frame outlives the page: hold no records the consumer has let go of
        yield page
        del page
        if served == 0 or (total is not None and served < limit and served >= total):
            return  # everything fit on a page the server did not fill
        if total is not None:
            yield from self._pages_by_total(spec, filter_text, served, total, reader)
        elif has_links:
            # A server that sends Link headers marks its last page by leaving out rel="next".
            yield from self._pages_by_link(spec, next_url, served, reader)
        else:
            yield from self._pages_by_offset(spec, filter_text, served, first_id, reader)

    def fetch_all(self, spec: EndpointSpec | str, filter: Filter | str | None = None) -> list[dict[str, Any]]:
        """All records of ``spec`` as one list (convenient for small endpoints; prefer ``iter_pages``).

        Stricter than ``iter_pages``: a record that cannot be read raises ``OneRosterError`` naming it.
        """
        records: list[dict[str, Any]] = []
        for page in self.iter_pages(spec, filter):
            if page.malformed:
                raise OneRosterError(
                    f"{page.malformed[0]} — the provider must fix this record",
                    label=self.label,
                    endpoint=page.endpoint,
                    offset=page.offset,
                )
            records.extend(page.records)
        return records

    def get_page(
        self, spec: EndpointSpec | str, offset: int = 0, limit: int | None = None, filter: Filter | str | None = None
    ) -> Page:
        """One page exactly as asked for (``limit`` defaults to the page size), with the usual retries.

        Used to probe a provider (see ``roster_pipeline.ingest.probe``); raises like ``iter_pages``.
        """
        if isinstance(spec, str):
            spec = endpoint_spec(spec, self.version)
        filter_text = None if filter is None else str(filter)
        url = self._page_url(spec, offset, limit or self.page_size, filter_text)
        return self._page(spec, self._get(spec, url, offset), offset, 0)

    def get_record(self, spec: EndpointSpec | str, sourced_id: str) -> dict[str, Any] | None:
        """One record by sourcedId (``GET users/{id}``), normalised; ``None`` when the provider answers 404 or
        410 (it no longer has the record), with the usual retries for anything transient.

        A full sync asks this of each record it did not see before tombstoning it: offset paging over a
        collection that changes while it is paged skips records. Raises ``OneRosterError`` when the answer is
        neither the record nor "gone", or the record cannot be read.
        """
        if isinstance(spec, str):
            spec = endpoint_spec(spec, self.version)
        url = httpx.URL(f"{self.base_url}/{spec.path}/{quote(sourced_id, safe='')}")
        response, body, payload = self._request(spec, url, 0, accept=frozenset({200, 404, 410}))
        if response.status_code != 200:
            return None
        record = payload.get(spec.singular_key) if isinstance(payload, dict) else None
        if record is None:
            raise self._shape_error(spec, 0, response, body, payload, spec.singular_key, f"record {sourced_id!r}: ")
        read = read_record(spec.name, record, 0)
        if isinstance(read, RecordProblem):
            raise self._error(spec, 0, f"record {sourced_id!r} by id: {read}", status=200)
        return read

    def request_token(self) -> dict[str, Any] | None:
        """Ask the token endpoint for a fresh token now; ``None`` for signed (OAuth 1) requests.

        Returns what the grant says (``scope``, ``expires_in``), never the token. Raises ``OneRosterError``
        when the token endpoint refuses.
        """
        request_token = getattr(self.auth, "request_token", None)
        if not callable(request_token):
            return None
        try:
            grant: dict[str, Any] = request_token(self._http)
        except AuthenticationFailed as exc:
            raise OneRosterError(self._redact(exc.detail), label=self.label, status=exc.status) from None
        except RETRYABLE_ERRORS as exc:
            raise OneRosterError(f"token request failed: {type(exc).__name__}: {exc}", label=self.label) from exc
        return grant

    # --- paging strategies -------------------------------------------------------------------------

    def _pages_by_total(
        self, spec: EndpointSpec, filter_text: str | None, step: int, total: int, reader: PageReader | None
    ) -> Iterator[Page]:
        offsets = iter(range(step, total, step))
        number = 1
        next_offset, last_count, latest_total = step, step, total
        pool = ThreadPoolExecutor(max_workers=self.max_concurrency, thread_name_prefix="oneroster-page")
        pending: deque[tuple[int, Future[_Response]]] = deque()

        def submit_next() -> None:
            offset = next(offsets, None)
            if offset is not None:
                url = self._page_url(spec, offset, step, filter_text)
                pending.append((offset, pool.submit(self._get, spec, url, offset, reader)))

        try:
            for _ in range(self.max_concurrency):
                submit_next()
            while pending:
                offset, future = pending.popleft()
                page = self._page(spec, future.result(), offset, number)
                del future
                submit_next()
                number += 1
                next_offset, last_count = offset + page.served, page.served
                latest_total = page.total if page.total is not None else latest_total
                yield page
                del page
        finally:
            for _, future in pending:
                future.cancel()
            pool.shutdown(wait=True, cancel_futures=True)

        # Double-check the end: records added during the sync push the real end past the first total.
        while last_count >= step or next_offset < latest_total:
            url = self._page_url(spec, next_offset, step, filter_text)
            page = self._page(spec, self._get(spec, url, next_offset, reader), next_offset, number)
            if not page.served:
                return
            number += 1
            last_count = page.served
            next_offset += last_count
            latest_total = page.total if page.total is not None else latest_total
            yield page
            del page

    def _pages_by_link(
        self, spec: EndpointSpec, url: httpx.URL | None, served: int, reader: PageReader | None
    ) -> Iterator[Page]:
        number, offset = 1, served
        seen: set[str] = set()
        while url is not None:
            if str(url) in seen:
                raise self._error(spec, offset, f"Link rel=next loops back to {url}")
            seen.add(str(url))
            response = self._get(spec, url, offset, reader)
            if not response.served:
                return
            url = response.next_url
            page = self._page(spec, response, offset, number)
            del response
            number += 1
            offset += page.served
            yield page
            del page

    def _pages_by_offset(
        self, spec: EndpointSpec, filter_text: str | None, served: int, first_id: Any, reader: PageReader | None
    ) -> Iterator[Page]:
        number, offset = 1, served
        while True:
            response = self._get(spec, self._page_url(spec, offset, self.page_size, filter_text), offset, reader)
            if not response.served:
                return
            page_first_id = response.first_id
            if page_first_id is not None and page_first_id == first_id:
                # Without this a server that ignores `offset` would be paged forever.
                raise self._error(spec, offset, "server ignores the offset parameter (same page returned again)")
            first_id = page_first_id
            page = self._page(spec, response, offset, number)
            del response
            number += 1
            offset += page.served
            yield page
            del page

    @staticmethod
    def _page(spec: EndpointSpec, response: _Response, offset: int, number: int) -> Page:
        return Page(
            spec.name,
            response.records,
            offset,
            number,
            response.total,
            response.raw_bytes,
            response.has_links,
            response.server_date,
            response.malformed,
            response.frame,
        )

    # --- one request -------------------------------------------------------------------------------

    def _page_url(self, spec: EndpointSpec, offset: int, limit: int, filter_text: str | None) -> httpx.URL:
        params: list[tuple[str, str | int]] = [("limit", limit), ("offset", offset)]
        if filter_text is not None:
            params.append(("filter", filter_text))
        # quote (not quote_plus): a space goes on the wire as %20, which every server decodes as a space.
        return httpx.URL(f"{self.base_url}/{spec.path}?{urlencode(params, quote_via=quote, safe='')}")

    def _get(self, spec: EndpointSpec, url: httpx.URL, offset: int, reader: PageReader | None = None) -> _Response:
        response, body, payload = self._request(spec, url, offset, reader=reader)
        return self._parse(spec, response, body, payload, offset)

    def _request(
        self,
        spec: EndpointSpec,
        url: httpx.URL,
        offset: int,
        accept: frozenset[int] = frozenset({200}),
        *,
        reader: PageReader | None = None,
    ) -> tuple[httpx.Response, bytes, Any]:
        """GET ``url`` with retries until it answers one of the ``accept`` statuses; raise for any other.

        Returns the response, its body and, for a 200, the body parsed as JSON (``None`` for other statuses), or
        the `reader`'s frame of it when the reader could read it.
        A 200 whose body is not JSON counts as a failed attempt, as ``RetryPolicy`` explains.
        """
        policy = self.retry
        attempt = 0
        while True:
            attempt += 1
            try:
                response, body = self._exchange(url)
            except AuthenticationFailed as exc:
                raise self._error(spec, offset, exc.detail, status=exc.status) from None
            except RETRYABLE_ERRORS as exc:
                if attempt >= policy.max_attempts:
                    detail = f"{type(exc).__name__}{_after(attempt)}: {self._transport_problem(exc)}"
                    raise self._error(spec, offset, detail) from exc
                reason = f"{type(exc).__name__}: {self._transport_problem(exc)}"
                self._wait(spec, offset, attempt, reason, policy.backoff(attempt))
                continue
            status = response.status_code
            if status == 200 and status in accept:
                if reader is not None and (frame := reader(body)) is not None:
                    return response, body, frame
                try:
                    return response, body, orjson.loads(body)
                except orjson.JSONDecodeError as exc:
                    problem = _unreadable_json(response, body, exc)
                if attempt >= policy.max_attempts:
                    raise self._error(spec, offset, f"HTTP 200{_after(attempt)}: {problem}", status=200)
                self._wait(spec, offset, attempt, f"HTTP 200 but {problem}", policy.backoff(attempt))
                continue
            if status in accept:
                return response, body, None
            if status in policy.retry_statuses and attempt < policy.max_attempts:
                delay = policy.delay(attempt, response.headers.get("Retry-After"))
                self._wait(spec, offset, attempt, f"HTTP {status}", delay)
                continue
            raise self._status_error(spec, offset, response, body, attempt)

    def _exchange(self, url: httpx.URL) -> tuple[httpx.Response, bytes]:
        """GET ``url``; return the closed response and its body.

        The body is collected from the stream rather than with ``response.read()``: httpx responses sit
        in a reference cycle and are freed only by the cyclic collector, and a body cached on the response
        would keep every page's bytes alive until then, so memory would grow with the district.
        """
        with self._in_flight, self._http.stream("GET", url, timeout=self._timeout) as response:
            if response.status_code == 200:
                return response, b"".join(response.iter_bytes())
            return response, response.read()

    def _wait(self, spec: EndpointSpec, offset: int, attempt: int, reason: str, delay: float) -> None:
        log.warning(
            "%s, endpoint %s, page offset=%d: %s, retrying in %.1f s (attempt %d of %d)",
            self.label,
            spec.name,
            offset,
            reason,
            delay,
            attempt + 1,
            self.retry.max_attempts,
        )
        self.retry.sleep(delay)

    def _parse(self, spec: EndpointSpec, response: httpx.Response, body: bytes, payload: Any, offset: int) -> _Response:
        readable: list[dict[str, Any]] = []
        malformed: list[RecordProblem] = []
        if isinstance(payload, pl.DataFrame):
            frame = payload
            first_id = frame.get_column("sourced_id")[0] if frame.height else None
        else:
            frame = None
            first_id, readable, malformed = self._records(spec, response, body, payload, offset)
        total_header = response.headers.get("X-Total-Count")
        total = int(total_header) if total_header and total_header.strip().isdigit() else None
        links = response.headers.get_list("Link")
        next_link = parse_next_link(links)
        # `join` resolves relative links and keeps the server's own percent-encoding.
        next_url = response.request.url.join(next_link) if next_link else None
        if next_url is not None and not _same_server(next_url, httpx.URL(self.base_url)):
            # Following it would send our bearer token (or an OAuth1 signature) to another server, or in clear.
            raise self._error(
                spec,
                offset,
                f"Link rel=next points to {_origin(next_url)}, not the provider's {_origin(httpx.URL(self.base_url))};"
                " refusing to send credentials there — check the provider's base_url",
                status=response.status_code,
            )
        return _Response(
            readable,
            total,
            next_url,
            len(body),
            bool(links),
            _http_date(response.headers.get("Date")),
            tuple(malformed),
            first_id,
            frame,
        )

    def _records(
        self, spec: EndpointSpec, response: httpx.Response, body: bytes, payload: Any, offset: int
    ) -> tuple[Any, list[dict[str, Any]], list[RecordProblem]]:
        """The page's first sourcedId as sent, its readable records normalised, and the problems with the rest."""
        records = payload.get(spec.envelope_key) if isinstance(payload, dict) else None
        if not isinstance(records, list):
            raise self._shape_error(spec, offset, response, body, payload, spec.envelope_key)
        first_id = records[0].get("sourcedId") if records and isinstance(records[0], dict) else None
        readable: list[dict[str, Any]] = []
        malformed: list[RecordProblem] = []
        for position, record in enumerate(records, start=offset):
            read = read_record(spec.name, record, position)
            if isinstance(read, RecordProblem):
                malformed.append(read)
            else:
                readable.append(read)
        return first_id, readable, malformed

    # --- errors ------------------------------------------------------------------------------------

    def _redact(self, text: str) -> str:
        redact = getattr(self.auth, "redact", None)
        return redact(text) if callable(redact) else text

    def _error(self, spec: EndpointSpec, offset: int, detail: str, **parts: Any) -> OneRosterError:
        # The provider's own words travel in `description` and `code_major` too: an echo of our credentials
        # must not ride along there.
        for name in ("description", "code_major"):
            if parts.get(name):
                parts[name] = self._redact(parts[name])
        return OneRosterError(self._redact(detail), label=self.label, endpoint=spec.name, offset=offset, **parts)

    def _transport_problem(self, exc: Exception) -> str:
        # httpx says only "timed out"; the limit that passed is what an engineer can change.
        if isinstance(exc, httpx.ReadTimeout) and self._timeout.read is not None:
            return f"no response within the {self._timeout.read:g} s read timeout"
        if isinstance(exc, httpx.ConnectTimeout) and self._timeout.connect is not None:
            return f"no connection within the {self._timeout.connect:g} s connect timeout"
        return str(exc) or "no detail given"

    def _status_error(
        self, spec: EndpointSpec, offset: int, response: httpx.Response, body: bytes, attempts: int
    ) -> OneRosterError:
        status = response.status_code
        # API requests are GETs; a POST answer is the OAuth 2 token endpoint's (see auth.py).
        from_token_endpoint = response.request.method == "POST"
        try:
            info = status_info(orjson.loads(body))
        except orjson.JSONDecodeError:
            info = None
        if status in NOT_OFFERED_STATUSES and not spec.required and not from_token_endpoint:
            return EndpointNotOffered(
                spec.name,
                status,
                label=self.label,
                said=self._redact(_words(response, body, info)),
                code_major=self._redact(info.code_major) if info and info.code_major else None,
                description=self._redact(description) if (description := _description(info)) else None,
            )
        detail = f"token request HTTP {status}" if from_token_endpoint else f"HTTP {status}"
        note: str = getattr(self.auth, "unauthorized_note", "")
        if status == 401 and note:
            detail += f" {note}"
        detail += f"{_after(attempts)} ({_words(response, body, info)})"
        if status == 401:
            hint: str = getattr(self.auth, "unauthorized_hint", "check the credentials")
            detail += f" — {hint}"
        return self._error_quoting(spec, offset, detail, status, info)

    def _shape_error(
        self,
        spec: EndpointSpec,
        offset: int,
        response: httpx.Response,
        body: bytes,
        payload: Any,
        key: str,
        prefix: str = "",
    ) -> OneRosterError:
        """A 200 whose JSON is not what was asked for, quoting what it holds instead (often an imsx error)."""
        info = status_info(payload)
        detail = f"{prefix}HTTP 200 without a {key!r} {'array' if key == spec.envelope_key else 'object'}"
        return self._error_quoting(spec, offset, f"{detail} ({_words(response, body, info)})", 200, info)

    def _error_quoting(
        self, spec: EndpointSpec, offset: int, detail: str, status: int, info: StatusInfo | None
    ) -> OneRosterError:
        return self._error(
            spec,
            offset,
            detail,
            status=status,
            code_major=info.code_major if info else None,
            description=_description(info),
        )


def _after(attempts: int) -> str:
    """`` after N attempts`` once a request was retried; nothing when it was asked once."""
    return f" after {attempts} attempts" if attempts > 1 else ""


def _description(info: StatusInfo | None) -> str | None:
    """The imsx_description for an error's attribute, cleaned like every provider text that reaches a log."""
    return clean_text(info.description, 400) if info and info.description else None


def _words(response: httpx.Response, body: bytes, info: StatusInfo | None) -> str:
    return provider_words(response.headers.get("Content-Type"), body, info.summary() if info else None)


def _unreadable_json(response: httpx.Response, body: bytes, error: orjson.JSONDecodeError) -> str:
    """Why a 200's body could not be read: empty, JSON that breaks off, or not JSON at all (an HTML page)."""
    content_type = response.headers.get("Content-Type")
    if not body.strip():
        return f"response body is empty ({provider_words(content_type, b'')})"
    if body.lstrip()[:1] in (b"{", b"["):
        # The first bytes of a cut JSON body say nothing; where it breaks off does.
        return (
            f"response JSON is cut short or malformed: {error.msg} at byte {error.pos} of {len(body)}"
            f" ({clean_text(content_type) if content_type else 'no Content-Type'})"
        )
    return f"response is not JSON ({provider_words(content_type, body)})"


def _http_date(value: str | None) -> datetime | None:
    """An HTTP ``Date`` header as an aware datetime, or None when absent or unreadable."""
    if not value:
        return None
    try:
        return parsedate_to_datetime(value).astimezone(UTC)
    except (TypeError, ValueError):
        return None


def _same_server(link: httpx.URL, base: httpx.URL) -> bool:
    """A next link may stay on the provider's origin, or move its host from http to https; nothing else."""
    if _origin(link) == _origin(base):
        return True
    return link.scheme == "https" and base.scheme == "http" and link.host == base.host and link.port in (None, 443)


def _origin(url: httpx.URL) -> str:
    return f"{url.scheme}://{url.host}:{url.port or (443 if url.scheme == 'https' else 80)}"
