"""Where alerts go: the registry's `notifications` section and the channels it names (a webhook, e-mail).

```yaml
notifications:
  webhook: {url_env: ROSTER_ALERT_WEBHOOK}     # Slack-compatible: POST {"text": ...}
  email: {host: smtp.example.org, port: 587, starttls: true, username: alerts, password_env: ROSTER_SMTP_PASSWORD,
          from: roster@example.org, to: [ops@example.org]}
  failed_runs: 3                               # consecutive failed runs that make a problem
  resolved: true                               # also say when a problem clears
```

A webhook URL carries its own credential (whoever knows a Slack hook URL can post to the channel), so it is
named by environment variable like every other secret, and no secret value reaches a message, a log or an
error: `redact` blanks them out of any text that could carry one. No Dagster here; `alerts.py` decides what is
a problem and when to tell.
"""

from __future__ import annotations

import os
import re
import smtplib
import ssl
from collections.abc import Iterable
from dataclasses import dataclass
from email.message import EmailMessage
from typing import ClassVar

import httpx

from roster_pipeline.config.notification_schema import DEFAULT_FAILED_RUNS
from roster_pipeline.config.registry import Registry, RegistryError
from roster_pipeline.oneroster.auth import mask_secrets

SEND_TIMEOUT_S = 10.0
# What an error about an unusable URL quotes, unless it is one (escaped) character such as '\n': a piece of the
# URL (httpx quotes a bad host or port), blanked so no part of it reaches a log.
_QUOTED = re.compile(r"'[^']{3,}'")


class DeliveryError(RuntimeError):
    """A channel could not deliver a message; the text names the channel and the reason, never a secret."""


class PartlyDelivered(DeliveryError):
    """Some recipients got the message and some were refused: sending it again would repeat it to the first."""


@dataclass(frozen=True)
class Message:
    subject: str
    body: str

    @property
    def text(self) -> str:
        return f"{self.subject}\n{self.body}"


def redact(text: str, secrets: Iterable[str]) -> str:
    """`text` with every secret value in it replaced by `***`, and the beginning of one cut off by a trim (`…`)."""
    return mask_secrets(text, secrets)


def _secret(env_name: str, field_name: str, *, strip: bool = False) -> str:
    value = os.environ.get(env_name)
    if value and strip:
        value = value.strip()
    if not value:
        raise DeliveryError(f"environment variable {env_name} is not set (the registry's {field_name} names it)")
    return value


@dataclass(frozen=True)
class WebhookChannel:
    """POSTs `{"text": ...}` to a URL held in an environment variable: what Slack's incoming webhooks (and
    Mattermost's, Rocket.Chat's, Teams' Slack-compatible ones) accept."""

    url_env: str
    name: ClassVar[str] = "webhook"

    @property
    def secret_names(self) -> tuple[str, ...]:
        return (self.url_env,)

    def secret_values(self) -> list[str]:
        """The URL and its path: the path alone is the secret of a Slack hook, and receivers quote it in errors.
        A path shorter than 8 characters holds no secret, and blanking it would garble every text."""
        raw = os.environ.get(self.url_env)
        if not raw or not (url := raw.strip()):
            return []
        try:
            path = httpx.URL(url).raw_path.decode()
        except Exception:  # an unreadable URL (or host) is blanked whole
            return list(dict.fromkeys([raw, url]))
        return list(dict.fromkeys([raw, url, path] if len(path) >= 8 else [raw, url]))

    def send(self, message: Message) -> None:
        """POST the message. A value read from a file keeps its trailing newline; the URL is taken without it.
        Whatever stops the POST (an unusable URL, a refused connection, an error answer) is a DeliveryError
        whose text never holds the URL."""
        url = _secret(self.url_env, "notifications.webhook.url_env", strip=True)
        where = f"webhook (URL in {self.url_env})"
        try:
            response = httpx.post(url, json={"text": message.text}, timeout=SEND_TIMEOUT_S)
        except httpx.UnsupportedProtocol as error:  # its text quotes the scheme only
            raise DeliveryError(f"{where}: not a usable URL: {self._reason(error)}") from None
        except httpx.HTTPError as error:
            raise DeliveryError(f"{where}: {type(error).__name__}: {self._reason(error)}") from None
        except Exception as error:  # InvalidURL, or a host IDNA refuses: building the request failed
            reason = _QUOTED.sub("'***'", self._reason(error))
            raise DeliveryError(f"{where}: not a usable URL: {type(error).__name__}: {reason}") from None
        if not response.is_success:
            answer = " ".join(response.text.split())
            answer = answer if len(answer) <= 200 else answer[:199] + "…"  # marked, so a secret cut short is blanked
            raise DeliveryError(redact(f"{where}: HTTP {response.status_code} {answer}", self.secret_values()))

    def _reason(self, error: Exception) -> str:
        return redact(str(error) or "no detail given", self.secret_values())


@dataclass(frozen=True)
class EmailChannel:
    """Sends a plain-text e-mail over SMTP (STARTTLS, implicit TLS, or plain for a relay on the local network)."""

    host: str
    sender: str
    to: tuple[str, ...]
    port: int = 587
    starttls: bool = True
    ssl: bool = False
    username: str | None = None
    password_env: str | None = None
    name: ClassVar[str] = "email"

    @property
    def secret_names(self) -> tuple[str, ...]:
        return (self.password_env,) if self.password_env else ()

    def secret_values(self) -> list[str]:
        return [value] if self.password_env and (value := os.environ.get(self.password_env)) else []

    def send(self, message: Message) -> None:
        password = _secret(self.password_env, "notifications.email.password_env") if self.password_env else ""
        mail = EmailMessage()
        mail["Subject"], mail["From"], mail["To"] = message.subject, self.sender, ", ".join(self.to)
        mail.set_content(message.text)
        try:
            if self.ssl:
                smtp: smtplib.SMTP = smtplib.SMTP_SSL(
                    self.host, self.port, timeout=SEND_TIMEOUT_S, context=ssl.create_default_context()
                )
            else:
                smtp = smtplib.SMTP(self.host, self.port, timeout=SEND_TIMEOUT_S)
            with smtp:
                if self.starttls:
                    smtp.starttls(context=ssl.create_default_context())
                if self.username:
                    smtp.login(self.username, password)
                refused = smtp.send_message(mail)
        except (OSError, smtplib.SMTPException) as error:
            reason = f"e-mail via {self.host}:{self.port}: {type(error).__name__}: {error}"
            raise DeliveryError(redact(reason, [password])) from None
        if refused:
            raise PartlyDelivered(
                f"e-mail via {self.host}:{self.port}: the server refused {', '.join(sorted(refused))}"
            )


Channel = WebhookChannel | EmailChannel


@dataclass(frozen=True)
class NotificationSettings:
    channels: tuple[Channel, ...]
    failed_runs: int = DEFAULT_FAILED_RUNS
    resolved: bool = True

    @property
    def secret_names(self) -> tuple[str, ...]:
        """The environment variables the channels read (for `validate`'s warnings)."""
        return tuple(name for channel in self.channels for name in channel.secret_names)

    def secret_values(self) -> list[str]:
        """What must never be shown: the secrets the channels read, as they may appear in a text."""
        return [value for channel in self.channels for value in channel.secret_values()]


def notification_settings(registry: Registry) -> NotificationSettings | None:
    """The channels of the registry's `notifications` section (validated with the registry; see
    config/notification_schema.py); None when it has none."""
    if registry.notification_problems:
        raise RegistryError(registry.source, list(registry.notification_problems))
    section = registry.notifications
    if section is None:
        return None
    channels: list[Channel] = []
    if section.webhook is not None:
        channels.append(WebhookChannel(section.webhook.url_env))
    if (email := section.email) is not None:
        channels.append(
            EmailChannel(
                host=email.host,
                sender=email.sender,
                to=email.recipients,
                port=email.port_number,
                starttls=email.uses_starttls,
                ssl=email.ssl,
                username=email.username,
                password_env=email.password_env,
            )
        )
    return NotificationSettings(tuple(channels), failed_runs=section.failed_runs, resolved=section.resolved)
