"""Provider quirks, emulated by the sandbox over real HTTP, handled by profile rows rather than branches."""

from __future__ import annotations

import duckdb
import pytest

from roster_pipeline.fetch import fetch_endpoint
from roster_pipeline.lake import Lake
from roster_pipeline.oneroster import OneRosterError
from roster_pipeline.oneroster.providers import PROVIDERS, ProviderProfile
from roster_pipeline.sandbox.generator import DistrictSpec, generate_district
from roster_pipeline.sources import rest_client_for

ROSTER_READONLY = "https://purl.imsglobal.org/spec/or/v1p1/scope/roster.readonly"


def small(district_id: str, seed: int = 4):
    return generate_district(DistrictSpec(district_id, seed=seed, schools=2, students_per_school=15))


def use_profile(monkeypatch, **fields) -> str:
    profile = ProviderProfile(**{"display_name": fields["key"].title(), **fields})
    monkeypatch.setitem(PROVIDERS, profile.key, profile)
    return profile.key


def test_a_provider_that_requires_an_explicit_scope_gets_it_from_the_profile(world, monkeypatch):
    scoped = use_profile(monkeypatch, key="scoped", default_scope=ROSTER_READONLY, scope_required=True)
    auth = {"scope": ROSTER_READONLY, "require_scope": True}
    world.add_rest_district(small("ash"), provider=scoped, auth_options=auth)
    world.add_rest_district(small("ash"), district_id="ash-generic", auth_options=auth)
    registry = world.settings.registry()
    with rest_client_for(registry.district("ash")) as client:
        assert client.fetch_all("orgs")
    with rest_client_for(registry.district("ash-generic")) as client, pytest.raises(OneRosterError) as caught:
        client.fetch_all("orgs")
    assert "invalid_scope" in str(caught.value) and "requires an explicit scope" in str(caught.value)


def test_a_provider_offering_only_orgs_and_users_syncs_those_and_skips_the_rest(world, monkeypatch):
    people = use_profile(monkeypatch, key="people-only", endpoints=frozenset({"orgs", "users"}))
    district = small("birch")
    world.add_rest_district(district, provider=people, offered={"orgs", "users"})
    result = world.sync("birch")
    assert result.success, result.error
    assert result.endpoints["classes"]["offered"] is False
    con = duckdb.connect(str(world.published), read_only=True)
    try:
        users, classes = con.execute("SELECT (SELECT count(*) FROM users), (SELECT count(*) FROM classes)").fetchone()
    finally:
        con.close()
    assert users == district.counts()["users"] and classes == 0


def test_class_periods_a_provider_garbles_are_ignored_by_its_profile(world, monkeypatch):
    garbled = use_profile(monkeypatch, key="garbled", ignored_fields={"classes": frozenset({"periods"})})
    world.add_rest_district(small("cedar"), provider=garbled, garbage_periods=True)
    world.add_rest_district(small("cedar"), district_id="cedar-generic", garbage_periods=True)
    registry, lake = world.settings.registry(), Lake(world.data_dir / "lake")
    with pytest.raises(TypeError):  # what every page of classes does without the profile's help
        fetch_endpoint(registry.district("cedar-generic"), "classes", lake, run_id="r1")
    outcome = fetch_endpoint(registry.district("cedar"), "classes", lake, run_id="r1")
    assert outcome.records == 12
    batch = lake.batches("classes", "cedar")[0]
    con = duckdb.connect()
    try:
        periods = con.execute("SELECT DISTINCT len(periods) FROM read_parquet(?)", [batch.files]).fetchall()
    finally:
        con.close()
    assert periods == [(0,)]
