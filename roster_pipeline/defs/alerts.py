"""`district_alerts_sensor`: tells people, once, when a district needs them.

A problem is a district quarantined by the mass-deletion guard, stale past its schedule's window, or failing
`failed_runs` (default 3) runs in a row. Each is known by its occurrence — the quarantine's start, the publish
the district is stuck at, the first run of the failing streak — and the sensor's cursor remembers which channel
has told which occurrence. So a problem is sent once per channel; a new occurrence (cleared and back, a new
quarantine) is sent again; a cleared one gets a short "resolved" message. A delivery that fails is logged and
tried again on the next tick, and the other channel carries on. Where messages go is the registry's
`notifications` section (notifications.py); without one the sensor skips quietly.
"""

from __future__ import annotations

import json
import logging
import os
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import dagster as dg

from roster_pipeline.config.registry import DistrictConfig, Registry
from roster_pipeline.defs.resources import RosterSettings
from roster_pipeline.defs.run_tags import DISTRICT_TAG
from roster_pipeline.defs.step_failures import failure_message
from roster_pipeline.notify.channels import (
    Channel,
    DeliveryError,
    Message,
    NotificationSettings,
    PartlyDelivered,
    notification_settings,
    redact,
)
from roster_pipeline.oneroster.auth import secret_forms
from roster_pipeline.store.freshness import DistrictStatus, district_status
from roster_pipeline.store.guard import describe_quarantine, quarantine_state

ERROR_CHARS = 400
RESOLVED = {
    "quarantine": "is no longer quarantined",
    "stale": "has published again",
    "failing": "has had a successful run",
}


@dataclass(frozen=True)
class Problem:
    """One occurrence of one kind of trouble in one district, with why and the command that fixes it."""

    district: DistrictConfig
    kind: str
    identity: str
    headline: str
    why: str
    fix: str

    @property
    def key(self) -> str:
        return f"{self.district.id}/{self.kind}"

    def message(self) -> Message:
        return Message(f"District {_label(self.district)} {self.headline}", f"Why: {self.why}\nFix: {self.fix}")


def _label(district: DistrictConfig) -> str:
    return district.id if district.name == district.id else f"{district.id} ({district.name})"


def _when(moment: datetime) -> str:
    return moment.astimezone(UTC).strftime("%Y-%m-%d %H:%M UTC")


def _probe_hint(district: DistrictConfig) -> str:
    if district.source.kind != "rest":
        return ""
    return f"; `roster-pipeline check {district.id}` probes the provider's token and endpoints"


def quarantine_problem(district: DistrictConfig, state: dict[str, Any]) -> Problem:
    """Why, in the words and numbers `roster-pipeline release` shows."""
    return Problem(
        district,
        "quarantine",
        identity=state["since"],
        headline="is quarantined",
        why="the mass-deletion guard refused its publish; the published roster is unchanged.\n"
        + describe_quarantine(state),
        fix="if the provider had a bad night, nothing: the next sync is a full one and clears it. If the change is "
        f"real, `roster-pipeline release {district.id}` shows what it removes and lets the next sync publish it; "
        f"`roster-pipeline discard {district.id}` drops it instead.",
    )


def stale_problem(district: DistrictConfig, row: DistrictStatus, timezone: str, *, quarantined: bool) -> Problem:
    last = f"last published {_when(row.last_published)}" if row.last_published else "never published"
    why = (
        f"{last}, but its schedule `{district.schedule}` ({timezone}) fired at {_when(row.expected_since)} and "
        "that run should have published by now."
    )
    fix = f"`roster-pipeline sync {district.id}` syncs it now and prints what fails{_probe_hint(district)}."
    if quarantined:
        why += " It is quarantined: nothing publishes until that is settled."
        fix += " While it is quarantined, see the quarantine alert first."
    return Problem(
        district, "stale", row.last_published.isoformat() if row.last_published else "never", "is stale", why, fix
    )


@dataclass(frozen=True)
class FailingStreak:
    """The failed runs of a district since its last successful one (newest first in Dagster's storage)."""

    count: int
    first: dg.RunRecord
    latest: dg.RunRecord


def failing_streak(instance: dg.DagsterInstance, district_id: str) -> FailingStreak | None:
    """The district's failed runs since its latest successful run (a canceled or unfinished run neither counts
    nor breaks the streak), or None."""
    tags = {DISTRICT_TAG: district_id}
    success = instance.get_run_records(dg.RunsFilter(tags=tags, statuses=[dg.DagsterRunStatus.SUCCESS]), limit=1)
    failed = dg.RunsFilter(
        tags=tags,
        statuses=[dg.DagsterRunStatus.FAILURE],
        created_after=success[0].create_timestamp if success else None,
    )
    count = instance.get_runs_count(failed)
    if not count:
        return None
    latest = instance.get_run_records(failed, limit=1)[0]
    first = instance.get_run_records(failed, limit=1, ascending=True)[0]
    return FailingStreak(count, first, latest)


def run_error(instance: dg.DagsterInstance, run_id: str) -> str:
    """What a failed run said, trimmed: its first failed step's own error, else the run's failure message (a run
    killed, or failed before any step ran)."""
    steps = [
        entry.dagster_event
        for entry in instance.all_logs(run_id, of_type=dg.DagsterEventType.STEP_FAILURE)
        if entry.dagster_event
    ]
    if steps:  # one cause (a refused token) usually fails every endpoint: the first says what, the count how widely
        more = f" (and {len(steps) - 1} more failed step(s))" if len(steps) > 1 else ""
        return _trim(failure_message(steps[0])) + more
    runs = instance.all_logs(run_id, of_type=dg.DagsterEventType.RUN_FAILURE)
    return _trim(next((e.dagster_event.message or "" for e in reversed(runs) if e.dagster_event), "") or "not recorded")


def _trim(text: str) -> str:
    text = " ".join(text.split())
    return text if len(text) <= ERROR_CHARS else text[: ERROR_CHARS - 1] + "…"


def failing_problem(district: DistrictConfig, streak: FailingStreak, error: str) -> Problem:
    first, latest = streak.first.dagster_run.run_id, streak.latest.dagster_run.run_id
    return Problem(
        district,
        "failing",
        identity=first,
        headline=f"failed {streak.count} runs in a row" if streak.count > 1 else "failed its latest run",
        why=f"{streak.count} failed run(s) in a row since {_when(streak.first.create_timestamp)} (first {first}, "
        f"latest {latest}). Latest error: {error}",
        fix=f"read run {latest} in the Dagster UI (Runs), fix its cause, then `roster-pipeline sync {district.id}`"
        f"{_probe_hint(district)}.",
    )


def current_problems(
    instance: dg.DagsterInstance, settings: RosterSettings, registry: Registry, failed_runs: int
) -> list[Problem]:
    """Every problem of every enabled district now, read from the lake's state, the roster and Dagster's runs."""
    rows = {row.district_id: row for row in district_status(registry, settings.paths)}
    lake = settings.lake()
    problems = []
    for district in registry.enabled:
        quarantine = quarantine_state(lake, district.id)
        if quarantine:
            problems.append(quarantine_problem(district, quarantine))
        if rows[district.id].stale:
            problems.append(stale_problem(district, rows[district.id], registry.timezone, quarantined=bool(quarantine)))
        streak = failing_streak(instance, district.id)
        if streak and streak.count >= failed_runs:
            problems.append(failing_problem(district, streak, run_error(instance, streak.latest.dagster_run.run_id)))
    return problems


def resolved_message(registry: Registry, key: str, headline: str) -> Message:
    district_id, _, kind = key.partition("/")
    watched = {d.id: d for d in registry.enabled}
    if district_id not in watched:
        return Message(f"District {district_id} is no longer enabled in the registry", f"No longer watched: {headline}")
    return Message(f"District {_label(watched[district_id])} {RESOLVED[kind]}", f"Resolved: {headline}")


def district_secrets(registry: Registry) -> list[str]:
    """The values of the districts' credential variables in every form a run error may quote them (as written,
    form-encoded, in a Basic header's base64 of `id:secret`, JSON-escaped: see `secret_forms`), so each is blanked
    before a message is sent. A value read with a trailing newline is also taken without it."""
    pairs: list[tuple[str | None, str | None]] = []
    for district in registry.districts:
        if auth := getattr(district.source, "auth", None):
            pairs.append((os.environ.get(auth.client_id_env), os.environ.get(auth.client_secret_env)))
        if (sftp := getattr(district.source, "sftp", None)) and sftp.password_env:
            pairs.append((None, os.environ.get(sftp.password_env)))
    forms: list[str] = []
    for client_id, secret in pairs:
        ids = {client_id, client_id.strip()} if client_id else {None}
        for value in {secret, secret.strip()} if secret else set():
            forms += [form for each_id in ids for form in secret_forms(value, each_id)]
    return list(dict.fromkeys(forms))


class Courier:
    """Delivers messages through the channels, blanking secrets; a channel that fails (for any reason: a refusal,
    an unusable URL, an exception its library raised) rests until the next tick, and the others carry on."""

    def __init__(self, secrets: list[str], log: logging.Logger) -> None:
        self.secrets, self.log = secrets, log
        self.down: set[str] = set()
        self.sent = 0

    def deliver(self, channel: Channel, message: Message) -> bool:
        if channel.name in self.down:
            return False
        subject = redact(message.subject, self.secrets)
        try:
            channel.send(Message(subject, redact(message.body, self.secrets)))
        except PartlyDelivered as error:
            self.log.warning(f"'{subject}' by {channel.name}: {redact(str(error), self.secrets)}")
        except Exception as error:  # whatever fails one channel is its failure, never the sensor's
            self.down.add(channel.name)
            reason = str(error) if isinstance(error, DeliveryError) else f"{type(error).__name__}: {error}"
            reason = redact(reason, [*self.secrets, *channel.secret_values()])
            self.log.warning(f"'{subject}' not sent by {channel.name}, tried again next tick: {reason}")
            return False
        self.sent += 1
        self.log.info(f"'{subject}' sent by {channel.name}")
        return True


def tell(
    problems: list[Problem],
    ledger: dict[str, Any],
    notifications: NotificationSettings,
    registry: Registry,
    courier: Courier,
) -> None:
    """Send what the ledger (the sensor's cursor) says is owed, and record it there: each open problem to each
    channel not yet told, each cleared one's resolution to each channel that was told."""
    for problem in problems:
        message = problem.message()
        entry = ledger.get(problem.key)
        if entry is None or entry["identity"] != problem.identity:
            entry = ledger[problem.key] = {"identity": problem.identity, "headline": message.subject, "told": []}
        entry.pop("closed", None)
        for channel in notifications.channels:
            if channel.name not in entry["told"] and courier.deliver(channel, message):
                entry["told"].append(channel.name)
    open_keys = {problem.key for problem in problems}
    for key, entry in list(ledger.items()):
        if key in open_keys:
            continue
        closed = entry.setdefault("closed", [])
        owed = [c for c in notifications.channels if c.name in entry["told"] and c.name not in closed]
        if notifications.resolved:
            message = resolved_message(registry, key, entry["headline"])
            closed += [channel.name for channel in owed if courier.deliver(channel, message)]
        if not notifications.resolved or all(channel.name in closed for channel in owed):
            del ledger[key]


@dg.sensor(
    minimum_interval_seconds=60,
    default_status=dg.DefaultSensorStatus.RUNNING,
    description="Sends one message per new district problem (quarantined, stale past its schedule, N failed runs "
    "in a row) to the registry's `notifications` channels (webhook, e-mail), with why and the fixing command.",
)
def district_alerts_sensor(context: dg.SensorEvaluationContext, settings: RosterSettings):
    registry = settings.registry()
    notifications = notification_settings(registry)
    if notifications is None:
        return dg.SkipReason("no notification channels configured (the registry has no `notifications` section)")
    problems = current_problems(context.instance, settings, registry, notifications.failed_runs)
    ledger = json.loads(context.cursor) if context.cursor else {}
    secrets = [*notifications.secret_values(), *district_secrets(registry)]
    courier = Courier(secrets, context.log)
    tell(problems, ledger, notifications, registry, courier)
    summary = f"{len(problems)} open problem(s); {courier.sent} message(s) sent"
    if courier.down:
        summary += f"; {', '.join(sorted(courier.down))} failed (see the log), tried again next tick"
    return dg.SensorResult(skip_reason=dg.SkipReason(summary), cursor=json.dumps(ledger, sort_keys=True))
