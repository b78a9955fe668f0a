"""The district clock: strictly increasing `dateLastModified` values for sandbox mutations."""

from __future__ import annotations

import threading
from datetime import UTC, datetime, timedelta

_MS = timedelta(milliseconds=1)


def format_instant(moment: datetime) -> str:
    """Render a datetime the way OneRoster servers send `dateLastModified`: UTC, milliseconds, `Z`."""
    moment = moment.astimezone(UTC)
    return moment.strftime("%Y-%m-%dT%H:%M:%S.") + f"{moment.microsecond // 1000:03d}Z"


class LogicalClock:
    """A clock whose ticks never repeat and never go backwards.

    It follows wall-clock time, because a delta sync takes its watermark from the time it started (as
    the server saw it) and a mutation made after that must compare greater. Two mutations in the same
    millisecond would share a timestamp and make `dateLastModified>'x'` ambiguous, so each tick is at
    least one millisecond after the previous one, running ahead of the wall clock when needed.
    """

    def __init__(self, not_before: datetime | None = None) -> None:
        self._lock = threading.Lock()
        self._last = (not_before or datetime.min.replace(tzinfo=UTC)).astimezone(UTC)

    def tick(self) -> str:
        """Advance the clock and return the new instant as an ISO-8601 string."""
        with self._lock:
            now = datetime.now(UTC)
            now = now.replace(microsecond=now.microsecond // 1000 * 1000)
            self._last = max(now, self._last + _MS)
            return format_instant(self._last)

    def now(self) -> str:
        """The latest instant handed out, or the wall clock if that is later (does not advance)."""
        with self._lock:
            return format_instant(max(datetime.now(UTC), self._last))
