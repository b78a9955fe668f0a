"""Provider profiles: what we know about each SIS's OneRoster service, as rows of data.

The client reads a profile for its page-size cap and concurrency; the registry for auth defaults, the
connection types and endpoints a provider offers, and the notes it shows beside a validation problem; the
flattener for fields to ignore. Quirks belong here as fields, never as ``if provider == ...`` branches.

Only what a vendor's own documentation says is recorded as fact. Everything else is the generic default and
the row says "unverified": a wrong quirk (say, an endpoint list that is too short) would silently drop data,
while a missing one shows up in ``roster-pipeline check`` and is fixed here or in the district's registry entry.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field

# Connection types: "api" is the OneRoster REST service, "sftp" a CSV bundle drop.
API = "api"
SFTP = "sftp"
V1P1_BASE_URL = "https://<sis host>/ims/oneroster/v1p1"
UNVERIFIED = (
    "Unverified: generic OneRoster 1.1 defaults (OAuth 2 client credentials, base URL ending in "
    "/ims/oneroster/v1p1, every endpoint, working dateLastModified filter); run `roster-pipeline check` "
    "before the first sync and record what it finds here."
)


@dataclass(frozen=True)
class ProviderProfile:
    """What the pipeline assumes about one provider's OneRoster service.

    ``connection_types`` how districts receive data (``"api"``, ``"sftp"``); ``auth_type`` ``"oauth2"`` or
    ``"oauth1"``; ``client_auth_method`` and ``default_scope`` the OAuth 2 token-request defaults;
    ``scope_required`` whether the token endpoint refuses a request without ``scope``;
    ``base_url_hint``/``token_url_hint`` the URL conventions (placeholders in ``<...>``);
    ``page_size_cap`` the largest ``limit`` honoured (the client never asks for more); ``max_concurrency``
    the parallel page requests tolerated from one district (its endpoints fetched side by side share them);
    ``delta_filter_works`` whether ``filter=dateLastModified>...``
    is trustworthy (else full syncs); ``endpoints`` the endpoints offered (``None`` = all);
    ``ignored_fields`` record fields to drop per endpoint before flattening (known garbage);
    ``verified`` whether the row was checked against the vendor's documentation.
    """

    key: str
    display_name: str
    connection_types: frozenset[str] = frozenset({API})
    auth_type: str = "oauth2"
    client_auth_method: str = "client_secret_basic"
    base_url_hint: str = V1P1_BASE_URL
    token_url_hint: str | None = None
    default_scope: str | None = None
    scope_required: bool = False
    page_size_cap: int = 1000
    # Eight, as the raw-download floor of bench/large_district.py. A district's endpoints each used to page with up to
    # four, so a run had up to sixteen in flight, and its largest endpoint still paged with four once the others
    # were done.
    max_concurrency: int = 8
    delta_filter_works: bool = True
    endpoints: frozenset[str] | None = None
    ignored_fields: Mapping[str, frozenset[str]] = field(default_factory=dict, hash=False)
    verified: bool = False
    notes: str = ""

    def ignored(self, endpoint: str) -> frozenset[str]:
        """Fields of ``endpoint`` records this provider sends but we must not read."""
        return self.ignored_fields.get(endpoint, frozenset())

    def offers(self, endpoint: str) -> bool:
        """Whether the provider offers ``endpoint`` (every endpoint unless the profile lists them)."""
        return self.endpoints is None or endpoint in self.endpoints


def _unverified(key: str, display_name: str, note: str = "") -> ProviderProfile:
    return ProviderProfile(key=key, display_name=display_name, notes=f"{note} {UNVERIFIED}".strip())


# Names as Microsoft School Data Sync lists them among its OneRoster API providers, where it does.
_SDS_OVERVIEW = "https://learn.microsoft.com/en-us/schooldatasync/oneroster-provider-overview"
_SDS_LISTED = "Listed by Microsoft School Data Sync as a OneRoster API provider."
_SDS_NO_EXTRAS = f"{_SDS_LISTED} SDS does not take contacts or demographics from it ({_SDS_OVERVIEW})."
ROSTER_READONLY = "https://purl.imsglobal.org/spec/or/v1p1/scope/roster.readonly"

_AERIES_AUTH = "https://support.aeries.com/support/solutions/articles/14000065677"
_AERIES_ENDPOINTS = "https://support.aeries.com/support/solutions/articles/14000065667"
_AERIES_SETUP = "https://support.aeries.com/support/solutions/articles/14000065657"
_BLACKBAUD_OAUTH2 = "https://developer.blackbaud.com/skyapi/products/bbem/oneroster/integrations"
_BLACKBAUD_TOKEN = "https://developer.blackbaud.com/skyapi/products/bbem/oneroster/authorization"
_BLACKBAUD_OAUTH1 = "https://help.formative.com/en/articles/4380353-gold-plan-schools-rostering-with-blackbaud"
_CLASSLINK_ACCESS = "https://developer.classlink.com/reference/accessing-data"
_CLASSLINK_POWERSCHOOL = "https://support.classlink.com/hc/en-us/articles/360007232513-PowerSchool-API-Activation"
_INSTRUCTURE_POWERSCHOOL = (
    "https://community.canvaslms.com/t5/PowerSchool-and-Canvas/Where-can-I-find-authorization-credentials-for-the-"
    "Canvas/ta-p/425643"
)
_POWERSCHOOL_TOKEN = "https://apis.io/examples/powerschool/powerschool-oauth-token-request/"
_CAMPUS_GUIDELINES = "https://kb.infinitecampus.com/help/guidelines-for-oneroster-api-consumers"
_CAMPUS_V1P2 = "https://help.gg4l.com/knowledge/establish-a-connection-with-infinite-campus-api-1.2-data-source"
_UNIFIED_CLASSROOM = "https://docs.powerschool.com/UCHA/system-administration/integrations/oneroster"
# A visitor-management product's table of the SIS products it connects to, and over what (API, SFTP, or both).
_VISITOR_AWARE = (
    "https://visitoraware.freshdesk.com/support/solutions/articles/43000540100-oneroster-student-information-"
    "system-integration"
)
_SFTP_ONLY = (
    "Delivers OneRoster CSV bundles over SFTP, not a OneRoster API: a visitor-management integrator lists its "
    f"connection type as SFTP only ({_VISITOR_AWARE}). Register it with source kind: csv."
)
_API_AND_SFTP = (
    f"Offers both a OneRoster API and SFTP CSV delivery ({_VISITOR_AWARE}); choose kind: rest or kind: csv per "
    "district."
)
_PILOT = f"A visitor-management integrator lists its API connection as a pilot ({_VISITOR_AWARE})."


def _sftp_only(key: str, display_name: str) -> ProviderProfile:
    return ProviderProfile(
        key=key,
        display_name=display_name,
        connection_types=frozenset({SFTP}),
        verified=True,
        notes=f"{_SFTP_ONLY} Bundle layout and delta support unverified; the CSV importer reads its manifest.",
    )


PROVIDERS: dict[str, ProviderProfile] = {
    profile.key: profile
    for profile in (
        ProviderProfile(
            key="generic",
            display_name="Generic OneRoster provider",
            notes="Spec defaults: OAuth 2 client credentials with HTTP Basic client authentication; 1.1 or 1.2.",
        ),
        _unverified(
            "aequitas-q",
            "Aequitas Q",
            f"{_SDS_LISTED} SDS takes contacts and demographics from it ({_SDS_OVERVIEW}).",
        ),
        ProviderProfile(
            key="aeries",
            display_name="Aeries SIS",
            base_url_hint="https://<district>.aeries.net/aeries/ims/oneroster/v1p1",
            token_url_hint="https://<district>.aeries.net/aeries/token",
            default_scope=ROSTER_READONLY,
            scope_required=True,
            max_concurrency=2,
            verified=True,
            notes=(
                "Aeries documents a OneRoster 1.1 API with OAuth 2.0 bearer tokens. The token request must name "
                f"at least one scope (roster.readonly is sent by default); token URL is the Aeries base URL + /token "
                f"({_AERIES_AUTH}). The base URL includes the Aeries subdirectory (e.g. /aeries) and the API lives "
                f"under <base>/ims/oneroster/v1p1 ({_AERIES_SETUP}, {_AERIES_ENDPOINTS}); the endpoint list there "
                "includes academicSessions, classes, courses, demographics, enrollments, orgs and users. Aeries warns "
                "that repeated get-all requests load the SIS: kept to two parallel requests. Page cap and "
                "dateLastModified filter unverified; SDS does not take contacts or demographics from it "
                f"({_SDS_OVERVIEW})."
            ),
        ),
        _sftp_only("alma", "Alma"),
        _unverified("arbor", "Arbor Education", _SDS_NO_EXTRAS),
        _sftp_only("ascender", "Ascender"),
        ProviderProfile(
            key="blackbaud",
            display_name="Blackbaud Education Management",
            auth_type="oauth1",
            base_url_hint="https://<school>.myschoolapp.com/ims/oneroster/v1p1",
            token_url_hint="https://oauth2.sky.blackbaud.com/token",
            verified=True,
            notes=(
                "Platform managers create OneRoster credentials (consumer key and secret, OAuth 1) whose base URL "
                f"is the school's myschoolapp.com host + /ims/oneroster/v1p1 ({_BLACKBAUD_OAUTH1}). Blackbaud also "
                "offers an OAuth 2.0 client-credentials configuration (OneRoster 1.1 only): set type: oauth2, "
                "base URL https://api.sky.blackbaud.com/afe-rostr/ims/oneroster/v1p1 and token URL "
                "https://oauth2.sky.blackbaud.com/token with HTTP Basic client authentication "
                f"({_BLACKBAUD_OAUTH2}, {_BLACKBAUD_TOKEN}). SDS takes contacts and demographics from it "
                f"({_SDS_OVERVIEW}). Page cap and filter support unverified."
            ),
        ),
        ProviderProfile(
            key="classlink",
            display_name="ClassLink Roster Server",
            auth_type="oauth1",
            verified=True,
            notes=(
                "A district's Roster Server is reached directly with OAuth 1 signed requests (server URL, client "
                "id and secret from ClassLink's console); ClassLink's OAuth 2 proxy is the alternative, at "
                "https://oneroster-proxy.classlink.io/<app id>/ims/oneroster/v1p1 with a static bearer key "
                f"({_CLASSLINK_ACCESS}), which this pipeline does not take: connect with OAuth 1. SDS does not "
                f"take contacts or demographics from it ({_SDS_OVERVIEW}). "
                "Base URL, page cap and filter support unverified."
            ),
        ),
        _unverified("classter", "Classter", _SDS_NO_EXTRAS),
        _unverified("edge", "Edge Learning", _SDS_NO_EXTRAS),
        _unverified("educate", "Educate by Community Brands", _SDS_NO_EXTRAS),
        _unverified("eschooldata", "eSchoolData", _SDS_NO_EXTRAS),
        _unverified("eschooling", "eSchooling", _SDS_NO_EXTRAS),
        _unverified(
            "eventful",
            "Eventful",
            f"{_SDS_LISTED} SDS takes contacts but not demographics from it ({_SDS_OVERVIEW}).",
        ),
        _unverified("facts", "FACTS", _SDS_NO_EXTRAS),
        _unverified("focus", "Focus School Software", _SDS_NO_EXTRAS),
        _unverified(
            "follett-aspen",
            "Follett Aspen",
            f"Listed by Microsoft School Data Sync with status Test (not generally available) ({_SDS_OVERVIEW}).",
        ),
        _sftp_only("genesis", "Genesis Educational Services"),
        ProviderProfile(
            key="infinite-campus",
            display_name="Infinite Campus",
            token_url_hint="https://<campus host>/campus/oauth2/token?appName=<app name>",
            page_size_cap=10_000,
            notes=(
                "OneRoster with OAuth 2 client credentials; Infinite Campus offers 1.1 and 1.2 rostering and has "
                "retired OAuth 1 (June 2023). Its consumer guidelines raise the page limit from 10k to 50k records "
                "as of Campus.1645 (10k kept here, safe on older releases) and recommend nightly differential syncs "
                f"filtered on dateLastModified ({_CAMPUS_GUIDELINES}). A connector vendor's guide gives the token "
                "URL form above and the 1.2 base URL https://<campus host>/campus/api/ims/oneroster/rostering/v1p2 "
                f"({_CAMPUS_V1P2}); not from Infinite Campus itself. SDS does not take contacts or demographics "
                f"from it ({_SDS_OVERVIEW})."
            ),
        ),
        _unverified("isams", "iSAMS", _SDS_NO_EXTRAS),
        _unverified("ist", "IST", _SDS_NO_EXTRAS),
        _unverified("librus", "Librus", _SDS_NO_EXTRAS),
        _unverified("myschool", "MySchool", _SDS_NO_EXTRAS),
        ProviderProfile(
            key="powerschool",
            display_name="PowerSchool SIS",
            connection_types=frozenset({API, SFTP}),
            token_url_hint="https://<powerschool host>/oauth/access_token",
            notes=(
                "OneRoster through a OneRoster plugin installed in PowerSchool, whose Data Configuration page shows "
                "the OAuth client id and secret and a maximum page size that integrators ask districts to raise to "
                f"1000 ({_CLASSLINK_POWERSCHOOL}, {_INSTRUCTURE_POWERSCHOOL}); until it is raised the server sends "
                "shorter pages, which the client follows and `roster-pipeline check` reports. The token URL above is "
                f"PowerSchool's general API convention (an API catalogue's example, {_POWERSCHOOL_TOKEN}), not from "
                f"a OneRoster page. {_API_AND_SFTP} Filter support unverified."
            ),
        ),
        ProviderProfile(
            key="powerschool-unified-classroom",
            display_name="PowerSchool Unified Classroom",
            token_url_hint="https://accounts.powerschool.com/as/token.oauth2",
            client_auth_method="client_secret_post",
            verified=True,
            notes=(
                "District admins create OneRoster API keys (key + secret) under Integrations; tokens come from "
                "PowerSchool's OAuth 2.0 endpoint above with client_id and client_secret in the form body "
                f"({_UNIFIED_CLASSROOM}). Base URL, page cap and filter support unverified."
            ),
        ),
        _unverified("realtime", "Realtime (New Jersey)", _PILOT),
        _unverified("rediker", "Rediker"),
        _unverified("schooltool", "SchoolTool"),
        _unverified("sims", "SIMS"),
        _unverified("skool", "Skool"),
        ProviderProfile(
            key="skyward",
            display_name="Skyward",
            max_concurrency=2,
            notes=f"Kept to two parallel requests until its rate limits are confirmed. {UNVERIFIED}",
        ),
        _unverified("smartschool", "SmartSchool"),
        _unverified("sycamore", "Sycamore School", _PILOT),
        _unverified("synergy", "Synergy"),
        ProviderProfile(
            key="veracross",
            display_name="Veracross",
            connection_types=frozenset({API, SFTP}),
            notes=f"{_API_AND_SFTP} {UNVERIFIED}",
        ),
        _unverified("vigilo", "Vigilo"),
        _unverified("vulcan-uonet", "VULCAN UONET+"),
    )
}


def provider_profile(key: str) -> ProviderProfile:
    """Return the profile registered under ``key``; ``KeyError`` lists the known keys otherwise."""
    try:
        return PROVIDERS[key]
    except KeyError:
        raise KeyError(f"unknown provider {key!r} (known: {', '.join(sorted(PROVIDERS))})") from None
