"""What `data/districts.yaml` may say, declared once as pydantic models: the registry's schema and its checker.

Each field declares its type, its limits, its default and the sentence said when its value is refused; every
section refuses unknown keys. `registry_json_schema()` exports the same declaration for editors. Checks that
depend on a district's provider profile (its default auth, the endpoints it offers) read the profile from the
validation context, where the district's section puts it. `registry.py` turns a validated document into the
registry the pipeline reads.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from datetime import date, datetime, time
from typing import Annotated, Any, ClassVar, Literal, get_args
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from pydantic import AfterValidator, BeforeValidator, Field, WithJsonSchema, create_model, model_validator
from pydantic_core import InitErrorDetails

from roster_pipeline.config.cron import is_cron
from roster_pipeline.config.notification_schema import (
    ENV_NAME_PATTERN,
    TRUE_OR_FALSE,
    NotificationsSection,
)
from roster_pipeline.config.sections import Refuse, Section, problem, refused
from roster_pipeline.oneroster import ENDPOINT_NAMES
from roster_pipeline.oneroster.endpoints import BASE_PATHS, VERSION_KEYS
from roster_pipeline.oneroster.flatten import ENDPOINT_COLUMNS, ignorable_fields
from roster_pipeline.oneroster.providers import API, PROVIDERS, ProviderProfile

DEFAULT_SCHEDULE = "0 2 * * *"
DEFAULT_FULL_SCHEDULE = "0 3 * * 0"
DEFAULT_TIMEZONE = "UTC"
DISTRICT_ID_PATTERN = r"^[a-z0-9](?:[a-z0-9-]{0,62}[a-z0-9])?$"
METADATA_KEY_PATTERN = r"^[A-Za-z0-9_-]+(\.[A-Za-z0-9_-]+)*$"
# The collections a district may sync (the endpoint table's; 1.2 has the same ones under its own path).
KNOWN_ENDPOINTS = ENDPOINT_NAMES
RestVersion = Literal["1.1", "1.2"]
AuthType = Literal["oauth2", "oauth1"]
ClientAuthMethod = Literal["client_secret_basic", "client_secret_post"]
Weekday = Literal["mon", "tue", "wed", "thu", "fri", "sat", "sun"]
WEEKDAYS: tuple[Weekday, ...] = get_args(Weekday)
REST_BASE_PATHS = {version: BASE_PATHS[key] for version, key in VERSION_KEYS.items()}
ENV_VARIABLE = Refuse("must name an environment variable (e.g. LINCOLN_CLIENT_SECRET); secrets are never inline")


def _tuple(value: Any) -> Any:
    """A YAML list as a tuple: what the registry holds stays immutable (and hashable)."""
    return tuple(value) if isinstance(value, list) else value


def _known_provider(key: str) -> str:
    if key not in PROVIDERS:  # read at validation time: a test may add a profile
        raise ValueError(key)
    return key


def _known_endpoint(name: str) -> str:
    if name not in KNOWN_ENDPOINTS:
        raise ValueError(name)
    return name


def _cron(expression: str) -> str:
    if not is_cron(expression):
        raise ValueError(expression)
    return expression


def _timezone(name: str) -> str:
    try:
        ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError):
        raise ValueError(name) from None
    return name


def _iso_date(value: Any) -> Any:
    """YAML reads `2027-06-20` as a date and `"2027-06-20"` as text; both are a date."""
    try:
        return date.fromisoformat(value) if isinstance(value, str) else value
    except ValueError:
        return value


def _iso_time(value: Any) -> time | None:
    # Only text: YAML 1.1 reads an unquoted 07:00 as the number 420 (minutes), which is no time of day.
    try:
        return time.fromisoformat(value) if isinstance(value, str) else None
    except ValueError:
        return None


def _about(provider: ProviderProfile | None) -> str:
    """The provider's notes, appended to a problem they help explain."""
    return f" — {provider.display_name} notes: {provider.notes}" if provider and provider.notes else ""


def _provider(context: Mapping[str, Any]) -> ProviderProfile | None:
    provider = context.get("provider")
    return provider if isinstance(provider, ProviderProfile) else None


ProviderKey = Annotated[
    str, AfterValidator(_known_provider), WithJsonSchema({"type": "string", "enum": sorted(PROVIDERS)})
]
EndpointName = Annotated[
    str, AfterValidator(_known_endpoint), WithJsonSchema({"type": "string", "enum": list(KNOWN_ENDPOINTS)})
]
Cron = Annotated[str, AfterValidator(_cron)]
EnvVariable = Annotated[str, Field(pattern=ENV_NAME_PATTERN)]
Share = Annotated[float, Field(ge=0, le=1)]
SHARE = Refuse("'{value}' must be a number between 0 and 1 (e.g. 0.1)")
IsoDate = Annotated[date, BeforeValidator(_iso_date), Refuse("'{value}' must be a date (YYYY-MM-DD)")]
ClockTime = Annotated[time, WithJsonSchema({"type": "string", "pattern": r"^\d{2}:\d{2}$"})]


class GuardSettings(Section):
    """The mass-deletion guard's limits (see store/guard.py): shares of students and guardian links removed and of
    users and enrollments changed, and a malformed count. These defaults are the pipeline's only ones; the
    registry's top-level `guard` overrides them for every district, a district's own `guard` key by key."""

    key_noun: ClassVar[str] = "limit"

    max_removed_share: Annotated[Share, SHARE] = 0.10
    max_malformed: Annotated[int, Field(ge=0), Refuse("'{value}' must be a non-negative integer")] = 100
    # Removed shares of students and guardian links; unset, they are max_removed_share.
    max_students_removed: Annotated[Share | None, SHARE] = None
    max_links_removed: Annotated[Share | None, SHARE] = None
    # Clever holds a sync when more than 75% of records would be updated; a school-year rollover can change that
    # many enrollments, which is exactly when a person should look before it publishes.
    max_users_changed: Annotated[Share, SHARE] = 0.75
    max_enrollments_changed: Annotated[Share, SHARE] = 0.75


# The guard's default limits: what a district gets that says nothing about them.
GUARD_DEFAULTS = GuardSettings()


class NetworkSettings(Section):
    """How a district's provider is read: seconds to wait for a response, attempts per request (the first
    included), and how many records a full sync may look up one by one before it tombstones them."""

    key_noun: ClassVar[str] = "setting"

    read_timeout: Annotated[
        float, Field(gt=0, le=3600), Refuse("'{value}' must be seconds between 0 and 3600 (e.g. 30)")
    ] = 30.0
    max_attempts: Annotated[int, Field(ge=1), Refuse("'{value}' must be an integer of at least 1")] = 6
    max_confirmations: Annotated[int, Field(ge=0), Refuse("'{value}' must be an integer of at least 0")] = 500
    # False only for a provider without a working single-record endpoint (`GET users/{id}`): its full syncs then
    # tombstone what they did not see unconfirmed, as CSV full files do, rather than hold removals forever.
    confirm_unseen: Annotated[bool, TRUE_OR_FALSE] = True


class Pause(Section):
    """No scheduled sync from ``first`` to ``last`` (dates, inclusive, in the registry's timezone), e.g. summer."""

    shape: ClassVar[str] = "{from: <date>, to: <date>, reason: <text, optional>}"

    first: Annotated[IsoDate, Field(alias="from")]
    last: Annotated[IsoDate, Field(alias="to")]
    reason: str = "paused"

    @model_validator(mode="before")
    @classmethod
    def _from_and_to(cls, data: Any) -> Any:
        if isinstance(data, Mapping) and not {"from", "to"} <= set(data):
            raise refused(f"must be {cls.shape}")
        return data

    @classmethod
    def cross_checks(cls, raw: Mapping[str, Any], context: Mapping[str, Any]) -> Iterator[InitErrorDetails]:
        first, last = _iso_date(raw.get("from")), _iso_date(raw.get("to"))
        if isinstance(first, date) and isinstance(last, date) and last < first:
            yield problem(f"'{raw['from']}' to '{raw['to']}' must be two dates (YYYY-MM-DD), in order")


class Blackout(Section):
    """A weekly window in which no scheduled sync starts (``end`` before ``start`` crosses midnight); ``days``
    default to every day."""

    shape: ClassVar[str] = '{days: [mon, ...], from: "HH:MM", to: "HH:MM"}'

    days: Annotated[
        tuple[Weekday, ...],
        Field(min_length=1),
        BeforeValidator(_tuple),
        Refuse(lambda days: f"'{days}' must list days among {', '.join(WEEKDAYS)}"),
    ] = WEEKDAYS
    start: Annotated[ClockTime, Field(alias="from")]
    end: Annotated[ClockTime, Field(alias="to")]

    @model_validator(mode="before")
    @classmethod
    def _two_times(cls, data: Any) -> Any:
        if not isinstance(data, Mapping):
            return data
        if not {"from", "to"} <= set(data):
            raise refused(f"must be {cls.shape}")
        start, end = _iso_time(data["from"]), _iso_time(data["to"])
        if start is None or end is None or start == end:
            raise refused(f"'{data['from']}' to '{data['to']}' must be two different times (HH:MM)")
        return {**data, "from": start, "to": end}

    def covers(self, moment: datetime) -> bool:
        """Whether ``moment`` falls in the window."""
        days = {WEEKDAYS.index(day) for day in self.days}
        clock = moment.timetz().replace(tzinfo=None)
        if self.start <= self.end:
            return moment.weekday() in days and self.start <= clock < self.end
        # Overnight: the evening part belongs to the listed day, the morning part to the day after.
        return (moment.weekday() in days and clock >= self.start) or (
            (moment.weekday() - 1) % 7 in days and clock < self.end
        )


class PickupSpec(Section):
    """Whose OneRoster `metadata` holds a pickup column (guardian or student), and under which key (dots walk into
    nested objects)."""

    shape: ClassVar[str] = "{user: guardian|student, key: <metadata key, dots for nesting>}"

    user: Annotated[Literal["guardian", "student"], Refuse("'{value}' must be guardian or student")]
    key: Annotated[
        str,
        Field(pattern=METADATA_KEY_PATTERN),
        Refuse("'{value}' must be letters, digits, '_' or '-', dots for nesting"),
    ]


class PickupMetadata(Section):
    """Which metadata keys say who may pick a student up: columns of guardian_student_links / student_contacts a
    district may fill from its SIS's OneRoster `metadata` (nothing is guessed)."""

    key_noun: ClassVar[str] = "column"

    pickup_allowed: PickupSpec | None = None
    do_not_release: PickupSpec | None = None
    custody_note: PickupSpec | None = None
    valid_until: PickupSpec | None = None


def _ignorable(endpoint: str) -> Any:
    """The `ignore_fields` key of one endpoint: a list of that endpoint's readable fields."""
    readable = sorted(ignorable_fields(endpoint))

    def readable_only(fields: tuple[str, ...]) -> tuple[str, ...]:
        if any(name not in readable for name in fields):
            raise ValueError(fields)
        return fields

    def sentence(fields: Any) -> str:
        if not isinstance(fields, list) or not all(isinstance(name, str) for name in fields):
            return "must be a list of field names"
        unknown = [name for name in fields if name not in readable]
        return f"{unknown} cannot be ignored (fields of {endpoint}: {', '.join(readable)})"

    listed = Annotated[
        tuple[str, ...],
        BeforeValidator(_tuple),
        AfterValidator(readable_only),
        WithJsonSchema({"type": "array", "items": {"type": "string", "enum": readable}}),
    ]
    return Annotated[listed | None, Refuse(sentence)], None


class _IgnoreFieldsSection(Section):
    key_noun: ClassVar[str] = "endpoint"
    shape: ClassVar[str] = "a mapping of endpoint names to lists of field names, e.g. {classes: [periods]}"


# `ignore_fields: {classes: [periods]}`: record fields a district's provider garbles, not to be read. One key per
# endpoint of the flattening table, each listing that endpoint's fields, so the schema stays that table's.
IgnoreFields: type[Section] = create_model(
    "IgnoreFields",
    __base__=_IgnoreFieldsSection,
    __doc__="Fields of each endpoint's records not to read, beyond the provider profile's.",
    **{endpoint: _ignorable(endpoint) for endpoint in ENDPOINT_COLUMNS},
)


class SchoolSite(Section):
    """One SIS school: its site id in the roster (default: its sourcedId) and whether it is synced."""

    sourced_id: Annotated[str, Refuse("needs a sourced_id (the SIS school's sourcedId)")]
    site_id: str | None = None
    enabled: Annotated[bool, TRUE_OR_FALSE] = True


class SchoolsSection(Section):
    """Which SIS schools are synced: ``default_enabled`` for schools not listed, and per-school ``sites``."""

    default_enabled: Annotated[bool, TRUE_OR_FALSE] = True
    sites: Annotated[tuple[SchoolSite, ...], BeforeValidator(_tuple)] = ()


class AuthSection(Section):
    """A REST source's credentials, named by environment variable; unset keys come from the provider profile."""

    shape: ClassVar[str] = "a mapping with type, client_id_env, client_secret_env"
    refused_keys: ClassVar[Mapping[str, str]] = {
        key: "inline credentials are not allowed; use client_id_env/client_secret_env"
        for key in ("client_id", "client_secret")
    }

    type: Annotated[AuthType | None, Refuse("'{value}' is not allowed (allowed: oauth2, oauth1)")] = None
    token_url: str | None = None
    client_id_env: Annotated[EnvVariable, ENV_VARIABLE]
    client_secret_env: Annotated[EnvVariable, ENV_VARIABLE]
    scope: str | None = None
    client_auth_method: Annotated[
        ClientAuthMethod | None,
        Refuse("'{value}' is not allowed (allowed: client_secret_basic, client_secret_post)"),
    ] = None

    @classmethod
    def cross_checks(cls, raw: Mapping[str, Any], context: Mapping[str, Any]) -> Iterator[InitErrorDetails]:
        provider = _provider(context)
        kind = raw.get("type", provider.auth_type if provider else None)
        token_url = raw.get("token_url")
        if kind == "oauth2" and (not isinstance(token_url, str) or not token_url.startswith("http")):
            yield problem(f"'{token_url}' must be an http(s) URL for oauth2", ("token_url",))
        scope = raw.get("scope") if raw.get("scope") is not None else provider and provider.default_scope
        if kind == "oauth2" and provider is not None and provider.scope_required and not scope:
            yield problem(
                f"provider '{provider.key}' refuses token requests without a scope; set scope{_about(provider)}",
                ("scope",),
            )


class RestSourceSection(Section):
    """A OneRoster REST API: its base URL (ending in the version's path) and credentials."""

    shape: ClassVar[str] = "a mapping with kind: rest, base_url and auth"

    kind: Literal["rest"]
    # YAML reads an unquoted 1.1 as a number.
    version: Annotated[
        RestVersion,
        BeforeValidator(lambda version: str(version) if isinstance(version, float) else version),
        Refuse("'{value}' is not allowed (allowed: 1.1, 1.2)"),
    ] = "1.1"
    base_url: Annotated[str, Field(pattern=r"^https?://"), Refuse("'{value}' must be an http(s) URL")]
    auth: AuthSection
    page_size: Annotated[
        Annotated[int, Field(ge=1)] | None,
        Refuse("'{value}' must be a positive integer"),
        Field(description="records per page (default and cap: the provider profile's page_size_cap)"),
    ] = None

    @model_validator(mode="before")
    @classmethod
    def _provider_offers_an_api(cls, data: Any, info: Any) -> Any:
        provider = _provider(info.context or {})
        if provider is not None and API not in provider.connection_types:
            raise refused(
                f"provider '{provider.key}' ({provider.display_name}) offers no OneRoster API; use kind: csv with "
                f"a path or sftp drop{_about(provider)}",
                ("kind",),
            )
        return data

    @classmethod
    def cross_checks(cls, raw: Mapping[str, Any], context: Mapping[str, Any]) -> Iterator[InitErrorDetails]:
        provider = _provider(context)
        version, base_url = str(raw.get("version", "1.1")), raw.get("base_url")
        path = REST_BASE_PATHS.get(version)
        is_url = isinstance(base_url, str) and base_url.startswith(("http://", "https://"))
        if is_url and path and not str(base_url).rstrip("/").endswith(path):
            hint = f"; {provider.display_name} URLs look like {provider.base_url_hint}" if provider else ""
            yield problem(
                f"'{base_url}' must end in {path} for OneRoster {version} "
                f"(SIS consoles often show the host only; append the path{hint}){_about(provider)}",
                ("base_url",),
            )
        auth = raw.get("auth")
        kind = auth.get("type", provider and provider.auth_type) if isinstance(auth, Mapping) else None
        if kind == "oauth1" and version == "1.2":
            yield problem("OneRoster 1.2 requires oauth2; oauth1 is 1.1 only", ("auth", "type"))


class SftpConfig(Section):
    """An SFTP drop of CSV bundles: log in with a password (named by environment variable) or a key file."""

    shape: ClassVar[str] = "a mapping with host, username, remote_path"

    host: str
    username: str
    remote_path: str
    port: int = 22
    password_env: Annotated[EnvVariable | None, Refuse("must name an environment variable")] = None
    key_path: str | None = None
    known_hosts: str | None = None
    host_key_fingerprint: str | None = None

    @classmethod
    def cross_checks(cls, raw: Mapping[str, Any], context: Mapping[str, Any]) -> Iterator[InitErrorDetails]:
        if (raw.get("password_env") is None) == (raw.get("key_path") is None):
            yield problem("needs exactly one of password_env or key_path")


class CsvSourceSection(Section):
    """OneRoster CSV bundles: a local folder (`path`) or an SFTP drop (`sftp`)."""

    kind: Literal["csv"]
    path: str | None = None
    sftp: SftpConfig | None = None

    @model_validator(mode="before")
    @classmethod
    def _path_or_sftp(cls, data: Any) -> Any:
        if isinstance(data, Mapping) and (data.get("path") is None) == (data.get("sftp") is None):
            raise refused("a csv source needs exactly one of path or sftp")
        return data


def _source_kind(value: Any) -> Any:
    """Refuses a source that names no known kind before the union tries (and reports on) both."""
    if not isinstance(value, Mapping):
        raise refused("missing: a mapping with kind: rest or kind: csv")
    if value.get("kind") not in ("rest", "csv"):
        raise refused(f"'{value.get('kind')}' is not allowed (allowed: rest, csv)", ("kind",))
    return value


def _endpoints_refused(requested: Any) -> str:
    if not isinstance(requested, list):
        return "must be a list of endpoint names"
    unknown = [name for name in requested if name not in KNOWN_ENDPOINTS]
    return f"unknown {unknown} (allowed: {', '.join(KNOWN_ENDPOINTS)})"


class DistrictSection(Section):
    """One district: where its roster comes from (`provider`, `source`) and how it is synced and scheduled.
    `network`, `guard`, `pauses` and `blackouts` default to the registry's top-level sections."""

    shape: ClassVar[str] = "a mapping with id, name, provider and source"

    id: Annotated[
        str,
        Field(pattern=DISTRICT_ID_PATTERN),
        Refuse("'{value}' is not allowed: use lowercase letters, digits and '-'"),
    ]
    name: str | None = Field(default=None, description="default: the id")
    provider: Annotated[
        ProviderKey,
        Refuse(lambda key: f"'{key}' is not a known provider profile (allowed: {', '.join(sorted(PROVIDERS))})"),
    ] = "generic"
    source: Annotated[
        RestSourceSection | CsvSourceSection,
        BeforeValidator(_source_kind),
        Field(discriminator="kind"),
        Refuse("missing: a mapping with kind: rest or kind: csv"),
    ]
    endpoints: Annotated[
        tuple[EndpointName, ...] | None,
        BeforeValidator(_tuple),
        Refuse(_endpoints_refused),
        Field(description="default: every endpoint the provider offers"),
    ] = None
    ignore_fields: IgnoreFields | None = None  # type: ignore[valid-type]
    schools: SchoolsSection | None = None
    schedule: Annotated[Cron, Refuse("'{value}' is not a cron expression (e.g. '0 2 * * *')")] = DEFAULT_SCHEDULE
    full_schedule: Annotated[Cron, Refuse("'{value}' is not a cron expression (e.g. '0 3 * * 0')")] = (
        DEFAULT_FULL_SCHEDULE
    )
    enabled: Annotated[bool, TRUE_OR_FALSE] = True
    guard: GuardSettings | None = None
    network: NetworkSettings | None = None
    pickup_metadata: PickupMetadata | None = None
    pauses: Annotated[tuple[Pause, ...] | None, BeforeValidator(_tuple), Refuse("must be a list")] = None
    blackouts: Annotated[tuple[Blackout, ...] | None, BeforeValidator(_tuple), Refuse("must be a list")] = None

    @classmethod
    def enter(cls, data: Any, context: dict[str, Any]) -> None:
        key = data.get("provider", "generic") if isinstance(data, Mapping) else None
        context["provider"] = PROVIDERS.get(key) if isinstance(key, str) else None

    @classmethod
    def cross_checks(cls, raw: Mapping[str, Any], context: Mapping[str, Any]) -> Iterator[InitErrorDetails]:
        provider, requested = _provider(context), raw.get("endpoints")
        if provider is None or not isinstance(requested, list):
            return
        not_offered = [e for e in requested if e in KNOWN_ENDPOINTS and not provider.offers(e)]
        if not_offered:
            offered = ", ".join(e for e in KNOWN_ENDPOINTS if provider.offers(e))
            yield problem(
                f"provider '{provider.key}' does not offer {not_offered} (it offers {offered}){_about(provider)}",
                ("endpoints",),
            )


class RegistryDocument(Section):
    """The district registry (`data/districts.yaml`): the districts, the time zone their schedules are read in,
    defaults every district may override, and where alerts go."""

    shape: ClassVar[str] = "a mapping with a 'districts' list"

    districts: Annotated[tuple[DistrictSection, ...], BeforeValidator(_tuple)]
    timezone: Annotated[
        str,
        AfterValidator(_timezone),
        Refuse("'{value}' is not an IANA time zone name (e.g. America/Chicago)"),
    ] = DEFAULT_TIMEZONE
    network: NetworkSettings | None = Field(default=None, description="every district's default")
    guard: GuardSettings | None = Field(default=None, description="every district's default")
    pauses: Annotated[
        tuple[Pause, ...] | None,
        BeforeValidator(_tuple),
        Refuse("must be a list (the default for every district)"),
        Field(description="every district's default"),
    ] = None
    blackouts: Annotated[
        tuple[Blackout, ...] | None,
        BeforeValidator(_tuple),
        Refuse("must be a list (the default for every district)"),
        Field(description="every district's default"),
    ] = None
    notifications: NotificationsSection | None = None

    @classmethod
    def cross_checks(cls, raw: Mapping[str, Any], context: Mapping[str, Any]) -> Iterator[InitErrorDetails]:
        seen: set[str] = set()
        for index, entry in enumerate(raw.get("districts") or ()):
            district_id = entry.get("id") if isinstance(entry, Mapping) else None
            if isinstance(district_id, str) and district_id in seen:
                yield problem("id is used twice (ids are partition keys and unique)", ("districts", index))
            if isinstance(district_id, str):
                seen.add(district_id)


# Top-level sections that set every district's default (a district's own section overrides it).
DEFAULTABLE = ("network", "guard", "pauses", "blackouts")


def registry_json_schema() -> dict[str, Any]:
    """The registry's JSON Schema (draft 2020-12), for editors: point yaml-language-server at it and a typo'd key
    or a wrong value is underlined as you type. Checks that need a provider profile run only in the pipeline."""
    schema = RegistryDocument.model_json_schema(by_alias=True)
    return {**schema, "$schema": "https://json-schema.org/draft/2020-12/schema", "title": "District registry"}
