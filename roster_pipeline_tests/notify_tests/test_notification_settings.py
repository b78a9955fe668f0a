"""The registry's `notifications` section: what it accepts, and errors that name the field without quoting a secret."""

from __future__ import annotations

from typing import Any

import pytest

from roster_pipeline.config.registry import RegistryError, parse_registry
from roster_pipeline.notify.channels import EmailChannel, NotificationSettings, WebhookChannel, notification_settings
from roster_pipeline_tests.notify_tests.conftest import district_entry


def settings_of(section: Any) -> NotificationSettings | None:
    registry = parse_registry({"districts": [district_entry("oak", "Oak")], "notifications": section}, "test.yaml")
    return notification_settings(registry)


def problems_of(section: Any) -> list[str]:
    with pytest.raises(RegistryError) as raised:
        settings_of(section)
    return raised.value.problems


def test_a_registry_without_the_section_has_no_notifications():
    assert notification_settings(parse_registry({"districts": [district_entry("oak", "Oak")]})) is None
    assert settings_of(None) is None


def test_the_readme_example_reads_as_a_webhook_and_an_email_channel_with_defaults():
    settings = settings_of(
        {
            "webhook": {"url_env": "ROSTER_ALERT_WEBHOOK"},
            "email": {
                "host": "smtp.example.org",
                "username": "alerts",
                "password_env": "ROSTER_SMTP_PASSWORD",
                "from": "roster@example.org",
                "to": "ops@example.org",
            },
        }
    )
    assert settings == NotificationSettings(
        channels=(
            WebhookChannel("ROSTER_ALERT_WEBHOOK"),
            EmailChannel(
                host="smtp.example.org",
                sender="roster@example.org",
                to=("ops@example.org",),
                port=587,
                starttls=True,
                username="alerts",
                password_env="ROSTER_SMTP_PASSWORD",
            ),
        ),
        failed_runs=3,
        resolved=True,
    )
    assert settings.secret_names == ("ROSTER_ALERT_WEBHOOK", "ROSTER_SMTP_PASSWORD")


def test_implicit_tls_defaults_to_port_465():
    settings = settings_of({"email": {"host": "smtp.example.org", "ssl": True, "from": "a@x.org", "to": ["b@x.org"]}})
    assert settings and settings.channels == (
        EmailChannel("smtp.example.org", "a@x.org", ("b@x.org",), port=465, starttls=False, ssl=True),
    )


def test_a_secret_written_inline_is_refused_without_being_quoted():
    url = "https://hooks.slack.com/services/T000/B000/XXXXXXXXXXXXXXXX"
    problems = problems_of(
        {
            "webhook": {"url_env": url},
            "email": {"host": "h", "username": "u", "password_env": "hunter2!", "from": "a@x.org", "to": "b@x.org"},
        }
    )
    assert problems == [
        "notifications.webhook.url_env: must name the environment variable that holds the secret "
        "(e.g. ROSTER_ALERT_SECRET), never the secret itself",
        "notifications.email.password_env: must name the environment variable that holds the secret "
        "(e.g. ROSTER_ALERT_SECRET), never the secret itself",
    ]
    assert not [p for p in problems if url in p or "hunter2!" in p]


def test_every_bad_field_is_named_in_one_pass():
    problems = problems_of(
        {
            "webhook": {"url": "https://example.org/hook"},
            "email": {"host": "", "port": "smtp", "from": "nobody", "to": [], "username": "u", "tls": True},
            "failed_runs": 0,
            "resolved": "yes",
            "slack": {},
        }
    )
    assert problems == [
        "notifications.slack: unknown setting (known: webhook, email, failed_runs, resolved)",
        "notifications.webhook.url: unknown setting (known: url_env; the URL is a secret)",
        "notifications.webhook.url_env: must name the environment variable that holds the secret "
        "(e.g. ROSTER_ALERT_SECRET), never the secret itself",
        "notifications.email.tls: unknown setting (known: host, from, to, ssl, starttls, port, username, password_env)",
        "notifications.email.host: the SMTP server's host name is required",
        "notifications.email.from: 'nobody' must be an e-mail address",
        "notifications.email.to: '[]' must be an e-mail address or a list of them",
        "notifications.email.port: 'smtp' must be a TCP port number",
        "notifications.email.password_env: required with username (the SMTP password's variable)",
        "notifications.failed_runs: '0' must be a whole number of runs, 1 or more",
        "notifications.resolved: 'yes' must be true or false",
    ]


def test_a_password_is_only_sent_over_tls():
    problems = problems_of(
        {
            "email": {
                "host": "smtp.example.org",
                "starttls": False,
                "username": "alerts",
                "password_env": "ROSTER_SMTP_PASSWORD",
                "from": "a@x.org",
                "to": "b@x.org",
            }
        }
    )
    assert problems == ["notifications.email.password_env: a password is only sent over TLS (starttls or ssl)"]


def test_a_section_without_a_channel_is_a_mistake():
    assert problems_of({"failed_runs": 2}) == [
        "notifications: names no channel (add webhook: {url_env: ...} and/or email: {...})"
    ]
    assert problems_of(["webhook"]) == ["notifications: must be a mapping of webhook, email, failed_runs, resolved"]


def test_validate_refuses_a_bad_section_and_warns_of_unset_channel_variables(tmp_path, monkeypatch, capsys):
    import yaml

    from roster_pipeline.app.cli import main

    registry = tmp_path / "districts.yaml"
    monkeypatch.setenv("ROSTER_DISTRICTS_FILE", str(registry))
    monkeypatch.delenv("ROSTER_ALERT_WEBHOOK", raising=False)
    registry.write_text(yaml.safe_dump({"districts": [district_entry("oak", "Oak")], "notifications": {"webhook": {}}}))
    assert main(["validate"]) == 2
    assert "notifications.webhook" in capsys.readouterr().err

    section = {"webhook": {"url_env": "ROSTER_ALERT_WEBHOOK"}}
    registry.write_text(yaml.safe_dump({"districts": [district_entry("oak", "Oak")], "notifications": section}))
    assert main(["validate"]) == 0
    assert "notifications: environment variable ROSTER_ALERT_WEBHOOK is not set" in capsys.readouterr().err


def test_a_bad_section_does_not_stop_rosters_syncing():
    """A typo in the alert channels is refused where alerts are sent and by validate, never by the districts' syncs:
    the front desk needs the roster more than the operator needs the e-mail."""
    registry = parse_registry(
        {"districts": [district_entry("oak", "Oak")], "notifications": {"webhook": {"url_evn": "HOOK"}}}, "test.yaml"
    )
    assert [d.id for d in registry.enabled] == ["oak"]
    with pytest.raises(RegistryError) as raised:
        notification_settings(registry)
    assert "notifications.webhook.url_evn" in str(raised.value)
