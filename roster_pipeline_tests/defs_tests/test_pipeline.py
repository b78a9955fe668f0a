"""End to end over the sandbox: fetch assets → Parquet lake → DuckDB roster, full and delta."""

from __future__ import annotations

import subprocess
import sys
import textwrap

import duckdb

from roster_pipeline.sandbox.generator import DistrictSpec, generate_district
from roster_pipeline.store.catalogue import DERIVED_TABLES, ROSTER_TABLES
from roster_pipeline_tests.pipeline_fixtures import PipelineWorld, base_tables, expected_counts, snapshot


def small(district_id: str, seed: int = 3):
    return generate_district(DistrictSpec(district_id, seed=seed, schools=2, students_per_school=25))


def apply_edits(district) -> dict[str, str]:
    """A new student, a changed guardian link, a deleted enrollment and a tobedeleted user."""
    students = [u for u in district.records("users") if u["role"] == "student"]
    guardians = [u for u in district.records("users") if u["role"] in ("parent", "guardian", "relative")]
    school_ref = students[0]["orgs"][0]
    new_student = {
        **students[0],
        "sourcedId": "student-new-1",
        "username": "new.student",
        "givenName": "Nova",
        "agents": [{"href": "", "sourcedId": guardians[0]["sourcedId"], "type": "user"}],
        "orgs": [school_ref],
    }
    district.upsert("users", new_student)
    changed = students[1]
    other_guardian = next(g for g in guardians if g["sourcedId"] not in {a["sourcedId"] for a in changed["agents"]})
    district.upsert(
        "users", {**changed, "agents": [{"href": "", "sourcedId": other_guardian["sourcedId"], "type": "user"}]}
    )
    enrollment = district.records("enrollments")[0]["sourcedId"]
    district.mark_tobedeleted("enrollments", enrollment)
    gone = students[2]["sourcedId"]
    district.mark_tobedeleted("users", gone)
    return {"new": "student-new-1", "changed": changed["sourcedId"], "enrollment": enrollment, "gone": gone}


def test_full_sync_gives_exact_row_counts_in_every_table(world):
    district = small("oak")
    world.add_rest_district(district, "oauth2")
    result = world.sync("oak")
    assert result.success, result.error
    assert {e: v["mode"] for e, v in result.endpoints.items()} == dict.fromkeys(result.endpoints, "full")
    assert base_tables(result) == expected_counts(district)
    with world.roster() as con:
        runs = con.execute("SELECT endpoint, mode, outcome, records FROM ops.sync_runs").fetchall()
        assert {(r[0], r[1], r[2]) for r in runs} == {(e, "full", "success") for e in district.counts()}
        users_run = next(r for r in runs if r[0] == "users")
        assert users_run[3] == len(district.records("users"))
        assert con.execute("SELECT count(*) FROM ops.watermarks WHERE district_id = 'oak'").fetchone() == (7,)
        # DESIGN: analysts name tables with or without the file's catalog; no schema named `roster` exists.
        assert con.execute("SELECT count(*) FROM roster.students").fetchone() == (
            expected_counts(district)["students"],
        )
        schemas = {r[0] for r in con.execute("SELECT schema_name FROM information_schema.schemata").fetchall()}
        assert "roster" not in schemas


def test_every_roster_and_derived_asset_reports_the_districts_rows_in_the_roster(world):
    """Each materialisation's row count, the derived views' among them."""
    world.add_rest_district(small("oak"), "oauth2")
    result = world.sync("oak")
    assert result.success, result.error
    with world.roster() as con:
        published = {
            table: con.execute(f"SELECT count(*) FROM {table} WHERE district_id = 'oak'").fetchone()[0]
            for table in (*ROSTER_TABLES, *DERIVED_TABLES)
        }
    assert all(published[table] for table in DERIVED_TABLES)
    assert result.tables == published


def test_oauth1_district_syncs_like_oauth2(world):
    district = small("elm", seed=5)
    world.add_rest_district(district, "oauth1")
    result = world.sync("elm")
    assert result.success, result.error
    assert base_tables(result) == expected_counts(district)


def test_delta_after_edits_equals_fresh_full_sync(world, tmp_path):
    district = small("oak")
    world.add_rest_district(district, "oauth2")
    assert world.sync("oak").success
    edits = apply_edits(district)
    delta = world.sync("oak")
    assert delta.success, delta.error
    assert {v["mode"] for v in delta.endpoints.values()} == {"delta"}
    assert delta.endpoints["users"]["records"] < len(district.records("users"))
    after_delta = snapshot(world, "oak")

    fresh_dir = tmp_path / "fresh"
    fresh_dir.mkdir()
    (fresh_dir / "districts.yaml").write_text((world.data_dir / "districts.yaml").read_text())
    fresh = PipelineWorld(world.server, fresh_dir, world.instance, world.monkeypatch, list(world.entries))
    assert fresh.sync("oak", full=True).success
    assert after_delta == snapshot(fresh, "oak")

    with world.roster() as con:
        assert con.execute("SELECT count(*) FROM students WHERE sourced_id = ?", [edits["new"]]).fetchone() == (1,)
        assert con.execute("SELECT is_deleted FROM users_all WHERE sourced_id = ?", [edits["gone"]]).fetchone() == (
            True,
        )
        assert con.execute(
            "SELECT count(*) FROM enrollments WHERE sourced_id = ?", [edits["enrollment"]]
        ).fetchone() == (0,)
        agents = con.execute(
            "SELECT agent_sourced_id FROM user_agents WHERE user_sourced_id = ?", [edits["changed"]]
        ).fetchall()
        assert len(agents) == 1


def test_full_sync_tombstones_records_the_server_no_longer_has(world):
    district = small("oak")
    world.add_rest_district(district, "oauth2")
    assert world.sync("oak").success
    removed = district.records("enrollments")[0]["sourcedId"]
    district.remove("enrollments", removed)
    delta = world.sync("oak")
    with world.roster() as con:
        assert con.execute("SELECT count(*) FROM enrollments WHERE sourced_id = ?", [removed]).fetchone() == (1,)
    assert delta.success
    full = world.sync("oak", full=True)
    assert full.success
    with world.roster() as con:
        row = con.execute("SELECT status, is_deleted FROM enrollments_all WHERE sourced_id = ?", [removed]).fetchone()
        assert row == ("tobedeleted", True)
    assert base_tables(full) == expected_counts(district)


def test_fetch_failing_half_way_leaves_published_tables_unchanged_and_next_run_recovers(world):
    district = small("oak")
    world.add_rest_district(district, "oauth2")
    assert world.sync("oak").success
    before = snapshot(world, "oak")
    apply_edits(district)
    world.server.faults("oak").fail_endpoint("enrollments", status=400, after_offset=0)
    failed = world.sync("oak", full=True)
    assert not failed.success
    assert "enrollments" in failed.error and "district 'oak'" in failed.error
    assert "oak-secret" not in failed.error
    assert snapshot(world, "oak") == before
    with duckdb.connect(str(world.paths.work_path("oak")), read_only=True) as con:
        assert con.execute("SELECT count(*) FROM users WHERE sourced_id = 'student-new-1'").fetchone() == (0,)

    world.server.faults("oak").clear()
    recovered = world.sync("oak")
    assert recovered.success, recovered.error
    assert base_tables(recovered) == expected_counts(district)
    with world.roster() as con:
        outcomes = con.execute(
            "SELECT outcome, count(*) FROM ops.sync_runs WHERE endpoint = 'enrollments' GROUP BY ALL ORDER BY 1"
        ).fetchall()
        assert outcomes == [("failed", 1), ("success", 2)]


def test_two_districts_never_see_each_others_rows(world):
    oak, elm = small("oak", seed=1), small("elm", seed=2)
    world.add_rest_district(oak, "oauth2")
    world.add_rest_district(elm, "oauth1")
    assert world.sync("oak").success
    assert world.sync("elm").success
    for district in (oak, elm):
        ids = {u["sourcedId"] for u in district.records("users")}
        with world.roster() as con:
            published = {
                r[0]
                for r in con.execute(
                    "SELECT sourced_id FROM users_all WHERE district_id = ?", [district.district_id]
                ).fetchall()
            }
        assert published == ids
    assert snapshot(world, "oak")["students"] != snapshot(world, "elm")["students"]
    assert expected_counts(oak) == base_tables(world.sync("oak"))


def test_analyst_reading_the_roster_does_not_block_a_sync_and_keeps_a_consistent_snapshot(world):
    district = small("oak")
    world.add_rest_district(district, "oauth2")
    assert world.sync("oak").success
    new_student = "SELECT count(*) FROM students WHERE sourced_id = 'student-new-1'"
    reader = subprocess.Popen(
        [
            sys.executable,
            "-c",
            textwrap.dedent(
                f"""
                import sys
                from roster_pipeline import connect
                from roster_pipeline.config.settings import Settings
                con = connect(Settings.from_env({str(world.data_dir)!r}))
                con.execute("BEGIN TRANSACTION")
                print(con.execute("select count(*) from students").fetchone()[0], flush=True)
                sys.stdin.readline()
                print(con.execute({new_student!r}).fetchone()[0], flush=True)
                con.execute("COMMIT")
                print(con.execute({new_student!r}).fetchone()[0], flush=True)
                """
            ),
        ],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert reader.stdout is not None and reader.stdin is not None
        students_before = int(reader.stdout.readline())
        apply_edits(district)
        result = world.sync("oak")  # publishes while the reader's transaction is open
        assert result.success, result.error
        reader.stdin.write("\n")
        reader.stdin.flush()
        assert int(reader.stdout.readline()) == 0  # inside its transaction the reader's snapshot is stable
        assert int(reader.stdout.readline()) == 1  # a new transaction sees the publish
    finally:
        reader.wait(timeout=60)
    with world.roster() as con:
        assert con.execute("SELECT count(*) FROM students").fetchone() == (students_before,)  # +1 new, -1 gone
        assert con.execute(new_student).fetchone() == (1,)


def test_dagster_definitions_validate():
    completed = subprocess.run(
        [sys.executable, "-m", "dagster", "definitions", "validate", "-m", "roster_pipeline.definitions"],
        capture_output=True,
        text=True,
        timeout=180,
    )
    assert completed.returncode == 0, completed.stdout + completed.stderr


def test_no_secret_or_token_reaches_logs_metadata_or_written_files(world):
    district = small("oak")
    world.add_rest_district(district, "oauth2")
    world.add_rest_district(small("elm", seed=5), "oauth1")
    assert world.sync("oak").success
    assert world.sync("elm").success
    world.server.faults("oak").fail_endpoint("users", status=401, after_offset=0)
    assert not world.sync("oak").success
    secrets = ["oak-secret", "elm-secret"]
    for run in world.instance.get_runs():  # every event: logs, materialization metadata, failures
        logs = "\n".join(str(entry) for entry in world.instance.all_logs(run.run_id))
        assert logs and not any(s in logs for s in secrets)
        assert "Bearer " not in logs
    for path in world.data_dir.rglob("*"):
        if path.is_file() and path.suffix != ".yaml":  # districts.yaml names env vars only
            content = path.read_bytes()
            assert not any(s.encode() in content for s in secrets), path


def test_watermark_is_the_sync_start_as_the_server_saw_it_when_its_clock_is_behind():
    from datetime import UTC, datetime

    from roster_pipeline.ingest.endpoint_fetch import next_watermark

    behind = datetime(2026, 11, 23, 9, 59, 58, tzinfo=UTC)
    assert next_watermark("2026-11-23T10:00:00.250Z", behind) == "2026-11-23T09:59:58.000Z"
    ahead = datetime(2026, 11, 23, 10, 0, 5, tzinfo=UTC)
    assert next_watermark("2026-11-23T10:00:00.250Z", ahead) == "2026-11-23T10:00:00.250Z"
    assert next_watermark("2026-11-23T10:00:00.250Z", None) == "2026-11-23T10:00:00.250Z"


def test_pages_carry_the_server_clock_from_the_date_header(world):
    from roster_pipeline.oneroster import OAuth2ClientCredentials, OneRosterClient

    district = small("oak")
    world.add_rest_district(district, "oauth2")
    auth = OAuth2ClientCredentials(world.server.token_url("oak"), "oak-id", "oak-secret")
    with OneRosterClient(world.server.base_url("oak"), auth) as client:
        page = next(iter(client.iter_pages("orgs")))
    assert page.server_date is not None and page.server_date.tzinfo is not None


def test_a_wrong_secret_fails_naming_the_district_endpoint_and_credential_variables(world):
    world.add_rest_district(small("oak"), "oauth2")
    world.monkeypatch.setenv("OAK_SECRET", "not-the-real-secret")
    result = world.sync("oak")
    assert not result.success
    assert "district 'oak', endpoint" in result.error and "HTTP 401" in result.error
    assert "check OAK_ID / OAK_SECRET" in result.error
    assert "not-the-real-secret" not in result.error


def test_a_server_date_far_behind_our_clock_is_not_believed():
    from datetime import UTC, datetime

    from roster_pipeline.ingest.endpoint_fetch import next_watermark

    stale_proxy = datetime(2026, 11, 16, 10, 0, tzinfo=UTC)  # a week behind
    assert next_watermark("2026-11-23T10:00:00.250Z", stale_proxy) == "2026-11-23T10:00:00.250Z"
