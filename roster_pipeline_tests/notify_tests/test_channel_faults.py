"""A channel that cannot deliver, for whatever reason, is that channel's failure for this tick and never the sensor's:
a webhook URL read from a file with its trailing newline, a URL httpx cannot even build a request from, a mail host
the resolver refuses to encode. Against the real receivers on 127.0.0.1, over the sensor's real ticks."""

from __future__ import annotations

import json

import dagster as dg
import pytest

from roster_pipeline.notify.channels import DeliveryError, Message, WebhookChannel
from roster_pipeline_tests.notify_tests.conftest import WEBHOOK_ENV, AlertWorld
from roster_pipeline_tests.notify_tests.receivers import Mailbox, WebhookReceiver
from roster_pipeline_tests.notify_tests.test_alerts import of_kind, quarantine

QUARANTINED = "'District oak (Oak Unified) is quarantined'"


def told(world: AlertWorld) -> list[str]:
    return json.loads(world.cursor or "{}")["oak/quarantine"]["told"]


def skip_message(result: dg.SensorResult | dg.SkipReason) -> str:
    assert isinstance(result, dg.SensorResult) and result.skip_reason
    return result.skip_reason.skip_message or ""


def quarantine_mails(mailbox: Mailbox) -> int:
    return len([m for m in mailbox.messages if "quarantined" in m["Subject"]])


@pytest.mark.parametrize("tail", ["\n", "\r\n", "  \n"])
def test_a_webhook_url_read_from_a_file_with_its_trailing_newline_delivers(both_channels, webhook, monkeypatch, tail):
    monkeypatch.setenv(WEBHOOK_ENV, webhook.url + tail)
    quarantine(both_channels)
    result = both_channels.tick()
    assert skip_message(result).endswith(" message(s) sent")  # nothing failed
    assert len(of_kind(webhook.texts(), "quarantined")) == 1
    assert sorted(told(both_channels)) == ["email", "webhook"]


def test_the_channel_itself_posts_to_the_url_without_its_trailing_newline(webhook, monkeypatch):
    monkeypatch.setenv(WEBHOOK_ENV, webhook.url + "\n")
    channel = WebhookChannel(WEBHOOK_ENV)
    channel.send(Message("subject", "body"))
    assert webhook.texts() == ["subject\nbody"]
    assert webhook.url in channel.secret_values() and webhook.url + "\n" in channel.secret_values()


# A control character inside the URL (two secrets pasted into one file), a host IDNA refuses (UnicodeError, not even
# an httpx error), no scheme at all: none can become a request.
UNUSABLE = {
    "control character": ("http://127.0.0.1:{port}/services/T0ALERTS/B0ROSTER/s3cr3t-h00k\n-t0k3n", "InvalidURL"),
    "bad host": ("http://xn--a.example.org/services/T0ALERTS/B0ROSTER/s3cr3t-h00k-t0k3n", "InvalidCodepoint"),
    "no scheme": ("hooks.example.org/services/T0ALERTS/B0ROSTER/s3cr3t-h00k-t0k3n", "protocol"),
}


@pytest.mark.parametrize("case", sorted(UNUSABLE))
def test_an_unusable_webhook_url_is_logged_without_the_url_the_email_goes_and_the_webhook_is_retried(
    both_channels, webhook, mailbox, monkeypatch, capfd, case
):
    template, words = UNUSABLE[case]
    bad_url = template.format(port=webhook.port)
    monkeypatch.setenv(WEBHOOK_ENV, bad_url)
    quarantine(both_channels)
    capfd.readouterr()

    result = both_channels.tick()  # before the fix, an InvalidURL or UnicodeError escaped here, on every tick
    assert "webhook failed (see the log), tried again next tick" in skip_message(result)
    assert quarantine_mails(mailbox) == 1 and webhook.posts == []
    assert told(both_channels) == ["email"]
    log = capfd.readouterr().err
    line = next(line for line in log.splitlines() if "not sent by webhook" in line)
    assert f"{QUARANTINED} not sent by webhook, tried again next tick: webhook (URL in {WEBHOOK_ENV}): " in line
    assert "not a usable URL" in line and words in line
    for piece in (bad_url, "s3cr3t-h00k", "T0ALERTS", "hooks.example.org", "xn--a.example.org"):
        assert piece not in log, piece
    assert bad_url not in (both_channels.cursor or "")

    monkeypatch.setenv(WEBHOOK_ENV, webhook.url)
    both_channels.tick()
    both_channels.tick()
    assert len(of_kind(webhook.texts(), "quarantined")) == 1
    assert quarantine_mails(mailbox) == 1
    assert sorted(told(both_channels)) == ["email", "webhook"]


def test_an_unusable_url_is_a_delivery_error_of_the_channel(monkeypatch):
    monkeypatch.setenv(WEBHOOK_ENV, "http://127.0.0.1:9/services/T0ALERTS/B0ROSTER/s3cr3t\t-h00k")
    with pytest.raises(DeliveryError) as caught:
        WebhookChannel(WEBHOOK_ENV).send(Message("subject", "body"))
    assert str(caught.value).startswith(f"webhook (URL in {WEBHOOK_ENV}): not a usable URL: InvalidURL: ")
    assert "s3cr3t" not in str(caught.value) and "T0ALERTS" not in str(caught.value)


def test_a_mail_host_the_resolver_cannot_encode_fails_the_email_alone_and_is_retried(
    both_channels, webhook, mailbox, capfd
):
    assert both_channels.notifications is not None
    both_channels.notifications["email"]["host"] = "x" * 64 + ".example.org"  # a label past DNS's 63 characters
    quarantine(both_channels)
    capfd.readouterr()

    result = both_channels.tick()  # smtplib raises UnicodeError, neither an OSError nor an SMTPException
    assert "email failed (see the log), tried again next tick" in skip_message(result)
    assert len(of_kind(webhook.texts(), "quarantined")) == 1
    assert told(both_channels) == ["webhook"]
    assert f"{QUARANTINED} not sent by email, tried again next tick: UnicodeError: " in capfd.readouterr().err

    both_channels.notifications["email"]["host"] = "127.0.0.1"
    both_channels.tick()
    both_channels.tick()
    assert quarantine_mails(mailbox) == 1
    assert len(of_kind(webhook.texts(), "quarantined")) == 1


def test_an_error_page_quoting_the_hook_path_past_the_excerpt_blanks_what_is_shown_of_it(monkeypatch):
    receiver = WebhookReceiver(token="T0ALERTS/B0ROSTER/" + "s3cr3t-h00k-t0k3n" * 12).start()
    try:
        monkeypatch.setenv(WEBHOOK_ENV, receiver.url)
        receiver.status = 404  # "no_service: nothing at <path>": the path runs past the 200 characters quoted
        with pytest.raises(DeliveryError) as caught:
            WebhookChannel(WEBHOOK_ENV).send(Message("subject", "body"))
    finally:
        receiver.stop()
    assert str(caught.value) == f"webhook (URL in {WEBHOOK_ENV}): HTTP 404 no_service: nothing at ***…"
