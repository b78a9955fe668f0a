"""Provider profiles are data: every SIS of the issue has a row, and the registry explains them."""

from __future__ import annotations

import pytest

from roster_pipeline.config.registry import RegistryError, parse_registry
from roster_pipeline.oneroster.providers import API, PROVIDERS, SFTP, ProviderProfile

SIS_LIST = [
    "generic",
    "aequitas-q",
    "aeries",
    "arbor",
    "alma",
    "ascender",
    "blackbaud",
    "classlink",
    "classter",
    "edge",
    "educate",
    "eschooldata",
    "eschooling",
    "eventful",
    "facts",
    "focus",
    "follett-aspen",
    "genesis",
    "infinite-campus",
    "isams",
    "ist",
    "librus",
    "myschool",
    "powerschool",
    "powerschool-unified-classroom",
    "realtime",
    "rediker",
    "schooltool",
    "sims",
    "skool",
    "skyward",
    "smartschool",
    "sycamore",
    "synergy",
    "veracross",
    "vigilo",
    "vulcan-uonet",
]


def rest_entry(provider: str, **source) -> dict:
    auth = {"type": "oauth2", "token_url": "https://sis.example.org/oauth/token"}
    auth.update(client_id_env="SIS_ID", client_secret_env="SIS_SECRET")
    return {
        "id": "lincoln",
        "provider": provider,
        "source": {"kind": "rest", "base_url": "https://sis.example.org/ims/oneroster/v1p1", "auth": auth, **source},
    }


def problems(*entries: dict) -> str:
    with pytest.raises(RegistryError) as caught:
        parse_registry({"districts": list(entries)})
    return str(caught.value)


def test_every_sis_of_the_issue_has_a_profile_with_the_fields_the_pipeline_reads():
    assert set(SIS_LIST) <= set(PROVIDERS)
    for key, profile in PROVIDERS.items():
        assert profile.key == key and profile.display_name and profile.notes
        assert profile.connection_types and profile.connection_types <= {API, SFTP}
        assert profile.auth_type in ("oauth2", "oauth1")
        assert profile.base_url_hint.startswith("https://") and profile.page_size_cap >= 1


def test_a_profile_not_checked_against_vendor_documentation_says_so_and_keeps_generic_defaults():
    generic = PROVIDERS["generic"]
    for profile in PROVIDERS.values():
        if profile.verified or profile.key in ("generic", "aeries", "classlink", "infinite-campus", "powerschool"):
            continue
        assert "unverified" in profile.notes.lower(), profile.key
        assert profile.endpoints is None and not profile.ignored_fields, profile.key
        assert profile.delta_filter_works == generic.delta_filter_works, profile.key


def test_an_sftp_only_provider_refuses_a_rest_source_and_shows_its_notes(monkeypatch):
    profile = ProviderProfile(
        "drop-only", "Drop-Only SIS", connection_types=frozenset({SFTP}), notes="Exports CSV bundles nightly."
    )
    monkeypatch.setitem(PROVIDERS, profile.key, profile)
    text = problems(rest_entry("drop-only"))
    assert "offers no OneRoster API; use kind: csv" in text and "Exports CSV bundles nightly." in text
    csv = {"id": "lincoln", "provider": "drop-only", "source": {"kind": "csv", "path": "/srv/drops/lincoln"}}
    assert parse_registry({"districts": [csv]}).district("lincoln").provider is profile


def test_a_base_url_without_the_oneroster_path_is_explained_with_the_provider_notes():
    text = problems(rest_entry("aeries", base_url="https://sis.example.org"))
    assert "must end in /ims/oneroster/v1p1" in text
    assert "Aeries SIS URLs look like https://<district>.aeries.net/aeries/ims/oneroster/v1p1" in text
    assert "Aeries SIS notes: Aeries documents a OneRoster 1.1 API" in text


def test_asking_a_provider_for_endpoints_it_does_not_offer_is_refused(monkeypatch):
    profile = ProviderProfile(
        "people-only", "People-Only SIS", endpoints=frozenset({"orgs", "users"}), notes="Orgs and users only."
    )
    monkeypatch.setitem(PROVIDERS, profile.key, profile)
    assert parse_registry({"districts": [rest_entry("people-only")]}).districts[0].endpoints == ("orgs", "users")
    text = problems({**rest_entry("people-only"), "endpoints": ["orgs", "users", "classes"]})
    assert "does not offer ['classes'] (it offers orgs, users)" in text and "Orgs and users only." in text


def test_a_provider_that_needs_an_explicit_scope_sends_its_default_and_refuses_an_empty_one(monkeypatch):
    scope = "https://purl.imsglobal.org/spec/or/v1p1/scope/roster.readonly"
    profile = ProviderProfile("scoped", "Scoped SIS", default_scope=scope, scope_required=True, notes="Send scope.")
    monkeypatch.setitem(PROVIDERS, profile.key, profile)
    district = parse_registry({"districts": [rest_entry("scoped")]}).districts[0]
    assert district.source.auth.scope == scope  # type: ignore[union-attr]
    entry = rest_entry("scoped")
    entry["source"]["auth"]["scope"] = ""
    assert "refuses token requests without a scope" in problems(entry)


def test_the_auth_type_defaults_to_the_provider_profile():
    entry = rest_entry("classlink")
    del entry["source"]["auth"]["type"]
    assert parse_registry({"districts": [entry]}).districts[0].source.auth.type == "oauth1"  # type: ignore[union-attr]


def test_a_verified_profile_cites_the_documentation_it_was_checked_against():
    verified = [profile for profile in PROVIDERS.values() if profile.verified]
    assert {"aeries", "blackbaud", "classlink", "powerschool-unified-classroom"} <= {p.key for p in verified}
    for profile in verified:
        assert "https://" in profile.notes, profile.key


def test_aeries_sends_the_roster_scope_it_requires_and_refuses_an_empty_one():
    scope = "https://purl.imsglobal.org/spec/or/v1p1/scope/roster.readonly"
    district = parse_registry({"districts": [rest_entry("aeries")]}).districts[0]
    assert district.source.auth.scope == scope  # type: ignore[union-attr]
    entry = rest_entry("aeries")
    entry["source"]["auth"]["scope"] = ""
    assert "provider 'aeries' refuses token requests without a scope" in problems(entry)


def test_blackbaud_defaults_to_oauth1_and_explains_its_myschoolapp_base_url():
    entry = rest_entry("blackbaud", base_url="https://lincoln.myschoolapp.com")
    del entry["source"]["auth"]["type"]
    text = problems(entry)
    assert "URLs look like https://<school>.myschoolapp.com/ims/oneroster/v1p1" in text
    entry["source"]["base_url"] = "https://lincoln.myschoolapp.com/ims/oneroster/v1p1"
    assert parse_registry({"districts": [entry]}).districts[0].source.auth.type == "oauth1"  # type: ignore[union-attr]


def test_unified_classroom_posts_its_client_credentials_in_the_form_body():
    district = parse_registry({"districts": [rest_entry("powerschool-unified-classroom")]}).districts[0]
    assert district.source.auth.client_auth_method == "client_secret_post"  # type: ignore[union-attr]


@pytest.mark.parametrize("key", ["alma", "ascender", "genesis"])
def test_sftp_only_vendors_are_registered_as_csv_drops_and_a_rest_source_is_explained(key):
    assert PROVIDERS[key].connection_types == {SFTP}
    text = problems(rest_entry(key))
    assert f"provider '{key}'" in text and "offers no OneRoster API; use kind: csv" in text
    assert "connection type as SFTP only (https://visitoraware.freshdesk.com/" in text
    drop = {"id": "lincoln", "provider": key, "source": {"kind": "csv", "path": "/srv/drops/lincoln"}}
    assert parse_registry({"districts": [drop]}).district("lincoln").source.kind == "csv"


@pytest.mark.parametrize("key", ["powerschool", "veracross"])
def test_vendors_offering_api_and_sftp_accept_either_source(key):
    assert PROVIDERS[key].connection_types == {API, SFTP}
    drop = {"id": "lincoln", "provider": key, "source": {"kind": "csv", "path": "/srv/drops/lincoln"}}
    assert parse_registry({"districts": [rest_entry(key)]}).district("lincoln").source.kind == "rest"
    assert parse_registry({"districts": [drop]}).district("lincoln").source.kind == "csv"


def test_a_district_may_ignore_fields_its_provider_garbles_and_typos_are_caught():
    entry = {**rest_entry("generic"), "ignore_fields": {"classes": ["periods"], "users": ["pronouns"]}}
    district = parse_registry({"districts": [entry]}).district("lincoln")
    assert district.ignored("classes") == {"periods"} and district.ignored("users") == {"pronouns"}
    assert district.ignored("orgs") == frozenset()
    assert "ignore_fields.classes: ['period'] cannot be ignored (fields of classes: " in problems(
        {**rest_entry("generic"), "ignore_fields": {"classes": ["period"]}}
    )
    assert "ignore_fields.class: unknown endpoint" in problems(
        {**rest_entry("generic"), "ignore_fields": {"class": ["periods"]}}
    )
    assert "ignore_fields.classes: must be a list of field names" in problems(
        {**rest_entry("generic"), "ignore_fields": {"classes": "periods"}}
    )
    for common in ("sourcedId", "dateLastModified", "status"):
        assert "cannot be ignored" in problems({**rest_entry("generic"), "ignore_fields": {"users": [common]}})


def test_a_district_adds_to_the_ignored_fields_of_its_provider_profile(monkeypatch):
    profile = ProviderProfile("garbled", "Garbled SIS", ignored_fields={"classes": frozenset({"periods"})}, notes="x")
    monkeypatch.setitem(PROVIDERS, profile.key, profile)
    entry = {**rest_entry("garbled"), "ignore_fields": {"classes": ["location"]}}
    assert parse_registry({"districts": [entry]}).district("lincoln").ignored("classes") == {"periods", "location"}
