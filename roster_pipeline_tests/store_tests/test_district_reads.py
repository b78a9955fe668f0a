"""A publish reads its row counts and data checks back from the rows it commits, beside the roster's commit."""

from __future__ import annotations

import threading
import time
from datetime import UTC, datetime
from pathlib import Path

import duckdb
import pytest

from roster_pipeline.oneroster.flatten import flatten_records
from roster_pipeline.store import warehouse as warehouse_module
from roster_pipeline.store.district_reads import CheckFinding, check_findings, read_district
from roster_pipeline.store.guard import release_requested, request_release
from roster_pipeline.store.lake import Lake
from roster_pipeline.store.lakehouse import connect
from roster_pipeline.store.warehouse import ReadsFailed, RosterWarehouse

T0 = datetime(2026, 9, 1, tzinfo=UTC)
WHEN = T0.isoformat().replace("+00:00", "Z")


def user(sourced_id: str, role: str, **fields: object) -> dict:
    return {"sourcedId": sourced_id, "status": "active", "dateLastModified": T0, "role": role, **fields}


def land(warehouse: RosterWarehouse, district_id: str, endpoint: str, records: list[dict]) -> None:
    writer = warehouse.lake.new_batch(endpoint, district_id)
    writer.append(flatten_records(endpoint, district_id, records))
    writer.commit("full", None, WHEN)


@pytest.fixture
def warehouse(tmp_path: Path) -> RosterWarehouse:
    """District `oak`: three students, a guardian of the first and an agent reference to a user it does not have."""
    warehouse = RosterWarehouse(tmp_path, Lake(tmp_path / "lake"))
    guardian = user("oak-g1", "guardian", agents=[{"sourcedId": "oak-s0", "type": "user"}])
    pupils = [user(f"oak-s{i}", "student") for i in range(3)]
    pupils[0]["agents"] = [{"sourcedId": "oak-g1", "type": "user"}]
    pupils[2]["agents"] = [{"sourcedId": "oak-nobody", "type": "user"}]
    land(warehouse, "oak", "users", [*pupils, guardian])
    return warehouse


def test_a_publishs_row_counts_are_the_rows_the_roster_holds(warehouse):
    result = warehouse.publish_district("oak")

    with connect(warehouse.paths) as roster:
        for table, count in result.row_counts.items():
            found = roster.execute(f"SELECT count(*) FROM {table} WHERE district_id = 'oak'").fetchone()
            assert found == (count,), table
    assert result.row_counts["students"] == 3 and result.row_counts["guardians"] == 1


def test_a_publishs_check_findings_are_what_the_checks_find_in_the_committed_work_database(warehouse):
    result = warehouse.publish_district("oak")

    with duckdb.connect(str(warehouse.work_path("oak")), read_only=True) as work:
        assert result.check_findings == check_findings(work, "oak")
    assert result.check_findings["agents_reference_users"] == CheckFinding(1, ("oak-s2",))
    assert result.check_findings["unique_sourced_ids"].problems == 0


def test_the_reads_run_while_the_roster_commits(warehouse, monkeypatch):
    """Each side waits (up to 10 s) for the other to have begun: run one after the other, one would wait in vain."""
    began = {"reads": threading.Event(), "commit": threading.Event()}
    met: dict[str, bool] = {}

    def meeting(name, other, step):
        def run(*args, **kwargs):
            began[name].set()
            met[name] = began[other].wait(10)
            return step(*args, **kwargs)

        return run

    monkeypatch.setattr(warehouse_module, "read_district", meeting("reads", "commit", read_district))
    commit = meeting("commit", "reads", warehouse_module.publish_district_rows)
    monkeypatch.setattr(warehouse_module, "publish_district_rows", commit)
    result = warehouse.publish_district("oak")

    assert met == {"reads": True, "commit": True}
    assert result.row_counts["students"] == 3


def test_a_commit_that_fails_while_the_reads_run_fails_the_publish_and_keeps_the_release(warehouse, monkeypatch):
    request_release(warehouse.lake, "oak", by="test")

    def refused(*args, **kwargs):
        time.sleep(0.2)  # the reads are under way
        raise duckdb.IOException("IO Error: could not write the catalog (fault injected)")

    monkeypatch.setattr(warehouse_module, "publish_district_rows", refused)
    with pytest.raises(duckdb.IOException, match="fault injected"):
        warehouse.publish_district("oak")

    assert release_requested(warehouse.lake, "oak")  # nothing was published: the release waits for the next try
    assert not [t for t in threading.enumerate() if t.name.startswith("district-reads")]
    monkeypatch.undo()
    assert warehouse.publish_district("oak").row_counts["students"] == 3


def test_reads_that_ran_out_of_memory_beside_the_commit_are_read_again_on_their_own(warehouse, monkeypatch):
    attempts: list[str] = []

    def short_of_memory_once(con, district_id):
        attempts.append(threading.current_thread().name)
        if len(attempts) == 1:
            raise duckdb.OutOfMemoryException("Out of Memory Error: could not allocate block (fault injected)")
        return read_district(con, district_id)

    monkeypatch.setattr(warehouse_module, "read_district", short_of_memory_once)
    result = warehouse.publish_district("oak")

    assert len(attempts) == 2 and attempts[1] == threading.current_thread().name  # again, after the commit
    assert result.row_counts["students"] == 3
    assert result.check_findings["agents_reference_users"].problems == 1


def test_reads_that_fail_after_the_roster_commit_still_let_the_publish_use_up_a_release(warehouse, monkeypatch):
    """The roster has the rows: the release an engineer gave is used up and the step fails saying what happened,
    so the next publish is guarded again."""
    request_release(warehouse.lake, "oak", by="test")

    def unreadable(con, district_id):
        raise duckdb.CatalogException("Catalog Error: Table with name students does not exist! (fault injected)")

    monkeypatch.setattr(warehouse_module, "read_district", unreadable)
    with pytest.raises(ReadsFailed, match="district 'oak': published, but reading back its row counts") as failed:
        warehouse.publish_district("oak")

    assert isinstance(failed.value.__cause__, duckdb.CatalogException)
    assert not release_requested(warehouse.lake, "oak")
    with connect(warehouse.paths) as roster:
        assert roster.execute("SELECT count(*) FROM students WHERE district_id = 'oak'").fetchone() == (3,)
