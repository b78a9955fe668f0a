"""Cron expressions of the registry, read without Dagster (whose own reader is private).

The registry validates each district's `schedule`, and the store's freshness rule steps back through its fires.
Both read the expression the way Dagster's schedules do: five fields, or one of the `@daily`-style nicknames, in
the registry's timezone, a fire inside a daylight-saving gap happening at the first valid minute after it.
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import datetime, timedelta
from zoneinfo import ZoneInfo

from cronsim import CronSim, CronSimError

NICKNAMES = {
    "@hourly": "0 * * * *",
    "@daily": "0 0 * * *",
    "@midnight": "0 0 * * *",
    "@weekly": "0 0 * * 0",
    "@monthly": "0 0 1 * *",
    "@yearly": "0 0 1 1 *",
    "@annually": "0 0 1 1 *",
}


def _expand(expression: str) -> str:
    return NICKNAMES.get(expression.strip(), expression.strip())


def is_cron(expression: str) -> bool:
    """A five-field cron expression (or a nickname) that can fire."""
    expanded = _expand(expression)
    if len(expanded.split()) != 5:
        return False
    try:
        next(iter(CronSim(expanded, datetime(2000, 1, 1, tzinfo=ZoneInfo("UTC")))))
    except (CronSimError, StopIteration):
        return False
    return True


def fires_before(expression: str, timezone: str, moment: datetime) -> Iterator[datetime]:
    """The fires of `expression` in `timezone` at or before `moment`, latest first."""
    start = moment.astimezone(ZoneInfo(timezone)) + timedelta(seconds=1)
    return iter(CronSim(_expand(expression), start, reverse=True))


def fires_after(expression: str, timezone: str, moment: datetime) -> Iterator[datetime]:
    """The fires of `expression` in `timezone` strictly after `moment`, earliest first."""
    return iter(CronSim(_expand(expression), moment.astimezone(ZoneInfo(timezone))))
