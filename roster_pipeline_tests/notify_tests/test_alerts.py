"""district_alerts_sensor against a real webhook receiver and a real SMTP server on 127.0.0.1, over real state: a
quarantine written by the guard's own function, failed runs in a Dagster instance, a district that never published."""

from __future__ import annotations

import json
import subprocess
import sys

import dagster as dg
from dagster._core.utils import make_new_run_id

from roster_pipeline.defs.run_recovery import HOST_TAG, PID_TAG, recover_dead_runs
from roster_pipeline.store.guard import (
    GuardReport,
    describe_quarantine,
    discard_quarantined,
    mark_quarantined,
    quarantine_state,
)
from roster_pipeline.store.process_owners import machine
from roster_pipeline_tests.notify_tests.conftest import (
    DISTRICT_SECRET,
    SMTP_PASSWORD_ENV,
    WEBHOOK_ENV,
    AlertWorld,
    district_entry,
)
from roster_pipeline_tests.notify_tests.receivers import Mailbox, SelfSignedCertificate


def quarantine(world: AlertWorld, district_id: str = "oak") -> None:
    report = GuardReport(students_before=80, students_removed=30, links_before=60, links_removed=2)
    report.reasons.append("would remove 30 of 80 active students (38% > 10%)")
    mark_quarantined(world.lake, district_id, report, [])


def run_district(world: AlertWorld, district_id: str, *, error: str | None = None) -> str:
    """One run tagged with the district, as the schedules and `sync` tag theirs; it fails with `error`."""

    @dg.asset(name="users")
    def users() -> None:
        if error:
            raise RuntimeError(error)

    result = dg.materialize(
        [users], instance=world.instance, tags={"roster/district": district_id}, raise_on_error=False
    )
    return result.run_id


def of_kind(texts: list[str], words: str) -> list[str]:
    return [text for text in texts if words in text.splitlines()[0]]


def test_without_a_notifications_section_the_sensor_skips_quietly(alert_world):
    quarantine(alert_world)
    result = alert_world.tick()
    assert isinstance(result, dg.SkipReason)
    assert result.skip_message == "no notification channels configured (the registry has no `notifications` section)"


def test_a_quarantine_is_told_once_per_channel_with_reasons_counts_and_the_fixing_commands(
    both_channels, webhook, mailbox
):
    quarantine(both_channels)
    both_channels.tick()

    (text,) = of_kind(webhook.texts(), "quarantined")
    subject, why, *described, fix = text.splitlines()
    assert subject == "District oak (Oak Unified) is quarantined"
    assert why == "Why: the mass-deletion guard refused its publish; the published roster is unchanged."
    assert "\n".join(described) == describe_quarantine(quarantine_state(both_channels.lake, "oak") or {})
    assert "would remove 30 of 80 active students (38% > 10%)" in described[0]
    assert "`roster-pipeline release oak`" in fix and "`roster-pipeline discard oak`" in fix
    (mail,) = [m for m in mailbox.messages if "quarantined" in m["Subject"]]
    assert mail["Subject"] == "District oak (Oak Unified) is quarantined"
    assert mail["From"] == "roster@example.org" and mail["X-Envelope-To"] == "ops@example.org, it@example.org"
    assert text + "\n" in mailbox.bodies()

    posts, mails = len(webhook.posts), len(mailbox.messages)
    result = both_channels.tick()
    assert (len(webhook.posts), len(mailbox.messages)) == (posts, mails)
    assert isinstance(result, dg.SensorResult) and result.skip_reason
    assert "0 message(s) sent" in (result.skip_reason.skip_message or "")


def test_a_cleared_quarantine_is_resolved_once_and_a_new_one_is_told_again(both_channels, webhook, mailbox):
    quarantine(both_channels)
    both_channels.tick()
    discard_quarantined(both_channels.lake, "oak")
    both_channels.tick()
    both_channels.tick()
    assert of_kind(webhook.texts(), "no longer quarantined") == [
        "District oak (Oak Unified) is no longer quarantined\nResolved: District oak (Oak Unified) is quarantined"
    ]
    assert len([m for m in mailbox.messages if "no longer quarantined" in m["Subject"]]) == 1

    quarantine(both_channels)
    both_channels.tick()
    both_channels.tick()
    assert len(of_kind(webhook.texts(), "is quarantined")) == 2
    assert len([m for m in mailbox.messages if m["Subject"].endswith("is quarantined")]) == 2


def test_a_district_that_never_published_is_told_stale_with_its_schedule_and_the_sync_command(
    both_channels, webhook, mailbox
):
    both_channels.districts.append(district_entry("elm", "Elm County", schedule="0 4 * * *", enabled=False))
    both_channels.tick()
    both_channels.tick()
    (text,) = webhook.texts()  # the disabled district is not watched
    assert text.splitlines()[0] == "District oak (Oak Unified) is stale"
    assert "never published, but its schedule `0 2 * * *` (UTC) fired at " in text
    assert "`roster-pipeline sync oak`" in text and "`roster-pipeline check oak`" in text
    assert [m["Subject"] for m in mailbox.messages] == ["District oak (Oak Unified) is stale"]


def test_failed_runs_in_a_row_are_one_problem_with_the_latest_error_until_a_run_succeeds(
    both_channels, webhook, mailbox
):
    both_channels.notifications = {"webhook": {"url_env": WEBHOOK_ENV}, "failed_runs": 3, "resolved": True}
    first = run_district(both_channels, "oak", error="endpoint orgs: HTTP 503")
    run_district(both_channels, "oak", error="endpoint orgs: HTTP 503")
    run_district(both_channels, "elm-other-district", error="not oak's")
    both_channels.tick()
    assert of_kind(webhook.texts(), "in a row") == []

    latest = run_district(both_channels, "oak", error="district 'oak', endpoint users: HTTP 401 after token refresh")
    both_channels.tick()
    run_district(both_channels, "oak", error="a fourth failure is the same problem")
    both_channels.tick()
    (text,) = of_kind(webhook.texts(), "in a row")
    assert text.splitlines()[0] == "District oak (Oak Unified) failed 3 runs in a row"
    assert f"(first {first}, latest {latest})" in text
    assert "Latest error: users: RuntimeError: district 'oak', endpoint users: HTTP 401 after token refresh" in text
    assert f"read run {latest} in the Dagster UI" in text and "`roster-pipeline sync oak`" in text
    assert mailbox.messages == []  # only the webhook is configured

    run_district(both_channels, "oak")
    both_channels.tick()
    assert of_kind(webhook.texts(), "successful run") == [
        "District oak (Oak Unified) has had a successful run\n"
        "Resolved: District oak (Oak Unified) failed 3 runs in a row"
    ]
    for _ in range(3):
        run_district(both_channels, "oak", error="endpoint orgs: HTTP 503")
    both_channels.tick()
    assert len(of_kind(webhook.texts(), "in a row")) == 2


def test_runs_killed_and_recovered_count_as_failed_and_quote_the_recovery(both_channels, webhook):
    both_channels.notifications = {"webhook": {"url_env": WEBHOOK_ENV}, "failed_runs": 2}
    for _ in range(2):
        dead = subprocess.Popen([sys.executable, "-c", "pass"])
        dead.wait()
        run = dg.DagsterRun(
            job_name="district_sync",
            run_id=make_new_run_id(),
            status=dg.DagsterRunStatus.STARTED,
            tags={PID_TAG: f"{dead.pid}:0", HOST_TAG: machine(), "roster/district": "oak"},
        )
        both_channels.instance.add_run(run)
        assert recover_dead_runs(both_channels.instance, lambda line: None) == [run.run_id]
    both_channels.tick()
    (text,) = of_kind(webhook.texts(), "in a row")
    assert f"Latest error: run {run.run_id} (district 'oak') was left STARTED by process {dead.pid}" in text


def test_a_down_webhook_marks_nothing_sent_and_the_email_still_goes(both_channels, webhook, mailbox, capfd):
    quarantine(both_channels)
    webhook.stop()
    result = both_channels.tick()
    assert isinstance(result, dg.SensorResult) and result.skip_reason
    assert "webhook failed (see the log), tried again next tick" in (result.skip_reason.skip_message or "")
    assert len([m for m in mailbox.messages if "quarantined" in m["Subject"]]) == 1
    assert json.loads(both_channels.cursor or "{}")["oak/quarantine"]["told"] == ["email"]
    log = capfd.readouterr().err
    assert "'District oak (Oak Unified) is quarantined' not sent by webhook, tried again next tick: " in log
    assert "ConnectError" in log

    webhook.start()
    both_channels.tick()
    both_channels.tick()
    assert len(of_kind(webhook.texts(), "quarantined")) == 1
    assert len([m for m in mailbox.messages if "quarantined" in m["Subject"]]) == 1


def test_a_refusing_smtp_server_is_tried_again_on_the_next_tick(both_channels, webhook, mailbox, capfd):
    quarantine(both_channels)
    mailbox.refuse = True
    both_channels.tick()
    assert mailbox.messages == [] and len(of_kind(webhook.texts(), "quarantined")) == 1
    assert "not sent by email, tried again next tick: e-mail via 127.0.0.1:" in capfd.readouterr().err

    mailbox.refuse = False
    both_channels.tick()
    both_channels.tick()
    assert len([m for m in mailbox.messages if "quarantined" in m["Subject"]]) == 1
    assert len(of_kind(webhook.texts(), "quarantined")) == 1


def test_an_unset_secret_variable_is_named_and_retried(both_channels, webhook, monkeypatch, capfd):
    monkeypatch.delenv(WEBHOOK_ENV)
    quarantine(both_channels)
    both_channels.tick()
    assert "environment variable ROSTER_ALERT_WEBHOOK is not set" in capfd.readouterr().err
    monkeypatch.setenv(WEBHOOK_ENV, webhook.url)
    both_channels.tick()
    assert len(of_kind(webhook.texts(), "quarantined")) == 1


def test_no_secret_reaches_a_message_a_log_or_a_result(alert_world, webhook, tmp_path, monkeypatch, capfd):
    certificate = SelfSignedCertificate(tmp_path)
    monkeypatch.setenv("SSL_CERT_FILE", str(certificate.cert_file))
    password = "smtp-pa55word-9d1e"
    mailbox = Mailbox(tls=certificate, login="alerts", password=password).start()
    try:
        monkeypatch.setenv(SMTP_PASSWORD_ENV, "wrong-" + password)
        alert_world.notifications = {
            "webhook": {"url_env": WEBHOOK_ENV},
            "email": {
                "host": "127.0.0.1",
                "port": mailbox.port,
                "username": "alerts",
                "password_env": SMTP_PASSWORD_ENV,
                "from": "roster@example.org",
                "to": "ops@example.org",
            },
            "failed_runs": 1,
        }
        webhook.status = 404  # its error page quotes the hook's secret path
        run_district(alert_world, "oak", error=f"token refused for client secret {DISTRICT_SECRET}")
        capfd.readouterr()  # the run's own log, not the sensor's
        results = [alert_world.tick()]
        assert mailbox.messages == [] and webhook.posts == []
        log = capfd.readouterr().err
        assert "not sent by webhook, tried again next tick: webhook (URL in ROSTER_ALERT_WEBHOOK): HTTP 404" in log
        assert "not sent by email, tried again next tick: e-mail via 127.0.0.1" in log
        assert "SMTPAuthenticationError" in log

        webhook.status = 200
        monkeypatch.setenv(SMTP_PASSWORD_ENV, password)
        results.append(alert_world.tick())
        log += capfd.readouterr().err
    finally:
        mailbox.stop()
    assert mailbox.messages and mailbox.logins == ["alerts"] * len(mailbox.messages)  # over STARTTLS, as required
    (failing,) = of_kind(webhook.texts(), "failed its latest run")
    assert "Latest error: users: RuntimeError: token refused for client secret ***" in failing
    texts = webhook.texts() + mailbox.bodies() + [m["Subject"] for m in mailbox.messages]
    texts += [str(r.skip_reason.skip_message) for r in results if isinstance(r, dg.SensorResult) and r.skip_reason]
    texts += [log, alert_world.cursor or ""]
    for secret in (webhook.url, webhook.url.rsplit("/", 1)[-1], password, DISTRICT_SECRET):
        assert not [text for text in texts if secret in text], secret


def test_with_resolved_off_a_cleared_problem_is_forgotten_silently(both_channels, webhook):
    both_channels.notifications = {"webhook": {"url_env": WEBHOOK_ENV}, "resolved": False}
    quarantine(both_channels)
    both_channels.tick()
    discard_quarantined(both_channels.lake, "oak")
    both_channels.tick()
    assert of_kind(webhook.texts(), "no longer") == []
    assert "oak/quarantine" not in json.loads(both_channels.cursor or "{}")
