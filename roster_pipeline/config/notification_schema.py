"""The registry's `notifications` section, declared: where alerts go (a webhook, e-mail) and when.

A webhook URL carries its own credential, so like every secret it is named by environment variable; a field meant
to name one is never quoted in a problem (it may hold the secret itself). `notify/channels.py` sends.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from typing import Annotated, Any, ClassVar

from pydantic import BeforeValidator, Field, model_validator
from pydantic_core import InitErrorDetails

from roster_pipeline.config.sections import Refuse, Section, problem, refused

DEFAULT_FAILED_RUNS = 3
ENV_NAME_PATTERN = r"^[A-Z_][A-Z0-9_]*$"
SECRET_VARIABLE = Refuse(
    "must name the environment variable that holds the secret (e.g. ROSTER_ALERT_SECRET), never the secret itself"
)
TRUE_OR_FALSE = Refuse("'{value}' must be true or false")

SecretVariable = Annotated[str, Field(pattern=ENV_NAME_PATTERN)]
Address = Annotated[str, Field(pattern="@")]


def _tuple(value: Any) -> Any:
    return tuple(value) if isinstance(value, list) else value


class WebhookSection(Section):
    """POSTs `{"text": ...}` to the URL held in the environment variable `url_env` (Slack-compatible)."""

    key_noun: ClassVar[str] = "setting"
    refused_keys: ClassVar[Mapping[str, str]] = {"url": "unknown setting (known: url_env; the URL is a secret)"}
    shape: ClassVar[str] = "a mapping with url_env"

    url_env: Annotated[SecretVariable, SECRET_VARIABLE]


class EmailSection(Section):
    """A plain-text e-mail over SMTP: STARTTLS (port 587), implicit TLS (`ssl`, port 465), or plain for a relay on
    the local network; a password is only ever sent over TLS."""

    key_noun: ClassVar[str] = "setting"

    host: Annotated[str, Field(min_length=1), Refuse("the SMTP server's host name is required")]
    sender: Annotated[Address, Field(alias="from"), Refuse("'{value}' must be an e-mail address")]
    to: Annotated[
        Address | Annotated[tuple[Address, ...], Field(min_length=1), BeforeValidator(_tuple)],
        Refuse("'{value}' must be an e-mail address or a list of them"),
    ]
    ssl: Annotated[bool, TRUE_OR_FALSE] = False
    starttls: Annotated[bool | None, TRUE_OR_FALSE, Field(description="default: true unless ssl")] = None
    port: Annotated[
        Annotated[int, Field(gt=0, lt=65536)] | None,
        Refuse("'{value}' must be a TCP port number"),
        Field(description="default: 465 with ssl, else 587"),
    ] = None
    username: Annotated[str | None, Refuse("'{value}' must be a string")] = None
    password_env: Annotated[SecretVariable | None, SECRET_VARIABLE] = None

    @property
    def recipients(self) -> tuple[str, ...]:
        return (self.to,) if isinstance(self.to, str) else self.to

    @property
    def uses_starttls(self) -> bool:
        return not self.ssl if self.starttls is None else self.starttls

    @property
    def port_number(self) -> int:
        return self.port or (465 if self.ssl else 587)

    @classmethod
    def cross_checks(cls, raw: Mapping[str, Any], context: Mapping[str, Any]) -> Iterator[InitErrorDetails]:
        use_ssl = raw.get("ssl", False)
        starttls = raw.get("starttls", not use_ssl)
        if use_ssl is True and starttls is True:
            yield problem("ssl (implicit TLS, port 465) and starttls (port 587) exclude each other")
        if raw.get("password_env") is not None:
            if raw.get("username") is None:
                yield problem("required with password_env", ("username",))
            if use_ssl is not True and starttls is not True:
                yield problem("a password is only sent over TLS (starttls or ssl)", ("password_env",))
        elif raw.get("username") is not None:
            yield problem("required with username (the SMTP password's variable)", ("password_env",))


class NotificationsSection(Section):
    """Where alerts go (`webhook` and/or `email`), after how many consecutive failed runs a district has a problem,
    and whether to say when a problem clears."""

    key_noun: ClassVar[str] = "setting"

    webhook: WebhookSection | None = None
    email: EmailSection | None = None
    failed_runs: Annotated[int, Field(ge=1), Refuse("'{value}' must be a whole number of runs, 1 or more")] = (
        DEFAULT_FAILED_RUNS
    )
    resolved: Annotated[bool, TRUE_OR_FALSE] = True

    @model_validator(mode="after")
    def _names_a_channel(self) -> NotificationsSection:
        if self.webhook is None and self.email is None:
            raise refused("names no channel (add webhook: {url_env: ...} and/or email: {...})")
        return self
