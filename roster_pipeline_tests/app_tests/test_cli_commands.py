"""`roster-pipeline sync`, `status` and `validate` as an operator runs them: exit codes and the lines they print."""

from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path

import dagster as dg
import pytest
import yaml

from roster_pipeline.app.cli import main
from roster_pipeline.defs import roster_maintenance
from roster_pipeline.defs.run_recovery import PID_TAG
from roster_pipeline.sandbox.generator import SyntheticDistrict
from roster_pipeline_tests.pipeline_fixtures import PipelineWorld, add_abandoned_run, expected_counts


@pytest.fixture
def cli_world(world: PipelineWorld, tmp_path: Path) -> PipelineWorld:
    """The world's data folder and registry as the command finds them: through the environment."""
    world.monkeypatch.setenv("ROSTER_DATA_DIR", str(world.data_dir))
    world.monkeypatch.setenv("ROSTER_DISTRICTS_FILE", str(world.data_dir / "districts.yaml"))
    world.monkeypatch.setenv("DAGSTER_HOME", str(tmp_path / "dagster_home"))  # the command creates it
    return world


@pytest.fixture
def oak(cli_world: PipelineWorld, small_district: Callable[..., SyntheticDistrict]) -> SyntheticDistrict:
    """District 'oak', served by the sandbox and registered, not synced yet."""
    district = small_district("oak")
    cli_world.add_rest_district(district)
    return district


def row_of(output: str, district_id: str) -> str:
    """The line of a table that starts with the district's id."""
    rows = [line for line in output.splitlines() if line.startswith(f"{district_id} ")]
    assert len(rows) == 1, output
    return rows[0]


def test_sync_of_a_served_district_exits_0_and_prints_its_published_rows(
    cli_world: PipelineWorld, oak: SyntheticDistrict, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["sync", "oak"]) == 0

    out = capsys.readouterr().out
    assert "Sync of oak" in out
    assert "published" in row_of(out, "oak") and "passed" in row_of(out, "oak")
    assert "Rows published" in out
    assert "Traceback" not in out and "error" not in out.lower()
    with cli_world.roster() as con:
        students = con.execute("SELECT count(*) FROM students WHERE district_id = 'oak'").fetchone()
    assert students == (expected_counts(oak)["students"],)


def test_sync_of_an_unknown_district_exits_2_naming_the_known_ones(
    cli_world: PipelineWorld, oak: SyntheticDistrict, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["sync", "nosuch"]) == 2

    err = capsys.readouterr().err
    assert "no district 'nosuch'" in err and "known: oak" in err
    assert not cli_world.published.exists()


def test_sync_refused_by_the_source_exits_1_naming_the_credential_variables_not_the_secret(
    cli_world: PipelineWorld, oak: SyntheticDistrict, capsys: pytest.CaptureFixture[str]
) -> None:
    cli_world.monkeypatch.setenv("OAK_SECRET", "not-the-real-secret")

    assert main(["sync", "oak"]) == 1

    captured = capsys.readouterr()
    output = captured.out + captured.err
    assert "not published" in row_of(captured.out, "oak")
    assert "HTTP 401" in output and "OAK_SECRET" in output
    assert "not-the-real-secret" not in output


def test_status_after_a_sync_shows_the_district_ok_and_exits_0(
    cli_world: PipelineWorld, oak: SyntheticDistrict, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["sync", "oak"]) == 0
    capsys.readouterr()

    assert main(["status"]) == 0

    out = capsys.readouterr().out
    assert out.splitlines()[0].split()[:2] == ["district", "enabled"]
    row = row_of(out, "oak")
    assert row.split()[1] == "True" and row.endswith(" ok") and "never" not in row


def test_status_exits_1_while_an_enabled_district_has_never_published(
    cli_world: PipelineWorld, oak: SyntheticDistrict, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["status"]) == 1

    row = row_of(capsys.readouterr().out, "oak")
    assert row.split()[1:3] == ["True", "never"] and row.endswith(" STALE")


def test_status_counts_a_disabled_district_that_never_published_as_no_problem(
    cli_world: PipelineWorld,
    small_district: Callable[..., SyntheticDistrict],
    capsys: pytest.CaptureFixture[str],
) -> None:
    cli_world.add_rest_district(small_district("ash"), registry_entry={"enabled": False})

    assert main(["status"]) == 0

    assert row_of(capsys.readouterr().out, "ash").endswith(" disabled")


def test_validate_lists_each_district_and_exits_0(
    cli_world: PipelineWorld, oak: SyntheticDistrict, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["validate"]) == 0

    captured = capsys.readouterr()
    assert row_of(captured.out, "oak").split() == ["oak", "generic", "rest", "enabled=True"]
    assert captured.err == ""


def test_validate_warns_of_an_unset_secret_variable_and_still_exits_0(
    cli_world: PipelineWorld, oak: SyntheticDistrict, capsys: pytest.CaptureFixture[str]
) -> None:
    cli_world.monkeypatch.delenv("OAK_SECRET")

    assert main(["validate"]) == 0

    err = capsys.readouterr().err
    assert "warning: district 'oak': environment variable OAK_SECRET is not set" in err
    assert "OAK_ID" not in err


def test_validate_exits_2_listing_every_problem_of_an_invalid_registry(
    cli_world: PipelineWorld, oak: SyntheticDistrict, capsys: pytest.CaptureFixture[str]
) -> None:
    registry = cli_world.data_dir / "districts.yaml"
    document = yaml.safe_load(registry.read_text())
    document["districts"].append(document["districts"][0])
    document["timezone"] = "Mars/Olympus_Mons"
    registry.write_text(yaml.safe_dump(document))

    assert main(["validate"]) == 2

    captured = capsys.readouterr()
    assert f"{registry}: 2 problem(s) in the district registry" in captured.err
    assert "district 'oak': id is used twice" in captured.err
    assert "timezone: 'Mars/Olympus_Mons' is not an IANA time zone name" in captured.err
    assert "Traceback" not in captured.err and captured.out == ""


def test_validate_exits_2_when_the_registry_file_is_missing(
    cli_world: PipelineWorld, capsys: pytest.CaptureFixture[str]
) -> None:
    missing = cli_world.data_dir / "nowhere.yaml"
    cli_world.monkeypatch.setenv("ROSTER_DISTRICTS_FILE", str(missing))

    assert main(["validate"]) == 2

    err = capsys.readouterr().err
    assert f"{missing}: 1 problem(s)" in err and "file not found" in err


def test_syncs_run_without_the_daemon_compact_the_roster_when_its_sensor_would_have(
    cli_world: PipelineWorld, oak: SyntheticDistrict, capsys: pytest.CaptureFixture[str]
) -> None:
    cli_world.monkeypatch.setattr(roster_maintenance, "COMPACT_AFTER_PUBLISHES", 3)
    for _ in range(2):
        assert main(["sync", "oak"]) == 0
    assert "compacting the roster" not in capsys.readouterr().out

    assert main(["sync", "oak"]) == 0  # the third publish since the roster was (never) compacted

    captured = capsys.readouterr()
    assert "compacting the roster" in captured.out
    assert "DEBUG" not in captured.err and "RUN_START" not in captured.err  # quiet as the sync itself, for cron
    instance = dg.DagsterInstance.get()
    (compaction,) = instance.get_run_records(dg.RunsFilter(job_name="roster_maintenance"))
    assert compaction.dagster_run.status == dg.DagsterRunStatus.SUCCESS
    (done,) = instance.fetch_materializations(roster_maintenance.MAINTENANCE_KEY, limit=1).records
    assert "merged_files" in done.asset_materialization.metadata
    sensor = roster_maintenance.roster_compaction_sensor(dg.build_sensor_context(instance=instance))
    assert isinstance(sensor, dg.SkipReason)  # the daemon's sensor counts from this compaction too
    assert main(["sync", "oak"]) == 0
    assert "compacting the roster" not in capsys.readouterr().out


def test_a_compaction_left_running_by_a_killed_sync_is_failed_by_the_next_and_compaction_goes_on(
    cli_world: PipelineWorld, oak: SyntheticDistrict, capsys: pytest.CaptureFixture[str]
) -> None:
    cli_world.monkeypatch.setattr(roster_maintenance, "COMPACT_AFTER_PUBLISHES", 2)
    assert main(["sync", "oak"]) == 0
    instance = dg.DagsterInstance.get()
    abandoned = add_abandoned_run(instance, "roster_maintenance")  # named as a sync's compaction run is

    assert main(["sync", "oak"]) == 0  # its recovery fails the abandoned run first
    assert main(["sync", "oak"]) == 0
    assert main(["sync", "oak"]) == 0  # two publishes since that failure: compacted again

    out = capsys.readouterr().out
    assert f"run {abandoned.run_id}" in out and "marked failed" in out
    assert "compacting the roster" in out
    runs = instance.get_run_records(dg.RunsFilter(job_name="roster_maintenance"))
    assert [r.dagster_run.status for r in runs] == [dg.DagsterRunStatus.SUCCESS, dg.DagsterRunStatus.FAILURE]
    assert runs[0].dagster_run.tags[PID_TAG].startswith(f"{os.getpid()}:")
