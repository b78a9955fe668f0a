"""The district registry: loading ``data/districts.yaml`` and the typed registry the pipeline reads.

What the file may say is declared in `registry_schema.py` (pydantic models, exported as a JSON Schema for
editors). Every problem in a registry is collected and reported together (which district, which field, what is
allowed), so an engineer fixes a file in one pass. Secrets are named by environment variable only; their values
are read when a sync needs them and never appear in errors.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any, TypeVar

import yaml
from pydantic import BaseModel, ValidationError

from roster_pipeline.config.notification_schema import NotificationsSection
from roster_pipeline.config.registry_schema import (
    DEFAULT_FULL_SCHEDULE,
    DEFAULT_SCHEDULE,
    DEFAULT_TIMEZONE,
    DEFAULTABLE,
    GUARD_DEFAULTS,
    KNOWN_ENDPOINTS,
    WEEKDAYS,
    Blackout,
    CsvSourceSection,
    DistrictSection,
    GuardSettings,
    NetworkSettings,
    Pause,
    RegistryDocument,
    RestSourceSection,
    SftpConfig,
    registry_json_schema,
)
from roster_pipeline.config.settings import registry_path
from roster_pipeline.oneroster.providers import PROVIDERS, ProviderProfile

__all__ = [
    "DEFAULTABLE",
    "GUARD_DEFAULTS",
    "KNOWN_ENDPOINTS",
    "AuthConfig",
    "Blackout",
    "CsvSource",
    "DistrictConfig",
    "GuardSettings",
    "MissingSecretError",
    "NetworkSettings",
    "Pause",
    "PickupField",
    "Registry",
    "RegistryError",
    "RestSource",
    "SchoolSetting",
    "SftpConfig",
    "load_registry",
    "parse_registry",
    "registry_json_schema",
]
Layered = TypeVar("Layered", bound=BaseModel)


class RegistryError(ValueError):
    """A registry file that cannot be used; ``problems`` lists every problem found, one line each."""

    def __init__(self, source: str, problems: list[str]) -> None:
        self.source = source
        self.problems = problems
        lines = "\n".join(f"  - {p}" for p in problems)
        super().__init__(f"{source}: {len(problems)} problem(s) in the district registry:\n{lines}")


class MissingSecretError(RuntimeError):
    """A credential's environment variable is not set; the message names the variable, never a value."""


@dataclass(frozen=True)
class AuthConfig:
    type: str
    client_id_env: str
    client_secret_env: str
    token_url: str | None = None
    scope: str | None = None
    client_auth_method: str = "client_secret_basic"


@dataclass(frozen=True)
class RestSource:
    version: str
    base_url: str
    auth: AuthConfig
    page_size: int
    kind: str = "rest"


@dataclass(frozen=True)
class CsvSource:
    path: str | None = None
    sftp: SftpConfig | None = None
    kind: str = "csv"


@dataclass(frozen=True)
class SchoolSetting:
    sourced_id: str
    site_id: str
    enabled: bool


@dataclass(frozen=True)
class PickupField:
    """One pickup column read from a user's OneRoster `metadata`: whose (guardian or student) and which key
    (dots walk into nested objects)."""

    column: str
    user: str
    key: str


@dataclass(frozen=True)
class DistrictConfig:
    """One district of the registry: where its roster comes from and how it is scheduled."""

    id: str
    name: str
    provider: ProviderProfile
    source: RestSource | CsvSource
    endpoints: tuple[str, ...]
    schools: tuple[SchoolSetting, ...] = ()
    schools_default_enabled: bool = True
    schedule: str = DEFAULT_SCHEDULE
    full_schedule: str = DEFAULT_FULL_SCHEDULE
    enabled: bool = True
    # The mass-deletion guard's limits (GuardSettings holds their meaning and defaults).
    max_removed_share: float = GUARD_DEFAULTS.max_removed_share
    max_malformed: int = GUARD_DEFAULTS.max_malformed
    max_students_removed: float | None = GUARD_DEFAULTS.max_students_removed
    max_links_removed: float | None = GUARD_DEFAULTS.max_links_removed
    max_users_changed: float = GUARD_DEFAULTS.max_users_changed
    max_enrollments_changed: float = GUARD_DEFAULTS.max_enrollments_changed
    # Fields this district's provider garbles, beyond its profile's: (endpoint, fields) pairs.
    ignore_fields: tuple[tuple[str, frozenset[str]], ...] = ()
    network: NetworkSettings = field(default_factory=NetworkSettings)
    # The registry's `pickup_metadata`: which metadata keys say who may pick a student up (default: none).
    pickup_fields: tuple[PickupField, ...] = ()
    pauses: tuple[Pause, ...] = ()
    blackouts: tuple[Blackout, ...] = ()

    def schedule_paused(self, moment: datetime) -> str | None:
        """Why no scheduled sync may start at ``moment`` (aware, in the registry's timezone), or None.

        Only schedules are paused: a sync started by hand (`roster-pipeline sync`, the UI) always runs."""
        for pause in self.pauses:
            if pause.first <= moment.date() <= pause.last:
                return f"{pause.reason} ({pause.first} to {pause.last})"
        for blackout in self.blackouts:
            if blackout.covers(moment):
                days = ",".join(day for day in WEEKDAYS if day in blackout.days)
                return f"blackout window {days} {blackout.start:%H:%M}-{blackout.end:%H:%M}"
        return None

    def ignored(self, endpoint: str) -> frozenset[str]:
        """Fields of ``endpoint`` records not to read: the provider profile's known garbage and this district's."""
        own = dict(self.ignore_fields).get(endpoint, frozenset())
        return self.provider.ignored(endpoint) | own

    def secret(self, env_name: str) -> str:
        """The value of a credential variable; a missing one is reported by name, never by value."""
        value = os.environ.get(env_name)
        if not value:
            raise MissingSecretError(
                f"district '{self.id}': environment variable {env_name} is not set "
                f"(the registry names it as this district's credential)"
            )
        return value

    def school_setting(self, sourced_id: str) -> SchoolSetting:
        """The registry's setting for an SIS school, or the default (enabled, site id = sourcedId)."""
        for school in self.schools:
            if school.sourced_id == sourced_id:
                return school
        return SchoolSetting(sourced_id, sourced_id, self.schools_default_enabled)


@dataclass(frozen=True)
class Registry:
    districts: tuple[DistrictConfig, ...]
    timezone: str = DEFAULT_TIMEZONE
    source: str = ""
    # The `notifications` section, validated (notify/channels.py builds the channels from it); None without one.
    notifications: NotificationsSection | None = None
    notification_problems: tuple[str, ...] = ()  # a bad `notifications` section, reported by its readers

    def district(self, district_id: str) -> DistrictConfig:
        for district in self.districts:
            if district.id == district_id:
                return district
        known = ", ".join(d.id for d in self.districts) or "none"
        raise KeyError(f"no district '{district_id}' in {self.source} (known: {known})")

    @property
    def enabled(self) -> tuple[DistrictConfig, ...]:
        return tuple(d for d in self.districts if d.enabled)


def load_registry(path: Path | None = None) -> Registry:
    """Load and validate the registry; raises RegistryError listing every problem."""
    path = path or registry_path()
    try:
        document = yaml.safe_load(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise RegistryError(str(path), ["file not found (set ROSTER_DISTRICTS_FILE to another one)"]) from None
    except yaml.YAMLError as error:
        raise RegistryError(str(path), [f"not valid YAML: {error}"]) from None
    return parse_registry(document, source=str(path))


def parse_registry(document: Any, source: str = "<registry>") -> Registry:
    """Validate a parsed registry document and build the typed registry."""
    if not isinstance(document, dict) or not isinstance(document.get("districts"), list):
        raise RegistryError(source, ["top level must be a mapping with a 'districts' list"])
    # A bad `notifications` section must not stop rosters syncing: its problems are kept apart and raised by whoever
    # sends alerts (notify.channels.notification_settings) and by `roster-pipeline validate`.
    body = {key: value for key, value in document.items() if key != "notifications"}
    try:
        parsed = RegistryDocument.model_validate(body, context={})
    except ValidationError as error:
        raise RegistryError(source, [_problem_line(document, found) for found in error.errors()]) from None
    notifications, notification_problems = _notifications(document.get("notifications"))
    return Registry(
        tuple(_district(section, parsed) for section in parsed.districts),
        timezone=parsed.timezone,
        source=source,
        notifications=notifications,
        notification_problems=notification_problems,
    )


def _notifications(section: Any) -> tuple[NotificationsSection | None, tuple[str, ...]]:
    """The validated `notifications` section (None without one) and every problem found in it."""
    if section is None:
        return None, ()
    try:
        return NotificationsSection.model_validate(section, context={}), ()
    except ValidationError as error:
        document = {"notifications": section}
        lines = (
            _problem_line(document, {**found, "loc": ("notifications", *found["loc"])}) for found in error.errors()
        )
        return None, tuple(lines)


def _problem_line(document: dict[str, Any], found: Any) -> str:
    """`district 'oak', field guard.max_users_changed: ...`; a district without a usable id is `district #N`."""
    loc, message = found["loc"], (found.get("ctx") or {}).get("problem", found["msg"])
    if len(loc) < 2 or loc[0] != "districts":
        return f"{_field_path(loc)}: {message}"
    entry = document["districts"][loc[1]]
    raw_id = entry.get("id") if isinstance(entry, dict) else None
    where = f"district '{raw_id}'" if isinstance(raw_id, str) else f"district #{loc[1] + 1}"
    return f"{where}, field {_field_path(loc[2:])}: {message}" if loc[2:] else f"{where}: {message}"


def _field_path(loc: tuple[str | int, ...]) -> str:
    """`source.auth.type`, `pauses[1]` (list items are counted from 1, as an engineer counts them)."""
    path = ""
    for part in loc:
        path += f"[{part + 1}]" if isinstance(part, int) else f".{part}" if path else str(part)
    return path


def _layered(model: type[Layered], *layers: Layered | None) -> Layered:
    """A section merged key by key: the model's defaults, then the registry's top-level section, then the
    district's own (only the keys each one sets)."""
    values: dict[str, Any] = {}
    for layer in layers:
        if layer is not None:
            values.update({name: getattr(layer, name) for name in layer.model_fields_set})
    return model(**values)


def _district(section: DistrictSection, document: RegistryDocument) -> DistrictConfig:
    provider = PROVIDERS[section.provider]
    endpoints = section.endpoints or tuple(e for e in KNOWN_ENDPOINTS if provider.offers(e))
    schools = section.schools
    pickup = section.pickup_metadata
    ignored: dict[str, tuple[str, ...] | None] = dict(section.ignore_fields or {})
    return DistrictConfig(
        id=section.id,
        name=section.name or section.id,
        provider=provider,
        source=_source(section.source, provider),
        endpoints=tuple(e for e in KNOWN_ENDPOINTS if e in endpoints),
        schools=tuple(
            SchoolSetting(site.sourced_id, site.site_id or site.sourced_id, site.enabled)
            for site in (schools.sites if schools else ())
        ),
        schools_default_enabled=schools.default_enabled if schools else True,
        schedule=section.schedule,
        full_schedule=section.full_schedule,
        enabled=section.enabled,
        **_layered(GuardSettings, document.guard, section.guard).model_dump(),
        ignore_fields=tuple(
            (endpoint, frozenset(fields)) for endpoint, fields in ignored.items() if fields is not None
        ),
        network=_layered(NetworkSettings, document.network, section.network),
        pickup_fields=tuple(
            PickupField(column, spec.user, spec.key) for column, spec in (pickup or {}) if spec is not None
        ),
        pauses=section.pauses if section.pauses is not None else document.pauses or (),
        blackouts=section.blackouts if section.blackouts is not None else document.blackouts or (),
    )


def _source(section: RestSourceSection | CsvSourceSection, provider: ProviderProfile) -> RestSource | CsvSource:
    """The source with what the district leaves unsaid filled in from its provider profile; a page size above the
    provider's cap is lowered to it."""
    if isinstance(section, CsvSourceSection):
        return CsvSource(path=section.path, sftp=section.sftp)
    auth = section.auth
    return RestSource(
        version=section.version,
        base_url=section.base_url.rstrip("/"),
        auth=AuthConfig(
            type=auth.type or provider.auth_type,
            client_id_env=auth.client_id_env,
            client_secret_env=auth.client_secret_env,
            token_url=auth.token_url,
            scope=auth.scope if auth.scope is not None else provider.default_scope,
            client_auth_method=auth.client_auth_method or provider.client_auth_method,
        ),
        page_size=min(section.page_size or provider.page_size_cap, provider.page_size_cap),
    )
