"""Endpoint specs and provider profiles are data the rest of the project reads."""

import pytest

from roster_pipeline.oneroster import ENDPOINT_NAMES, ENDPOINTS_V1P1, ENDPOINTS_V1P2, endpoint_spec
from roster_pipeline.oneroster.providers import PROVIDERS, provider_profile


def test_v1p1_has_five_required_and_two_optional_endpoints():
    required = {spec.name for spec in ENDPOINTS_V1P1 if spec.required}
    optional = {spec.name for spec in ENDPOINTS_V1P1 if not spec.required}
    assert required == {"academicSessions", "orgs", "users", "classes", "enrollments"}
    assert optional == {"courses", "demographics"}


def test_envelope_keys_match_the_collection_names():
    for spec in ENDPOINTS_V1P1:
        assert spec.envelope_key == spec.name == spec.path
    assert endpoint_spec("classes").singular_key == "class"


def test_both_versions_sync_the_same_collections_in_the_same_order():
    assert tuple(spec.name for spec in ENDPOINTS_V1P2) == ENDPOINT_NAMES == tuple(s.name for s in ENDPOINTS_V1P1)


def test_unknown_endpoint_names_the_known_ones():
    with pytest.raises(KeyError, match="known: academicSessions"):
        endpoint_spec("teachers")


def test_provider_table_holds_the_first_profiles():
    assert {"generic", "powerschool", "infinite-campus", "classlink", "skyward", "aeries"} <= set(PROVIDERS)
    for key, profile in PROVIDERS.items():
        assert profile.key == key
        assert profile.page_size_cap >= 1 and profile.max_concurrency >= 1
        assert profile.client_auth_method in ("client_secret_basic", "client_secret_post")
    with pytest.raises(KeyError, match="known:"):
        provider_profile("nope")
