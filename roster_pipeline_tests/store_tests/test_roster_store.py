"""The roster store: a DuckLake that each district commits to on its own, read by analysts who are never blocked.

Real files throughout: a SQLite catalog, Parquet data files, DuckDB work databases, and writer processes.
"""

from __future__ import annotations

import fcntl
import sqlite3
import subprocess
import sys
import textwrap
from datetime import UTC, datetime
from pathlib import Path

import duckdb
import pytest

from roster_pipeline import connect as connect_roster
from roster_pipeline.app.cli import main
from roster_pipeline.config.settings import Settings
from roster_pipeline.oneroster.flatten import flatten_records
from roster_pipeline.store import lakehouse
from roster_pipeline.store import warehouse as warehouse_module
from roster_pipeline.store.lake import Lake
from roster_pipeline.store.lakehouse import attach_sql, connect, load_extensions, maintain, maintenance_connection
from roster_pipeline.store.roster_export import export_roster
from roster_pipeline.store.warehouse import RosterWarehouse

T0 = datetime(2026, 9, 1, tzinfo=UTC)
REPO = Path(__file__).resolve().parents[2]


def students(district_id: str, count: int, name: str = "Ann") -> list[dict]:
    return [
        {
            "sourcedId": f"{district_id}-s{i}",
            "status": "active",
            "dateLastModified": T0,
            "role": "student",
            "givenName": name,
        }
        for i in range(count)
    ]


def land_and_publish(warehouse: RosterWarehouse, district_id: str, records: list[dict]) -> None:
    writer = warehouse.lake.new_batch("users", district_id)
    writer.append(flatten_records("users", district_id, records))
    writer.commit("full", None, T0.isoformat().replace("+00:00", "Z"))
    warehouse.publish_district(district_id)


@pytest.fixture
def warehouse(tmp_path: Path) -> RosterWarehouse:
    return RosterWarehouse(tmp_path, Lake(tmp_path / "lake"))


def active_users(paths: Settings) -> dict[str, int]:
    with connect(paths) as con:
        return dict(con.execute("SELECT district_id, count(*) FROM users GROUP BY ALL").fetchall())


def test_a_district_publish_commits_only_that_districts_rows(warehouse):
    for district_id in ("d1", "d2", "d3"):
        land_and_publish(warehouse, district_id, students(district_id, 30))
    land_and_publish(warehouse, "d2", students("d2", 31))  # one new student

    with connect(warehouse.paths) as con:
        latest = con.execute("SELECT max(snapshot_id) FROM ducklake_snapshots('roster')").fetchone()[0]
        touched = con.execute(
            "SELECT DISTINCT district_id FROM ducklake_table_changes('roster', 'main', 'users_all', ?, ?)",
            [latest, latest],
        ).fetchall()
    assert touched == [("d2",)]  # the other districts' rows were neither rewritten nor deleted
    assert active_users(warehouse.paths) == {"d1": 30, "d2": 31, "d3": 30}


def test_the_catalog_runs_in_wal_mode_so_readers_and_writers_never_wait_for_each_other(warehouse):
    land_and_publish(warehouse, "d1", students("d1", 3))
    with sqlite3.connect(warehouse.paths.roster_catalog) as catalog:
        assert catalog.execute("PRAGMA journal_mode").fetchone() == ("wal",)


def test_an_analyst_connection_is_read_only(warehouse):
    land_and_publish(warehouse, "d1", students("d1", 3))
    with connect_roster(warehouse.paths) as con:
        assert con.execute("SELECT count(*) FROM roster.students").fetchone() == (3,)
        with pytest.raises(duckdb.Error, match=r"read-only|read only"):
            con.execute("DELETE FROM users_all")
    assert active_users(warehouse.paths) == {"d1": 3}


def test_two_processes_publish_different_districts_at_the_same_time(tmp_path):
    script = textwrap.dedent(
        f"""
        import sys
        sys.path.insert(0, {str(REPO)!r})
        from pathlib import Path
        from roster_pipeline.store.lake import Lake
        from roster_pipeline.store.warehouse import RosterWarehouse
        from roster_pipeline_tests.store_tests.test_roster_store import land_and_publish, students
        root = Path({str(tmp_path)!r})
        warehouse = RosterWarehouse(root, Lake(root / "lake"))
        district = sys.argv[1]
        for round in range(4):
            land_and_publish(warehouse, district, students(district, 50 + round))
        print("done", flush=True)
        """
    )
    writers = [
        subprocess.Popen([sys.executable, "-c", script, district], stdout=subprocess.PIPE, stderr=subprocess.PIPE)
        for district in ("w1", "w2", "w3")
    ]
    outcomes = [writer.communicate(timeout=240) for writer in writers]
    assert [writer.returncode for writer in writers] == [0, 0, 0], [err.decode()[-2000:] for _, err in outcomes]
    assert active_users(Settings.from_env(tmp_path)) == {"w1": 53, "w2": 53, "w3": 53}


def test_a_district_merged_in_the_old_shared_work_database_keeps_its_state_after_the_upgrade(tmp_path):
    old = RosterWarehouse(tmp_path, Lake(tmp_path / "lake"))
    land_and_publish(old, "d1", students("d1", 5))
    # An install from before the DuckLake store kept every district in one work database.
    paths = Settings.from_env(tmp_path)
    paths.work_path("d1").rename(paths.legacy_work_path)
    for leftover in paths.roster_dir.rglob("*"):
        leftover.unlink() if leftover.is_file() else None
    paths.roster_catalog.unlink(missing_ok=True)

    # The next publish finds no batch to apply: the district's state comes from the old work database.
    old.publish_district("d1")
    assert active_users(paths) == {"d1": 5}


def test_export_writes_a_self_contained_duckdb_copy(warehouse, tmp_path):
    land_and_publish(warehouse, "d1", students("d1", 4))
    target = export_roster(warehouse.paths, tmp_path / "copy.duckdb")
    with duckdb.connect(str(target), read_only=True) as con:
        assert con.execute("SELECT count(*) FROM students").fetchone() == (4,)
        assert con.execute("SELECT count(*) FROM ops.publishes").fetchone() == (1,)
    assert not list(tmp_path.glob(".copy.duckdb.*"))


def test_the_sql_command_opens_the_duckdb_shell_on_the_roster(warehouse, monkeypatch, capfd):
    land_and_publish(warehouse, "d1", students("d1", 7))
    monkeypatch.setenv("ROSTER_DATA_DIR", str(warehouse.data_dir))
    assert main(["sql", "-csv", "-c", "SELECT count(*) AS n FROM roster.students"]) == 0
    assert capfd.readouterr().out.split() == ["n", "7"]


def test_the_sql_command_says_when_nothing_is_published(tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("ROSTER_DATA_DIR", str(tmp_path))
    assert main(["sql"]) == 1
    assert "no roster published yet" in capsys.readouterr().err


def test_a_publish_that_changed_nothing_rewrites_no_roster_table(warehouse):
    land_and_publish(warehouse, "d1", students("d1", 12))
    with connect(warehouse.paths) as con:
        before = con.execute("SELECT max(snapshot_id) FROM ducklake_snapshots('roster')").fetchone()[0]
    warehouse.publish_district("d1")  # nothing new landed: only the ops records (this publish) change
    with connect(warehouse.paths) as con:
        after = con.execute("SELECT max(snapshot_id) FROM ducklake_snapshots('roster')").fetchone()[0]
        users = con.execute(
            "SELECT count(*) FROM ducklake_table_changes('roster', 'main', 'users_all', ?, ?)", [before + 1, after]
        ).fetchone()
        publishes = con.execute("SELECT count(*) FROM ops.publishes WHERE district_id = 'd1'").fetchone()
    assert after == before + 1 and users == (0,) and publishes == (2,)


def test_maintenance_compacts_a_nights_small_commits_without_changing_what_analysts_read(warehouse):
    for count in (300, 301, 302):  # large enough to be written as files, not inlined in the catalog
        land_and_publish(warehouse, "d1", students("d1", count))
    land_and_publish(warehouse, "d2", students("d2", 300))
    files_before = data_files(warehouse.paths, "users_all")
    done = maintain(warehouse.paths)
    assert done["merged_files"] >= 1, done
    assert data_files(warehouse.paths, "users_all") < files_before
    assert active_users(warehouse.paths) == {"d1": 302, "d2": 300}


def test_spill_files_a_killed_maintenance_left_are_removed_and_reported_by_the_next(warehouse):
    land_and_publish(warehouse, "oak", students("oak", 3))
    spill = warehouse.paths.work_dir / "maintenance.tmp"
    spill_and_get_killed(":memory:", str(spill))
    left = spill_bytes(spill)
    assert left > 0
    done = maintain(warehouse.paths, compact_only=True)
    assert done["removed_leftover_spill_bytes"] == left and spill_bytes(spill) == 0
    assert "removed_leftover_spill_bytes" not in maintain(warehouse.paths, compact_only=True)  # quiet when clean


def test_a_maintenance_waits_for_a_running_one_but_not_forever(warehouse, monkeypatch):
    land_and_publish(warehouse, "oak", students("oak", 3))
    monkeypatch.setattr(lakehouse, "MAINTENANCE_LOCK_WAIT_S", 0.5)
    with open(warehouse.paths.work_dir / "maintenance.lock", "w") as running:  # another maintenance holds it
        fcntl.flock(running, fcntl.LOCK_EX)
        with pytest.raises(TimeoutError, match="another roster maintenance is still running after 0 s"):
            maintain(warehouse.paths, compact_only=True)
    assert "merged_files" in maintain(warehouse.paths, compact_only=True)  # released: the next one runs


def test_a_publish_waits_for_another_of_the_district_but_not_forever(warehouse, monkeypatch):
    land_and_publish(warehouse, "oak", students("oak", 3))
    writer = warehouse.lake.new_batch("users", "oak")
    writer.append(flatten_records("users", "oak", students("oak", 4)))
    writer.commit("delta", None, "2026-09-02T00:00:00Z")
    monkeypatch.setattr(warehouse_module, "PUBLISH_LOCK_WAIT_S", 0.5)
    # A live publish of the district that hangs (a killed one's lock would go with its process).
    with open(warehouse.paths.work_dir / "district=oak.lock", "w") as hung:
        fcntl.flock(hung, fcntl.LOCK_EX)
        hung_message = "another publish or discard of district 'oak' is still running after 0 s"
        with pytest.raises(TimeoutError, match=hung_message):
            warehouse.publish_district("oak")
        assert active_users(warehouse.paths) == {"oak": 3}  # nothing of the waiting publish reached the roster
    result = warehouse.publish_district("oak")  # released: the batch waited in the lake
    assert result.endpoints["users"].batches == 1 and active_users(warehouse.paths) == {"oak": 4}


def test_maintenance_has_twice_a_districts_memory_and_spills_into_the_work_folder(warehouse, monkeypatch):
    # An in-memory DuckDB spills into `.tmp` in the current directory unless told otherwise: a compaction run
    # under a memory limit left 52 MB there (the repository's root, in a bench).
    land_and_publish(warehouse, "d1", students("d1", 3))
    with maintenance_connection(warehouse.paths) as (con, _):
        limit, spill = con.execute(
            "SELECT current_setting('memory_limit'), current_setting('temp_directory')"
        ).fetchone()
    assert limit == "183.1 MiB"  # 192 MB, twice the work limit of 96 MB, as DuckDB shows it
    assert Path(spill) == warehouse.paths.work_dir / "maintenance.tmp"


def data_files(paths: Settings, table: str) -> int:
    with connect(paths) as con:
        return con.execute(f"SELECT count(*) FROM ducklake_list_files('roster', '{table}')").fetchone()[0]


def test_a_districts_work_database_runs_within_the_configured_memory(tmp_path, monkeypatch):
    monkeypatch.setenv("ROSTER_WORK_MEMORY_LIMIT", "64MB")
    warehouse = RosterWarehouse(tmp_path, Lake(tmp_path / "lake"))
    land_and_publish(warehouse, "oak", students("oak", 3))
    with warehouse._work_connection("oak") as con:
        limit = con.execute("SELECT current_setting('memory_limit')").fetchone()
    assert limit == ("61.0 MiB",)  # 64 MB as DuckDB shows it
    assert active_users(warehouse.paths) == {"oak": 3}


def test_a_district_that_outgrows_the_work_memory_limit_is_merged_again_under_four_times_as_much(tmp_path, monkeypatch):
    monkeypatch.setenv("ROSTER_WORK_MEMORY_LIMIT", "16MB")  # 3,000 students need more (32 MB is enough)
    warehouse = RosterWarehouse(tmp_path, Lake(tmp_path / "lake"))
    records = [{**record, "email": f"{record['sourcedId']}@mail.example.com"} for record in students("oak", 3000)]
    writer = warehouse.lake.new_batch("users", "oak")
    writer.append(flatten_records("users", "oak", records))
    writer.commit("full", None, T0.isoformat().replace("+00:00", "Z"))

    result = warehouse.publish_district("oak")

    assert result.memory_limit_raised_to == "64MB"
    assert active_users(warehouse.paths) == {"oak": 3000}
    assert result.row_counts["students"] == 3000 and result.batches == 1  # the first attempt left nothing applied
    monkeypatch.setenv("ROSTER_WORK_MEMORY_LIMIT", "128MB")
    roomier = RosterWarehouse(tmp_path, Lake(tmp_path / "lake"))
    land_and_publish(roomier, "elm", students("elm", 3))
    assert roomier.publish_district("elm").memory_limit_raised_to == ""  # within the limit: no second attempt


def test_a_district_too_large_even_for_the_raised_limit_fails_and_publishes_nothing(tmp_path, monkeypatch):
    monkeypatch.setenv("ROSTER_WORK_MEMORY_LIMIT", "2MB")
    warehouse = RosterWarehouse(tmp_path, Lake(tmp_path / "lake"))
    with pytest.raises(duckdb.OutOfMemoryException):
        land_and_publish(warehouse, "oak", students("oak", 3000))
    monkeypatch.setenv("ROSTER_WORK_MEMORY_LIMIT", "128MB")
    retried = RosterWarehouse(tmp_path, Lake(tmp_path / "lake"))
    assert retried.publish_district("oak").batches == 1  # the batch waited in the lake
    assert active_users(retried.paths) == {"oak": 3000}


SPILLING_MERGE = """
import sys, time, duckdb
con = duckdb.connect(sys.argv[1])
con.execute("SET memory_limit = '24MB'; SET threads = 1")
if len(sys.argv) > 2:
    con.execute("SET temp_directory = ?", [sys.argv[2]])
con.execute("SELECT * FROM range(400000) r(i) ORDER BY md5(i::VARCHAR) || md5((i + 1)::VARCHAR)").fetchone()
print("spilled", flush=True)
time.sleep(60)
"""


def spill_and_get_killed(*args: str) -> None:
    """Run a DuckDB query that spills, in a process killed while it holds its spill files."""
    killed = subprocess.Popen([sys.executable, "-c", SPILLING_MERGE, *args], stdout=subprocess.PIPE, text=True)
    try:
        assert killed.stdout is not None and killed.stdout.readline().strip() == "spilled"
    finally:
        killed.kill()
        killed.wait()


def spill_bytes(folder: Path) -> int:
    return sum(f.stat().st_size for f in folder.glob("duckdb_temp_storage*.tmp"))


def test_spill_files_a_killed_merge_left_are_removed_by_the_next_publish(warehouse):
    land_and_publish(warehouse, "oak", students("oak", 3))
    work = warehouse.work_path("oak")
    spill_and_get_killed(str(work))
    spill = work.with_name(work.name + ".tmp")
    left = spill_bytes(spill)
    assert left > 0  # DuckDB removes them on close, not after a kill

    result = warehouse.publish_district("oak")

    assert result.leftover_spill_removed == left
    assert not list(spill.glob("duckdb_temp_storage*.tmp"))
    assert active_users(warehouse.paths) == {"oak": 3}


def test_a_districts_work_database_skips_fsst_and_merges_on_one_thread(warehouse):
    # Choosing FSST for every string column was ~40% of a large district's commit; one DuckDB thread merged faster
    # than two on a 2-core host, with a lower peak (warehouse.py).
    records = [
        {**record, "email": f"{record['sourcedId']}.guardian@mail.example.com"} for record in students("oak", 5000)
    ]
    land_and_publish(warehouse, "oak", records)
    with warehouse._work_connection("oak") as con:
        threads = con.execute("SELECT current_setting('threads')").fetchone()
        methods = con.execute(
            "SELECT DISTINCT compression FROM pragma_storage_info('users_all') WHERE column_name = 'email'"
        ).fetchall()
    assert threads == (1,)
    assert methods and ("FSST",) not in methods
    assert active_users(warehouse.paths) == {"oak": 5000}


def test_a_publish_adds_the_tables_and_columns_an_older_roster_lacks(warehouse):
    land_and_publish(warehouse, "d1", students("d1", 5))
    with duckdb.connect() as con:  # the roster as an older version left it: a column and a table missing
        load_extensions(con)
        con.execute(attach_sql(warehouse.paths, read_only=False))
        con.execute("ALTER TABLE roster.main.users_all DROP COLUMN pronouns")
        con.execute("DROP TABLE roster.ops.publishes")
        schema_before = con.execute("SELECT max(schema_version) FROM ducklake_snapshots('roster')").fetchone()

    land_and_publish(warehouse, "d1", [{**record, "pronouns": "they/them"} for record in students("d1", 6)])
    land_and_publish(warehouse, "d1", students("d1", 7))  # an up-to-date roster: no schema change at all

    with connect(warehouse.paths) as con:
        pronouns = con.execute("SELECT count(*) FROM users_all WHERE pronouns = 'they/them'").fetchone()
        publishes = con.execute("SELECT count(*) FROM ops.publishes").fetchone()
        versions = con.execute(
            "SELECT DISTINCT schema_version FROM ducklake_snapshots('roster') WHERE schema_version > ?", schema_before
        ).fetchall()
    assert pronouns == (0,)  # the column is back, and the newest publish's rows fill it
    assert publishes == (3,)  # the table is back, with every publish the work database recorded
    assert len(versions) == 1  # one schema change (the second publish's), none by the third
    assert active_users(warehouse.paths) == {"d1": 7}


def test_a_publish_writes_row_groups_small_enough_not_to_hold_a_large_districts_table_whole(warehouse):
    # DuckDB's Parquet writer holds a row group of each table in memory until it is written.
    land_and_publish(warehouse, "d1", students("d1", lakehouse.PARQUET_ROW_GROUP_ROWS + 100))
    with connect(warehouse.paths) as con:
        listed = con.execute("SELECT data_file FROM ducklake_list_files('roster', 'users_all')").fetchall()
        files = [row[0] for row in listed]
        groups = con.execute("SELECT row_group_num_rows FROM parquet_metadata(?) GROUP BY ALL", [files]).fetchall()
    assert len(files) == 1 and sorted(groups) == [(100,), (lakehouse.PARQUET_ROW_GROUP_ROWS,)]


def test_a_roster_made_with_other_writing_options_gets_ours_at_its_next_publish(warehouse):
    land_and_publish(warehouse, "d1", students("d1", 3))
    with duckdb.connect() as con:
        load_extensions(con)
        con.execute(attach_sql(warehouse.paths, read_only=False))
        con.execute("CALL roster.set_option('parquet_row_group_size', 122880)")
    land_and_publish(warehouse, "d2", students("d2", 3))
    with connect(warehouse.paths) as con:
        option = con.execute(
            "SELECT value FROM ducklake_options('roster') WHERE option_name = 'parquet_row_group_size'"
        ).fetchall()
    assert option == [(str(lakehouse.PARQUET_ROW_GROUP_ROWS),)]
