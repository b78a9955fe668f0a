"""`roster-pipeline check` probes a district like a careful engineer, and the fetch uses what it found."""

from __future__ import annotations

import pytest

from roster_pipeline.app.cli import main
from roster_pipeline.ingest.endpoint_fetch import fetch_endpoint
from roster_pipeline.ingest.probe import (
    format_report,
    load_capabilities,
    probe_district,
    store_capabilities,
)
from roster_pipeline.oneroster import OneRosterError
from roster_pipeline.sandbox.generator import DistrictSpec, generate_district
from roster_pipeline.store.lake import Lake


def small(district_id: str, seed: int = 6):
    return generate_district(DistrictSpec(district_id, seed=seed, schools=2, students_per_school=15))


def test_a_well_behaved_district_shows_every_capability(world):
    world.add_rest_district(small("elm"))
    report = probe_district(world.settings.registry().district("elm"))
    assert report.token_ok and report.usable and not report.problems
    for capability in report.endpoints.values():
        assert capability.offered and capability.filter_works, capability
        assert capability.total_count_header and capability.link_header and capability.page_size_honoured


def test_a_broken_filter_and_a_page_cap_are_found_and_the_fetch_falls_back_to_full_syncs(world):
    world.add_rest_district(small("hazel"), ignore_filter=True, max_page_size=10, header_mode="link")
    district = world.settings.registry().district("hazel")
    report = probe_district(district)
    users = report.endpoints["users"]
    assert users.filter_works is False and any("filter is ignored" in note for note in users.notes)
    assert users.page_size_honoured is False and (users.page_size_asked, users.page_size_served) == (50, 10)
    assert users.total_count_header is False and users.link_header is True
    lake = Lake(world.data_dir / "lake")
    store_capabilities(lake, report)
    assert load_capabilities(lake, "hazel") == report
    fetch_endpoint(district, "users", lake, run_id="r1")
    again = fetch_endpoint(district, "users", lake, run_id="r2")
    assert again.mode == "full" and "dateLastModified filter does not work on users" in again.mode_reason


def test_a_working_filter_keeps_delta_syncs_after_the_check(world):
    world.add_rest_district(small("larch"))
    store_capabilities(Lake(world.data_dir / "lake"), probe_district(world.settings.registry().district("larch")))
    assert world.sync("larch").success
    again = world.sync("larch")
    assert again.success, again.error
    assert {values["mode"] for values in again.endpoints.values()} == {"delta"}


def test_endpoints_the_check_found_missing_are_skipped_instead_of_failing_the_sync(world):
    world.add_rest_district(small("rowan"), offered={"orgs", "users", "academicSessions"})
    district = world.settings.registry().district("rowan")
    lake = Lake(world.data_dir / "lake")
    with pytest.raises(OneRosterError, match="HTTP 404"):
        fetch_endpoint(district, "classes", lake, run_id="r1")
    report = probe_district(district)
    assert not report.usable and any("required endpoint classes" in p for p in report.problems)
    store_capabilities(lake, report)
    outcome = fetch_endpoint(district, "classes", lake, run_id="r2")
    assert outcome.offered is False and "capability check" in (outcome.note or "")


def test_the_check_command_prints_and_stores_the_report_of_a_12_district(world, monkeypatch, capsys):
    world.add_rest_district(small("yew"), version="1.2")
    monkeypatch.setenv("ROSTER_DATA_DIR", str(world.data_dir))
    monkeypatch.setenv("ROSTER_DISTRICTS_FILE", str(world.data_dir / "districts.yaml"))
    assert main(["check", "yew"]) == 0
    out = capsys.readouterr().out
    assert "provider generic — OneRoster 1.2" in out and "roster.readonly" in out
    assert "demographics" in out and "stored " in out
    stored = Lake(world.data_dir / "lake").state("yew").capabilities.read()
    assert stored["endpoints"]["users"]["filter_works"] is True and stored["version"] == "1.2"
    assert main(["check", "nope"]) == 2


def test_a_refused_oauth1_signature_stops_the_probe_and_names_the_credential_variables(world, monkeypatch):
    world.add_rest_district(small("ash"), "oauth1")
    monkeypatch.setenv("ASH_SECRET", "not-the-secret")
    report = probe_district(world.settings.registry().district("ash"))
    assert not report.token_ok and not report.usable and report.endpoints == {}
    [problem] = report.problems
    assert problem.startswith("signed request refused: district 'ash', endpoint academicSessions")
    assert "HTTP 401" in problem and "check ASH_ID / ASH_SECRET (the registry's credential variables)" in problem
    assert "not-the-secret" not in format_report(report) and "FAILED" in format_report(report)


def test_a_refused_token_request_names_the_credential_variables(world, monkeypatch):
    world.add_rest_district(small("ash"))
    monkeypatch.setenv("ASH_SECRET", "not-the-secret")
    report = probe_district(world.settings.registry().district("ash"))
    [problem] = report.problems
    assert problem.startswith("token: ") and "check ASH_ID / ASH_SECRET" in problem
    assert "not-the-secret" not in problem
