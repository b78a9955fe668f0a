"""The district registry: loading and validating ``data/districts.yaml``.

Every problem in a registry is collected and reported together (which district, which field, what is allowed),
so an engineer fixes a file in one pass. Secrets are named by environment variable only; their values are read
when a sync needs them and never appear in errors.
"""

from __future__ import annotations

import difflib
import os
import re
from collections.abc import Mapping
from dataclasses import asdict, dataclass, field
from datetime import date, datetime, time
from pathlib import Path
from typing import Any

import yaml

from roster_pipeline.config.cron import is_cron
from roster_pipeline.config.settings import registry_path
from roster_pipeline.oneroster.endpoints import BASE_PATHS, VERSION_KEYS
from roster_pipeline.oneroster.flatten import ENDPOINT_COLUMNS, ignorable_fields
from roster_pipeline.oneroster.providers import API, PROVIDERS, ProviderProfile

DEFAULT_SCHEDULE = "0 2 * * *"
DEFAULT_FULL_SCHEDULE = "0 3 * * 0"
DEFAULT_TIMEZONE = "UTC"
DISTRICT_ID = re.compile(r"^[a-z0-9](?:[a-z0-9-]{0,62}[a-z0-9])?$")
ENV_NAME = re.compile(r"^[A-Z_][A-Z0-9_]*$")
REST_VERSIONS = ("1.1", "1.2")
AUTH_TYPES = ("oauth2", "oauth1")
CLIENT_AUTH_METHODS = ("client_secret_basic", "client_secret_post")
KNOWN_ENDPOINTS = (
    "academicSessions",
    "orgs",
    "users",
    "classes",
    "enrollments",
    "courses",
    "demographics",
)
REST_BASE_PATHS = {version: BASE_PATHS[key] for version, key in VERSION_KEYS.items()}
# Columns of guardian_student_links / student_contacts a district may fill from its SIS's OneRoster `metadata`.
PICKUP_COLUMNS = ("pickup_allowed", "do_not_release", "custody_note", "valid_until")
PICKUP_USERS = ("guardian", "student")
METADATA_KEY = re.compile(r"^[A-Za-z0-9_-]+(\.[A-Za-z0-9_-]+)*$")
# Top-level sections that set every district's default (a district's own section overrides it).
DEFAULTABLE = ("network", "guard", "pauses", "blackouts")
# Top-level sections other modules read from `Registry.settings` (notifications.py).
SETTINGS_SECTIONS = ("notifications",)
TOP_LEVEL_KEYS = ("districts", "timezone", *DEFAULTABLE, *SETTINGS_SECTIONS)
DISTRICT_KEYS = (
    "id",
    "name",
    "provider",
    "source",
    "endpoints",
    "ignore_fields",
    "schools",
    "schedule",
    "full_schedule",
    "enabled",
    "guard",
    "network",
    "pickup_metadata",
    "pauses",
    "blackouts",
)
WEEKDAYS = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")
GUARD_SHARES = (
    "max_removed_share",
    "max_students_removed",
    "max_links_removed",
    "max_users_changed",
    "max_enrollments_changed",
)


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
class SftpConfig:
    host: str
    username: str
    remote_path: str
    port: int = 22
    password_env: str | None = None
    key_path: str | None = None
    known_hosts: str | None = None
    host_key_fingerprint: str | None = None


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
class NetworkSettings:
    """How a district's provider is read: seconds to wait for a response, attempts per request (the first
    included), and how many records a full sync may look up one by one before it tombstones them."""

    read_timeout: float = 30.0
    max_attempts: int = 6
    max_confirmations: int = 500
    # False only for a provider without a working single-record endpoint (`GET users/{id}`): its full syncs then
    # tombstone what they did not see unconfirmed, as CSV full files do, rather than hold removals forever.
    confirm_unseen: bool = True


# The registry's `network` section (per district or for all) and its defaults: NetworkSettings' own.
NETWORK_DEFAULTS: dict[str, Any] = asdict(NetworkSettings())


@dataclass(frozen=True)
class Pause:
    """No scheduled sync from ``first`` to ``last`` (dates, inclusive, in the registry's timezone), e.g. summer."""

    first: date
    last: date
    reason: str = "paused"


@dataclass(frozen=True)
class Blackout:
    """A weekly window in which no scheduled sync starts (``end`` before ``start`` crosses midnight)."""

    days: frozenset[int]  # 0 = Monday
    start: time
    end: time

    def covers(self, moment: datetime) -> bool:
        clock = moment.timetz().replace(tzinfo=None)
        if self.start <= self.end:
            return moment.weekday() in self.days and self.start <= clock < self.end
        # Overnight: the evening part belongs to the listed day, the morning part to the day after.
        return (moment.weekday() in self.days and clock >= self.start) or (
            (moment.weekday() - 1) % 7 in self.days and clock < self.end
        )


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
    max_removed_share: float = 0.10
    max_malformed: int = 100
    # Per-kind limits of the mass-deletion guard (see quarantine.py); removed shares default to max_removed_share.
    max_students_removed: float | None = None
    max_links_removed: float | None = None
    max_users_changed: float = 0.75
    max_enrollments_changed: float = 0.75
    # Fields this district's provider garbles, beyond its profile's: (endpoint, fields) pairs.
    ignore_fields: tuple[tuple[str, frozenset[str]], ...] = ()
    network: NetworkSettings = NetworkSettings()
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
                days = ",".join(WEEKDAYS[d] for d in sorted(blackout.days))
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
    settings: Mapping[str, Any] = field(default_factory=dict)

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
    problems: list[str] = []
    if not isinstance(document, dict) or not isinstance(document.get("districts"), list):
        raise RegistryError(source, ["top level must be a mapping with a 'districts' list"])
    districts: list[DistrictConfig] = []
    seen: set[str] = set()
    defaults: dict[str, Any] = {}
    for section in DEFAULTABLE:  # top-level sections are defaults every district overrides
        value = document.get(section)
        kind = list if section in ("pauses", "blackouts") else dict
        if value is not None and not isinstance(value, kind):
            shape = "list" if kind is list else "mapping"
            problems.append(f"{section}: must be a {shape} (the default for every district)")
        elif value is not None:
            defaults[section] = value
    for index, entry in enumerate(document["districts"]):
        checker = _DistrictChecker(index, entry, problems, defaults)
        district = checker.build()
        if district is None:
            continue
        if district.id in seen:
            problems.append(f"district '{district.id}': id is used twice (ids are partition keys and unique)")
        seen.add(district.id)
        districts.append(district)
    problems += [f"{key}: {_unknown(key, TOP_LEVEL_KEYS)}" for key in document if key not in TOP_LEVEL_KEYS]
    timezone = document.get("timezone", DEFAULT_TIMEZONE)
    if not isinstance(timezone, str) or not _is_timezone(timezone):
        problems.append(f"timezone: '{timezone}' is not an IANA time zone name (e.g. America/Chicago)")
    if problems:
        raise RegistryError(source, problems)
    settings = {k: v for k, v in document.items() if k in SETTINGS_SECTIONS}
    return Registry(tuple(districts), timezone=timezone, source=source, settings=settings)


def _unknown(key: Any, known: tuple[str, ...]) -> str:
    """A typo'd key is refused rather than silently ignored (`timezon:` would leave every schedule in UTC)."""
    close = difflib.get_close_matches(str(key), known, n=1)
    return "unknown key" + (f" (did you mean '{close[0]}'?)" if close else f" (known: {', '.join(known)})")


def _as_date(value: Any) -> date | None:
    if isinstance(value, date) and not isinstance(value, datetime):
        return value
    try:
        return date.fromisoformat(str(value))
    except ValueError:
        return None


def _as_time(value: Any) -> time | None:
    try:
        return time.fromisoformat(str(value)) if isinstance(value, str) else None
    except ValueError:
        return None


def _about(provider: ProviderProfile | None) -> str:
    """The provider's notes, appended to a validation problem they help explain."""
    return f" — {provider.display_name} notes: {provider.notes}" if provider and provider.notes else ""


def _is_timezone(name: str) -> bool:
    from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

    try:
        ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError):
        return False
    return True


class _DistrictChecker:
    """Validates one registry entry, appending a readable line per problem."""

    def __init__(self, index: int, entry: Any, problems: list[str], defaults: Mapping[str, Any]) -> None:
        self.entry = entry if isinstance(entry, dict) else {}
        self.defaults = defaults
        self.problems = problems
        raw_id = self.entry.get("id")
        self.where = f"district '{raw_id}'" if isinstance(raw_id, str) else f"district #{index + 1}"
        if not isinstance(entry, dict):
            self.problem("", "must be a mapping with id, name, provider and source")

    def problem(self, field_name: str, message: str) -> None:
        prefix = f"{self.where}, field {field_name}" if field_name else self.where
        self.problems.append(f"{prefix}: {message}")

    def build(self) -> DistrictConfig | None:
        if not self.entry:
            return None
        before = len(self.problems)
        for key in self.entry:
            if key not in DISTRICT_KEYS:
                self.problem(str(key), _unknown(key, DISTRICT_KEYS))
        district_id = self.entry.get("id")
        if not isinstance(district_id, str) or not DISTRICT_ID.match(district_id):
            self.problem("id", f"'{district_id}' is not allowed: use lowercase letters, digits and '-'")
        name = self.entry.get("name", district_id)
        provider = self.provider()
        source = self.source(provider)
        endpoints = self.endpoints(provider)
        schools, default_enabled = self.schools()
        schedule = self.entry.get("schedule", DEFAULT_SCHEDULE)
        if not isinstance(schedule, str) or not is_cron(schedule):
            self.problem("schedule", f"'{schedule}' is not a cron expression (e.g. '0 2 * * *')")
        full_schedule = self.entry.get("full_schedule", DEFAULT_FULL_SCHEDULE)
        if not isinstance(full_schedule, str) or not is_cron(full_schedule):
            self.problem("full_schedule", f"'{full_schedule}' is not a cron expression (e.g. '0 3 * * 0')")
        enabled = self.entry.get("enabled", True)
        if not isinstance(enabled, bool):
            self.problem("enabled", f"'{enabled}' must be true or false")
        guard = self.guard()
        ignore_fields = self.ignore_fields()
        network = self.network()
        pickup_fields = self.pickup_fields()
        pauses, blackouts = self.pauses(), self.blackouts()
        if len(self.problems) > before or provider is None or source is None or not isinstance(district_id, str):
            return None
        return DistrictConfig(
            id=district_id,
            name=str(name),
            provider=provider,
            source=source,
            endpoints=endpoints,
            schools=schools,
            schools_default_enabled=default_enabled,
            schedule=schedule,
            full_schedule=full_schedule,
            enabled=enabled,
            **guard,
            ignore_fields=ignore_fields,
            network=network,
            pickup_fields=pickup_fields,
            pauses=pauses,
            blackouts=blackouts,
        )

    def guard(self) -> dict[str, Any]:
        """The mass-deletion guard's limits (see quarantine.py): shares of students and guardian links removed and
        of users and enrollments changed, and a malformed count; the registry's top-level `guard` is the default."""
        own = self.entry.get("guard", {}) or {}
        if not isinstance(own, dict):
            self.problem("guard", f"must be a mapping of {', '.join((*GUARD_SHARES, 'max_malformed'))}")
            own = {}
        merged = {**self.defaults.get("guard", {}), **own}
        limits: dict[str, Any] = {}
        for key in sorted(set(merged) - {*GUARD_SHARES, "max_malformed"}):
            self.problem(f"guard.{key}", f"unknown limit (known: {', '.join(GUARD_SHARES)}, max_malformed)")
        for key in GUARD_SHARES:
            share = merged.get(key)
            if share is None:
                continue
            if not isinstance(share, int | float) or isinstance(share, bool) or not 0 <= share <= 1:
                self.problem(f"guard.{key}", f"'{share}' must be a number between 0 and 1 (e.g. 0.1)")
            else:
                limits[key] = float(share)
        malformed = merged.get("max_malformed", 100)
        if not isinstance(malformed, int) or isinstance(malformed, bool) or malformed < 0:
            self.problem("guard.max_malformed", f"'{malformed}' must be a non-negative integer")
        else:
            limits["max_malformed"] = malformed
        return limits

    def network(self) -> NetworkSettings:
        """The registry's `network` section for all districts, overridden key by key by the district's own."""
        own = self.entry.get("network", {}) or {}
        if not isinstance(own, dict):
            self.problem("network", f"must be a mapping of {', '.join(NETWORK_DEFAULTS)}")
            own = {}
        merged = {**NETWORK_DEFAULTS, **self.defaults.get("network", {}), **own}
        for key in sorted(set(merged) - set(NETWORK_DEFAULTS)):
            self.problem(f"network.{key}", f"unknown setting (known: {', '.join(NETWORK_DEFAULTS)})")
        timeout = merged["read_timeout"]
        if not isinstance(timeout, int | float) or isinstance(timeout, bool) or not 0 < timeout <= 3600:
            self.problem("network.read_timeout", f"'{timeout}' must be seconds between 0 and 3600 (e.g. 30)")
            timeout = NETWORK_DEFAULTS["read_timeout"]
        counts = {}
        for key, minimum in (("max_attempts", 1), ("max_confirmations", 0)):
            value = merged[key]
            if not isinstance(value, int) or isinstance(value, bool) or value < minimum:
                self.problem(f"network.{key}", f"'{value}' must be an integer of at least {minimum}")
                value = NETWORK_DEFAULTS[key]
            counts[key] = int(value)
        confirm = merged["confirm_unseen"]
        if not isinstance(confirm, bool):
            self.problem("network.confirm_unseen", f"'{confirm}' must be true or false")
            confirm = True
        return NetworkSettings(float(timeout), counts["max_attempts"], counts["max_confirmations"], confirm)

    def _listed(self, section: str) -> list[Any]:
        """A district's own list for ``section``, else the registry's top-level default."""
        value = self.entry[section] if section in self.entry else self.defaults.get(section, [])
        if not isinstance(value, list):
            self.problem(section, "must be a list")
            return []
        return value

    def pauses(self) -> tuple[Pause, ...]:
        """`pauses: [{from: 2027-06-20, to: 2027-08-15, reason: summer break}]` (dates, inclusive)."""
        pauses = []
        for number, item in enumerate(self._listed("pauses"), start=1):
            where = f"pauses[{number}]"
            if not isinstance(item, dict) or not {"from", "to"} <= set(item) or set(item) - {"from", "to", "reason"}:
                self.problem(where, "must be {from: <date>, to: <date>, reason: <text, optional>}")
                continue
            first, last = _as_date(item["from"]), _as_date(item["to"])
            if first is None or last is None or last < first:
                self.problem(where, f"'{item['from']}' to '{item['to']}' must be two dates (YYYY-MM-DD), in order")
                continue
            pauses.append(Pause(first, last, str(item.get("reason", "paused"))))
        return tuple(pauses)

    def blackouts(self) -> tuple[Blackout, ...]:
        """`blackouts: [{days: [mon, tue], from: "07:00", to: "09:00"}]` (days default to every day)."""
        blackouts = []
        for number, item in enumerate(self._listed("blackouts"), start=1):
            where = f"blackouts[{number}]"
            if not isinstance(item, dict) or not {"from", "to"} <= set(item) or set(item) - {"from", "to", "days"}:
                self.problem(where, 'must be {days: [mon, ...], from: "HH:MM", to: "HH:MM"}')
                continue
            days = item.get("days", list(WEEKDAYS))
            start, end = _as_time(item["from"]), _as_time(item["to"])
            if not isinstance(days, list) or not days or any(day not in WEEKDAYS for day in days):
                self.problem(f"{where}.days", f"'{days}' must list days among {', '.join(WEEKDAYS)}")
            elif start is None or end is None or start == end:
                self.problem(where, f"'{item['from']}' to '{item['to']}' must be two different times (HH:MM)")
            else:
                blackouts.append(Blackout(frozenset(WEEKDAYS.index(day) for day in days), start, end))
        return tuple(blackouts)

    def pickup_fields(self) -> tuple[PickupField, ...]:
        """`pickup_metadata: {pickup_allowed: {user: guardian, key: pickupAllowed}, ...}`; nothing is guessed."""
        section = self.entry.get("pickup_metadata", {}) or {}
        if not isinstance(section, dict):
            self.problem("pickup_metadata", f"must be a mapping of {', '.join(PICKUP_COLUMNS)}")
            return ()
        fields = []
        for column, spec in section.items():
            where = f"pickup_metadata.{column}"
            if column not in PICKUP_COLUMNS:
                self.problem(where, f"unknown column (known: {', '.join(PICKUP_COLUMNS)})")
                continue
            if not isinstance(spec, dict) or set(spec) != {"user", "key"}:
                self.problem(where, "must be {user: guardian|student, key: <metadata key, dots for nesting>}")
                continue
            if spec["user"] not in PICKUP_USERS:
                self.problem(f"{where}.user", f"'{spec['user']}' must be guardian or student")
            elif not isinstance(spec["key"], str) or not METADATA_KEY.match(spec["key"]):
                self.problem(f"{where}.key", f"'{spec['key']}' must be letters, digits, '_' or '-', dots for nesting")
            else:
                fields.append(PickupField(column, spec["user"], spec["key"]))
        return tuple(fields)

    def provider(self) -> ProviderProfile | None:
        key = self.entry.get("provider", "generic")
        if key not in PROVIDERS:
            allowed = ", ".join(sorted(PROVIDERS))
            self.problem("provider", f"'{key}' is not a known provider profile (allowed: {allowed})")
            return None
        return PROVIDERS[key]

    def source(self, provider: ProviderProfile | None) -> RestSource | CsvSource | None:
        source = self.entry.get("source")
        if not isinstance(source, dict):
            self.problem("source", "missing: a mapping with kind: rest or kind: csv")
            return None
        kind = source.get("kind")
        if kind == "rest" and provider is not None and API not in provider.connection_types:
            self.problem(
                "source.kind",
                f"provider '{provider.key}' ({provider.display_name}) offers no OneRoster API; use kind: csv with "
                f"a path or sftp drop{_about(provider)}",
            )
            return None
        if kind == "rest":
            return self.rest_source(source, provider)
        if kind == "csv":
            return self.csv_source(source)
        self.problem("source.kind", f"'{kind}' is not allowed (allowed: rest, csv)")
        return None

    def rest_source(self, source: dict[str, Any], provider: ProviderProfile | None) -> RestSource | None:
        version = str(source.get("version", "1.1"))
        if version not in REST_VERSIONS:
            self.problem("source.version", f"'{version}' is not allowed (allowed: 1.1, 1.2)")
        base_url = source.get("base_url")
        if not isinstance(base_url, str) or not base_url.startswith(("http://", "https://")):
            self.problem("source.base_url", f"'{base_url}' must be an http(s) URL")
        elif version in REST_BASE_PATHS and not base_url.rstrip("/").endswith(REST_BASE_PATHS[version]):
            hint = f"; {provider.display_name} URLs look like {provider.base_url_hint}" if provider else ""
            self.problem(
                "source.base_url",
                f"'{base_url}' must end in {REST_BASE_PATHS[version]} for OneRoster {version} "
                f"(SIS consoles often show the host only; append the path{hint}){_about(provider)}",
            )
        page_size = source.get("page_size", provider.page_size_cap if provider else 1000)
        if not isinstance(page_size, int) or isinstance(page_size, bool) or page_size < 1:
            self.problem("source.page_size", f"'{page_size}' must be a positive integer")
        elif provider is not None and page_size > provider.page_size_cap:
            page_size = provider.page_size_cap
        auth = self.auth(source.get("auth"), version, provider)
        if auth is None or not isinstance(base_url, str) or not isinstance(page_size, int):
            return None
        return RestSource(version=version, base_url=base_url.rstrip("/"), auth=auth, page_size=page_size)

    def auth(self, auth: Any, version: str, provider: ProviderProfile | None) -> AuthConfig | None:
        if not isinstance(auth, dict):
            self.problem("source.auth", "missing: a mapping with type, client_id_env, client_secret_env")
            return None
        kind = auth.get("type", provider.auth_type if provider else None)
        if kind not in AUTH_TYPES:
            self.problem("source.auth.type", f"'{kind}' is not allowed (allowed: oauth2, oauth1)")
        elif kind == "oauth1" and version == "1.2":
            self.problem("source.auth.type", "OneRoster 1.2 requires oauth2; oauth1 is 1.1 only")
        token_url = auth.get("token_url")
        if kind == "oauth2" and (not isinstance(token_url, str) or not token_url.startswith("http")):
            self.problem("source.auth.token_url", f"'{token_url}' must be an http(s) URL for oauth2")
        names = {}
        for key in ("client_id_env", "client_secret_env"):
            value = auth.get(key)
            if not isinstance(value, str) or not ENV_NAME.match(value):
                self.problem(
                    f"source.auth.{key}",
                    "must name an environment variable (e.g. LINCOLN_CLIENT_SECRET); secrets are never inline",
                )
            names[key] = value
        if "client_secret" in auth or "client_id" in auth:
            self.problem("source.auth", "inline credentials are not allowed; use client_id_env/client_secret_env")
        default_method = provider.client_auth_method if provider else "client_secret_basic"
        method = auth.get("client_auth_method", default_method)
        if method not in CLIENT_AUTH_METHODS:
            self.problem("source.auth.client_auth_method", f"'{method}' is not allowed ({CLIENT_AUTH_METHODS})")
        scope = auth.get("scope", provider.default_scope if provider else None)
        if kind == "oauth2" and provider is not None and provider.scope_required and not scope:
            self.problem(
                "source.auth.scope",
                f"provider '{provider.key}' refuses token requests without a scope; set scope{_about(provider)}",
            )
        if kind not in AUTH_TYPES or not all(isinstance(v, str) for v in names.values()):
            return None
        return AuthConfig(
            type=kind,
            client_id_env=str(names["client_id_env"]),
            client_secret_env=str(names["client_secret_env"]),
            token_url=token_url,
            scope=scope,
            client_auth_method=method,
        )

    def csv_source(self, source: dict[str, Any]) -> CsvSource | None:
        path, sftp = source.get("path"), source.get("sftp")
        if (path is None) == (sftp is None):
            self.problem("source", "a csv source needs exactly one of path or sftp")
            return None
        if sftp is None:
            return CsvSource(path=str(path))
        if not isinstance(sftp, dict):
            self.problem("source.sftp", "must be a mapping with host, username, remote_path")
            return None
        for key in ("host", "username", "remote_path"):
            if not isinstance(sftp.get(key), str):
                self.problem(f"source.sftp.{key}", "missing")
        if (sftp.get("password_env") is None) == (sftp.get("key_path") is None):
            self.problem("source.sftp", "needs exactly one of password_env or key_path")
        if sftp.get("password_env") is not None and not ENV_NAME.match(str(sftp["password_env"])):
            self.problem("source.sftp.password_env", "must name an environment variable")
        try:
            return CsvSource(sftp=SftpConfig(**sftp))
        except TypeError as error:
            self.problem("source.sftp", f"unknown field ({error})")
            return None

    def endpoints(self, provider: ProviderProfile | None) -> tuple[str, ...]:
        requested = self.entry.get("endpoints")
        if requested is None:
            return tuple(e for e in KNOWN_ENDPOINTS if provider is None or provider.offers(e))
        if not isinstance(requested, list):
            self.problem("endpoints", "must be a list of endpoint names")
            return ()
        unknown = [e for e in requested if e not in KNOWN_ENDPOINTS]
        if unknown:
            self.problem("endpoints", f"unknown {unknown} (allowed: {', '.join(KNOWN_ENDPOINTS)})")
        not_offered = [e for e in requested if e in KNOWN_ENDPOINTS and provider is not None and not provider.offers(e)]
        if not_offered and provider is not None:
            offered = ", ".join(e for e in KNOWN_ENDPOINTS if provider.offers(e))
            self.problem(
                "endpoints",
                f"provider '{provider.key}' does not offer {not_offered} (it offers {offered}){_about(provider)}",
            )
        return tuple(e for e in KNOWN_ENDPOINTS if e in requested)

    def ignore_fields(self) -> tuple[tuple[str, frozenset[str]], ...]:
        """``ignore_fields: {classes: [periods]}``: record fields this district's provider garbles, not to be read."""
        section = self.entry.get("ignore_fields", {}) or {}
        if not isinstance(section, dict):
            self.problem("ignore_fields", "must map endpoint names to lists of field names, e.g. {classes: [periods]}")
            return ()
        pairs = []
        for endpoint, fields in section.items():
            where = f"ignore_fields.{endpoint}"
            if endpoint not in ENDPOINT_COLUMNS:
                self.problem(where, f"unknown endpoint (allowed: {', '.join(ENDPOINT_COLUMNS)})")
                continue
            readable = sorted(ignorable_fields(endpoint))
            if not isinstance(fields, list) or not all(isinstance(name, str) for name in fields):
                self.problem(where, "must be a list of field names")
                continue
            unknown = [name for name in fields if name not in readable]
            if unknown:
                self.problem(where, f"{unknown} cannot be ignored (fields of {endpoint}: {', '.join(readable)})")
                continue
            pairs.append((endpoint, frozenset(fields)))
        return tuple(pairs)

    def schools(self) -> tuple[tuple[SchoolSetting, ...], bool]:
        section = self.entry.get("schools", {})
        if not isinstance(section, dict):
            self.problem("schools", "must be a mapping with default_enabled and a sites list")
            return (), True
        default_enabled = section.get("default_enabled", True)
        if not isinstance(default_enabled, bool):
            self.problem("schools.default_enabled", "must be true or false")
            default_enabled = True
        settings = []
        for position, site in enumerate(section.get("sites", []) or []):
            if not isinstance(site, dict) or not isinstance(site.get("sourced_id"), str):
                self.problem(f"schools.sites[{position}]", "needs a sourced_id (the SIS school's sourcedId)")
                continue
            enabled = site.get("enabled", True)
            if not isinstance(enabled, bool):
                self.problem(f"schools.sites[{position}].enabled", "must be true or false")
                continue
            sourced_id = site["sourced_id"]
            settings.append(SchoolSetting(sourced_id, str(site.get("site_id", sourced_id)), enabled))
        return tuple(settings), default_enabled
