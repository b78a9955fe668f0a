"""The same synthetic district synced over REST and as CSV bundles gives identical roster tables."""

from __future__ import annotations

import dagster as dg
import pytest
import yaml

from roster_pipeline.sandbox.csv_export import write_csv_bundle
from roster_pipeline.sandbox.generator import DistrictSpec, generate_district
from roster_pipeline.sandbox.server import SandboxServer
from roster_pipeline_tests.ingest_tests.conftest import set_mtime
from roster_pipeline_tests.pipeline_fixtures import PipelineWorld, expected_counts, snapshot


@pytest.fixture
def worlds(tmp_path, monkeypatch):
    """Two data folders sharing a sandbox server and a Dagster instance: one syncs REST, the other CSV."""
    with SandboxServer(token_lifetime_s=3600) as server, dg.instance_for_test() as instance:
        made = []
        for name in ("rest", "csv"):
            data_dir = tmp_path / name
            data_dir.mkdir()
            made.append(PipelineWorld(server, data_dir, instance, monkeypatch, []))
        yield made


def add_csv_district(world: PipelineWorld, district_id: str, drop) -> None:
    world.entries.append(
        {"id": district_id, "name": district_id, "provider": "generic", "source": {"kind": "csv", "path": str(drop)}}
    )
    (world.data_dir / "districts.yaml").write_text(yaml.safe_dump({"districts": world.entries}))


def assert_same_roster(rest: PipelineWorld, csv: PipelineWorld, district) -> set[str]:
    """Sync both worlds; every table (derived ones too) must have the same rows. Returns the fetch modes used."""
    results = [world.sync(district.district_id) for world in (rest, csv)]
    for result in results:
        assert result.success, result.error
    expected = expected_counts(district)
    assert {table: results[0].tables[table] for table in expected} == expected
    assert results[1].tables == results[0].tables
    assert snapshot(csv, "oak") == snapshot(rest, "oak")
    return {values["mode"] for result in results for values in result.endpoints.values()}


def test_rest_and_csv_syncs_of_one_district_give_identical_roster_tables(worlds, tmp_path):
    rest, csv = worlds
    district = generate_district(DistrictSpec("oak", seed=3, schools=2, students_per_school=20))
    drop = tmp_path / "drop"
    rest.add_rest_district(district)
    add_csv_district(csv, "oak", drop)
    set_mtime(write_csv_bundle(district, drop / "oak-bulk.zip", as_zip=True), 1_000)

    assert_same_roster(rest, csv, district)

    # A day of SIS changes: a renamed student, a tombstoned enrollment and a tombstoned guardian.
    students = [u for u in district.records("users") if u["role"] == "student"]
    guardian = next(u for u in district.records("users") if u["role"] in ("parent", "guardian", "relative"))
    district.upsert("users", {**students[0], "givenName": "Nova"})
    district.mark_tobedeleted("enrollments", district.records("enrollments")[0]["sourcedId"])
    district.mark_tobedeleted("users", guardian["sourcedId"])
    set_mtime(write_csv_bundle(district, drop / "oak-delta", since=district.spec.base_time), 2_000)

    modes = assert_same_roster(rest, csv, district)
    assert modes == {"delta"}
