"""Fault injection for one sandbox district: the failures a real OneRoster provider produces mid-sync."""

from __future__ import annotations

import threading
from collections.abc import Callable
from dataclasses import dataclass

# How a truncated body is cut: "length" announces the whole body's Content-Length, sends half and closes the
# connection (a transfer that died); "json" sends the first half as if it were all (a proxy that gave up).
TRUNCATIONS = ("length", "json")


@dataclass(frozen=True)
class Fault:
    """What to do instead of answering: `kind` is "drop", "rate_limit", "server_error", "html", "envelope" or
    "endpoint". `text` is the imsx description of a "server_error" or "envelope", or the title of an "html" page."""

    kind: str
    status: int = 0
    retry_after: int | None = None
    text: str = ""


class Faults:
    """Faults queued for a district's API requests (the token endpoint is never affected). Thread-safe.

    Counted faults are consumed one per API request, in this order: dropped connection, 429, 5xx, HTML page,
    200 error envelope. Then the request is delayed if `slow` is set, authenticated (where token expiry bites)
    and checked against failing endpoints; a truncation is consumed only by an answer that carries records.
    """

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self.clear()

    def clear(self) -> None:
        """Remove every queued fault."""
        with self._lock:
            self._drops = 0
            self._rate_limits = 0
            self._retry_after = 1
            self._errors = 0
            self._error_status = 503
            self._error_description = ""
            self._html_pages = 0
            self._html_status = 200
            self._html_title = ""
            self._envelopes = 0
            self._envelope_description = ""
            self._truncations = 0
            self._truncation = "length"
            self._delay = 0.0
            self._slow_left: int | None = None
            self._expire_after: int | None = None
            self._failing: dict[str, tuple[int, int]] = {}
            self._no_single_records = False
            self._failing_records: dict[str, int] = {}
            self._changes: list[tuple[str, int, Callable[[], None]]] = []

    def rate_limit(self, count: int = 3, retry_after: int = 1) -> Faults:
        """Answer the next `count` API requests with 429 Too Many Requests and `Retry-After` seconds."""
        with self._lock:
            self._rate_limits, self._retry_after = count, retry_after
        return self

    def server_errors(self, count: int = 2, status: int = 503, description: str = "") -> Faults:
        """Answer the next `count` API requests with `status` (a 5xx) and an imsx error body whose
        imsx_description is `description` (a generic one when empty)."""
        if not 500 <= status <= 599:
            raise ValueError(f"server_errors status must be 5xx, got {status}")
        with self._lock:
            self._errors, self._error_status, self._error_description = count, status, description
        return self

    def html_pages(self, count: int = 1, status: int = 200, title: str = "Scheduled maintenance") -> Faults:
        """Answer the next `count` API requests with `status` and an HTML page titled `title`: the maintenance
        or captive-portal page a proxy in front of the API serves, often with 200."""
        with self._lock:
            self._html_pages, self._html_status, self._html_title = count, status, title
        return self

    def error_envelopes(self, count: int = 1, description: str = "Service suspended for this tenant") -> Faults:
        """Answer the next `count` API requests with 200 and an imsx failure status in place of records, as
        providers that report every error with 200 do."""
        with self._lock:
            self._envelopes, self._envelope_description = count, description
        return self

    def truncate_bodies(self, count: int = 1, how: str = "length") -> Faults:
        """Cut the body of the next `count` answers that carry records, the way `how` says (see TRUNCATIONS)."""
        if how not in TRUNCATIONS:
            raise ValueError(f"truncate_bodies how must be one of {TRUNCATIONS}, not {how!r}")
        with self._lock:
            self._truncations, self._truncation = count, how
        return self

    def drop_connections(self, count: int = 1) -> Faults:
        """Close the socket of the next `count` API requests without sending any response."""
        with self._lock:
            self._drops = count
        return self

    def slow(self, seconds: float = 0.5, count: int | None = None) -> Faults:
        """Delay API responses by `seconds`: the next `count` of them, or all until `clear()` if None."""
        with self._lock:
            self._delay, self._slow_left = seconds, count
        return self

    def expire_tokens_after(self, requests: int = 5) -> Faults:
        """After `requests` more API requests, every token issued so far stops working (401)."""
        with self._lock:
            self._expire_after = requests
        return self

    def fail_endpoint(self, endpoint: str, status: int = 500, after_offset: int = 0) -> Faults:
        """Fail every request to `endpoint` whose offset is >= `after_offset`, until `clear()`."""
        with self._lock:
            self._failing[endpoint] = (status, after_offset)
        return self

    def without_single_records(self) -> Faults:
        """Answer every single-record request (`GET users/{id}`) with 404, as a provider that implements only the
        collections does, until `clear()`."""
        with self._lock:
            self._no_single_records = True
        return self

    def single_records_missing(self) -> bool:
        with self._lock:
            return self._no_single_records

    def fail_records(self, sourced_ids: set[str], status: int = 500) -> Faults:
        """Answer single-record requests for these sourcedIds with `status`, until `clear()`."""
        with self._lock:
            self._failing_records.update(dict.fromkeys(sourced_ids, status))
        return self

    def record_failure(self, sourced_id: str) -> int | None:
        with self._lock:
            return self._failing_records.get(sourced_id)

    def change_while_paging(self, endpoint: str, at_offset: int, change: Callable[[], None]) -> Faults:
        """Run `change` (e.g. hard-delete records from the district) once, just before answering the first
        request for `endpoint` at an offset >= `at_offset`: the SIS changing under a client that pages."""
        with self._lock:
            self._changes.append((endpoint, at_offset, change))
        return self

    # -- used by the server ---------------------------------------------------------------------------

    def take_transport_fault(self) -> Fault | None:
        """The counted fault this request suffers, if any (consumes it)."""
        with self._lock:
            if self._drops:
                self._drops -= 1
                return Fault("drop")
            if self._rate_limits:
                self._rate_limits -= 1
                return Fault("rate_limit", 429, self._retry_after)
            if self._errors:
                self._errors -= 1
                return Fault("server_error", self._error_status, text=self._error_description)
            if self._html_pages:
                self._html_pages -= 1
                return Fault("html", self._html_status, text=self._html_title)
            if self._envelopes:
                self._envelopes -= 1
                return Fault("envelope", 200, text=self._envelope_description)
            return None

    def take_truncation(self) -> str | None:
        """How to cut this answer's body (one of TRUNCATIONS), if it is to be cut (consumes it)."""
        with self._lock:
            if not self._truncations:
                return None
            self._truncations -= 1
            return self._truncation

    def take_delay(self) -> float:
        """Seconds to stall this request before answering."""
        with self._lock:
            if not self._delay or self._slow_left == 0:
                return 0.0
            if self._slow_left is not None:
                self._slow_left -= 1
            return self._delay

    def tokens_expire_now(self) -> bool:
        """Count one authenticated request; True exactly when the token-expiry countdown runs out."""
        with self._lock:
            if self._expire_after is None:
                return False
            if self._expire_after == 0:
                self._expire_after = None
                return True
            self._expire_after -= 1
            return False

    def take_changes(self, endpoint: str, offset: int) -> list[Callable[[], None]]:
        """The changes due before this page is answered (each runs once)."""
        with self._lock:
            due = [c for c in self._changes if c[0] == endpoint and offset >= c[1]]
            self._changes = [c for c in self._changes if c not in due]
        return [change for _, _, change in due]

    def endpoint_fault(self, endpoint: str, offset: int) -> Fault | None:
        """The failure configured for this endpoint at this offset, if any (not consumed)."""
        with self._lock:
            failing = self._failing.get(endpoint)
        if failing is None or offset < failing[1]:
            return None
        return Fault("endpoint", failing[0])
