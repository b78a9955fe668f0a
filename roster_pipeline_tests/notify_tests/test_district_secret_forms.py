"""A run error quoting a district's secret as a token endpoint echoed it — form-encoded in the body, inside the Basic
header's base64 of `id:secret` — is blanked before an alert carries it, as the secret written plainly is."""

from __future__ import annotations

import base64
from urllib.parse import quote, quote_plus

from roster_pipeline.defs.alerts import district_secrets
from roster_pipeline.notify.channels import redact
from roster_pipeline_tests.notify_tests.conftest import WEBHOOK_ENV
from roster_pipeline_tests.notify_tests.test_alerts import of_kind, run_district

CLIENT_ID, SECRET = "oak client+1", "s3cr+t/x= ä%"


def echoed_forms(client_id: str = CLIENT_ID, secret: str = SECRET) -> list[str]:
    basic = [f"{client_id}:{secret}", f"{quote_plus(client_id)}:{quote_plus(secret)}"]
    return [
        secret,
        quote(secret, safe=""),
        quote_plus(secret),
        *(base64.b64encode(pair.encode()).decode() for pair in basic),
    ]


def echo(forms: list[str]) -> str:
    return "token endpoint said: " + " | ".join(f"<{form}>" for form in forms)


def blanked() -> str:
    """`echo` of the forms as they should read once blanked: base64 keeps its padding, which holds no secret."""
    return echo(["***" + "=" * (len(form) - len(form.rstrip("="))) for form in echoed_forms()])


def test_the_district_secrets_cover_every_echoed_form(alert_world, monkeypatch):
    monkeypatch.setenv("OAK_ID", CLIENT_ID)
    monkeypatch.setenv("OAK_SECRET", SECRET + "\n")  # read from a file, newline and all
    alert_world.write_registry()
    secrets = district_secrets(alert_world.settings.registry())
    text = redact(echo(echoed_forms()), secrets)
    assert text == blanked()


def test_a_secret_cut_short_by_the_trim_of_a_run_error_is_blanked(alert_world, monkeypatch):
    monkeypatch.setenv("OAK_ID", CLIENT_ID)
    monkeypatch.setenv("OAK_SECRET", SECRET)
    alert_world.write_registry()
    secrets = district_secrets(alert_world.settings.registry())
    assert redact("…client_secret=s3cr%2Bt…", secrets) == "…client_secret=***…"


def test_an_alert_quoting_a_run_error_with_the_echoed_secret_shows_none_of_its_forms(alert_world, webhook, monkeypatch):
    monkeypatch.setenv("OAK_ID", CLIENT_ID)
    monkeypatch.setenv("OAK_SECRET", SECRET)
    alert_world.notifications = {"webhook": {"url_env": WEBHOOK_ENV}, "failed_runs": 1}
    run_district(alert_world, "oak", error=echo(echoed_forms()))
    alert_world.tick()
    (text,) = of_kind(webhook.texts(), "failed its latest run")
    assert blanked() in text
    assert [form for form in echoed_forms() if form in text] == []
