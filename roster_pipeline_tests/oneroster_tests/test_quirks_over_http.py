"""Provider quirks, emulated by the sandbox over real HTTP, handled by profile rows rather than branches."""

from __future__ import annotations

import duckdb
import pytest
import yaml

from roster_pipeline.app.cli import main as cli_main
from roster_pipeline.ingest.endpoint_fetch import fetch_endpoint
from roster_pipeline.ingest.probe import format_report, probe_district
from roster_pipeline.ingest.rest_sources import rest_client_for
from roster_pipeline.oneroster import OneRosterError
from roster_pipeline.oneroster.providers import PROVIDERS, ProviderProfile
from roster_pipeline.sandbox.generator import DistrictSpec, generate_district
from roster_pipeline.store.guard import quarantine_state
from roster_pipeline.store.lake import Lake

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
    con = world.roster()
    try:
        users, classes = con.execute("SELECT (SELECT count(*) FROM users), (SELECT count(*) FROM classes)").fetchone()
    finally:
        con.close()
    assert users == district.counts()["users"] and classes == 0


def periods_lengths(lake: Lake, district_id: str) -> list[tuple[int]]:
    batch = lake.batches("classes", district_id)[0]
    con = duckdb.connect()
    try:
        return con.execute("SELECT DISTINCT len(periods) FROM read_parquet(?)", [batch.files]).fetchall()
    finally:
        con.close()


def test_class_periods_a_provider_garbles_are_ignored_by_its_profile(world, monkeypatch):
    garbled = use_profile(monkeypatch, key="garbled", ignored_fields={"classes": frozenset({"periods"})})
    world.add_rest_district(small("cedar"), provider=garbled, garbage_periods=True)
    registry, lake = world.settings.registry(), Lake(world.data_dir / "lake")
    outcome = fetch_endpoint(registry.district("cedar"), "classes", lake, run_id="r1")
    assert (outcome.records, outcome.malformed) == (12, 0)
    assert periods_lengths(lake, "cedar") == [(0,)]


def test_without_the_quirk_known_every_garbled_class_is_named_and_the_fix_is_spelled_out(world):
    world.add_rest_district(small("cedar"), garbage_periods=True)
    registry, lake = world.settings.registry(), Lake(world.data_dir / "lake")
    outcome = fetch_endpoint(registry.district("cedar"), "classes", lake, run_id="r1")
    assert (outcome.records, outcome.malformed) == (0, 12)  # mass errors: nothing is guessed at
    note = outcome.note or ""
    assert "12 malformed records left out (first: record '" in note and "field periods: expected a list, got" in note
    assert "add `ignore_fields: {classes: [periods]}` to district 'cedar' in the registry" in note
    batch = lake.batches("classes", "cedar")[0]
    assert batch.malformed == 12 and batch.malformed_ids is not None and len(batch.malformed_ids) == 12
    [run] = [record for _, record in lake.run_records("cedar") if record["endpoint"] == "classes"]
    assert run["outcome"] == "success" and run["extra"]["malformed_records"] == 12
    assert len(run["extra"]["problems"]) == 12 and all("field periods" in p for p in run["extra"]["problems"])


def test_the_registry_can_ignore_a_field_for_one_district_without_a_code_change(world):
    world.add_rest_district(
        small("cedar"), garbage_periods=True, registry_entry={"ignore_fields": {"classes": ["periods"]}}
    )
    registry, lake = world.settings.registry(), Lake(world.data_dir / "lake")
    assert registry.district("cedar").ignored("classes") == {"periods"}
    outcome = fetch_endpoint(registry.district("cedar"), "classes", lake, run_id="r1")
    assert (outcome.records, outcome.malformed, outcome.note) == (12, 0, None)
    assert periods_lengths(lake, "cedar") == [(0,)]


def test_check_finds_the_garbled_field_and_prints_the_registry_line_that_fixes_it(world):
    world.add_rest_district(small("cedar"), garbage_periods=True)
    report = probe_district(world.settings.registry().district("cedar"))
    classes = report.endpoints["classes"]
    assert classes.malformed == 12 and classes.malformed_fields == {"periods": 12}
    assert report.endpoints["users"].malformed == 0
    text = format_report(report)
    assert "classes: 12 of 12 records on the first page cannot be read (first: record '" in text
    assert "add `ignore_fields: {classes: [periods]}` to district 'cedar'" in text


def test_one_unreadable_user_is_left_out_and_the_rest_of_the_district_is_published(world):
    district = small("dogwood")
    broken = district.records("users")[5]
    broken["dateLastModified"] = "yesterday"
    world.add_rest_district(district)
    result = world.sync("dogwood")
    assert result.success, result.error
    assert result.endpoints["users"]["malformed"] == 1
    con = world.roster()
    try:
        users = con.execute("SELECT count(*) FROM users").fetchone()
    finally:
        con.close()
    assert users == (district.counts()["users"] - 1,)


def test_a_user_that_turns_unreadable_keeps_its_last_good_version_through_a_full_sync(world):
    district = small("elder")
    world.add_rest_district(district)
    assert world.sync("elder").success
    broken = district.records("users")[5]
    broken["dateLastModified"] = "yesterday"
    result = world.sync("elder", full=True)
    assert result.success, result.error
    con = world.roster()
    try:
        kept = con.execute("SELECT status FROM users WHERE sourced_id = ?", [broken["sourcedId"]]).fetchone()
        active = con.execute("SELECT count(*) FROM users WHERE status = 'active'").fetchone()
    finally:
        con.close()
    assert kept == ("active",)  # spared by id: a full batch does not tombstone what it could not read
    assert active == (district.counts()["users"],)


def test_mass_errors_in_one_field_quarantine_the_district_until_the_registry_ignores_the_field(world, monkeypatch):
    world.add_rest_district(small("fir"), garbage_periods=True, registry_entry={"guard": {"max_malformed": 5}})
    blocked = world.sync("fir")
    assert not blocked.success and "quarantined" in (blocked.error or "")
    assert blocked.endpoints["classes"]["malformed"] == 12
    assert "ignore_fields: {classes: [periods]}" in blocked.endpoints["classes"]["note"]
    state = quarantine_state(world.settings.lake(), "fir")
    assert state is not None and any("12 malformed records (limit 5)" in reason for reason in state["reasons"])

    world.entries[0]["ignore_fields"] = {"classes": ["periods"]}  # what the note said to do
    (world.data_dir / "districts.yaml").write_text(yaml.safe_dump({"districts": world.entries}))
    monkeypatch.setenv("ROSTER_DATA_DIR", str(world.data_dir))
    assert cli_main(["release", "fir", "--yes"]) == 0
    fixed = world.sync("fir", full=True)
    assert fixed.success, fixed.error
    assert fixed.endpoints["classes"]["malformed"] == 0 and fixed.tables["classes"] == 12
