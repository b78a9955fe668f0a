"""Fixtures for alert tests: real receivers on 127.0.0.1, a data folder with a registry, a Dagster instance."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import dagster as dg
import pytest
import yaml

from roster_pipeline.defs.alerts import district_alerts_sensor
from roster_pipeline.defs.resources import RosterSettings
from roster_pipeline.store.lake import Lake
from roster_pipeline_tests.notify_tests.receivers import Mailbox, WebhookReceiver

WEBHOOK_ENV = "ROSTER_ALERT_WEBHOOK"
SMTP_PASSWORD_ENV = "ROSTER_SMTP_PASSWORD"
DISTRICT_SECRET = "oak-client-secret-7f3a9c"


def district_entry(district_id: str, name: str, **extra: Any) -> dict[str, Any]:
    return {
        "id": district_id,
        "name": name,
        "provider": "generic",
        "source": {
            "kind": "rest",
            "base_url": f"https://{district_id}.example.org/ims/oneroster/v1p1",
            "auth": {
                "type": "oauth2",
                "token_url": f"https://{district_id}.example.org/token",
                "client_id_env": "OAK_ID",
                "client_secret_env": "OAK_SECRET",
            },
        },
        **extra,
    }


@dataclass
class AlertWorld:
    """A data folder, its registry (districts and a `notifications` section), a Dagster instance, and the sensor's
    cursor carried from tick to tick as the daemon would."""

    data_dir: Path
    instance: dg.DagsterInstance
    districts: list[dict[str, Any]] = field(default_factory=list)
    notifications: dict[str, Any] | None = None
    cursor: str | None = None

    @property
    def settings(self) -> RosterSettings:
        return RosterSettings(data_dir=str(self.data_dir), districts_file=str(self.data_dir / "districts.yaml"))

    @property
    def lake(self) -> Lake:
        return self.settings.lake()

    def write_registry(self) -> None:
        document: dict[str, Any] = {"districts": self.districts}
        if self.notifications is not None:
            document["notifications"] = self.notifications
        (self.data_dir / "districts.yaml").write_text(yaml.safe_dump(document))

    def tick(self) -> dg.SensorResult | dg.SkipReason:
        """One evaluation of `district_alerts_sensor`, keeping the cursor it returns."""
        self.write_registry()
        context = dg.build_sensor_context(
            instance=self.instance, cursor=self.cursor, resources={"settings": self.settings}
        )
        result = district_alerts_sensor(context)
        assert isinstance(result, dg.SensorResult | dg.SkipReason)
        if isinstance(result, dg.SensorResult):
            self.cursor = result.cursor
        return result


@pytest.fixture
def alert_world(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[AlertWorld]:
    monkeypatch.setenv("OAK_ID", "oak-client")
    monkeypatch.setenv("OAK_SECRET", DISTRICT_SECRET)
    with dg.instance_for_test() as instance:
        data_dir = tmp_path / "data"
        data_dir.mkdir()
        yield AlertWorld(data_dir, instance, [district_entry("oak", "Oak Unified")])


@pytest.fixture
def webhook(monkeypatch: pytest.MonkeyPatch) -> Iterator[WebhookReceiver]:
    """A webhook receiver on 127.0.0.1 whose URL is in ROSTER_ALERT_WEBHOOK."""
    receiver = WebhookReceiver().start()
    monkeypatch.setenv(WEBHOOK_ENV, receiver.url)
    yield receiver
    receiver.stop()


@pytest.fixture
def mailbox() -> Iterator[Mailbox]:
    """A plain SMTP server on 127.0.0.1 (a relay on the local network: no TLS, no login)."""
    server = Mailbox().start()
    yield server
    server.stop()


@pytest.fixture
def both_channels(alert_world: AlertWorld, webhook: WebhookReceiver, mailbox: Mailbox) -> AlertWorld:
    """The world with a webhook and an e-mail channel configured."""
    alert_world.notifications = {
        "webhook": {"url_env": WEBHOOK_ENV},
        "email": {
            "host": "127.0.0.1",
            "port": mailbox.port,
            "starttls": False,
            "from": "roster@example.org",
            "to": ["ops@example.org", "it@example.org"],
        },
    }
    return alert_world
