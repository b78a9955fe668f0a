"""Applying landed batches is order-independent: a slow full sync committed after a later delta, or a CSV bulk
file with unreadable rows, never loses or regresses data."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import duckdb
import pytest

from roster_pipeline.oneroster.flatten import flatten_records
from roster_pipeline.store import lake as lake_module
from roster_pipeline.store.guard import GuardPolicy
from roster_pipeline.store.lake import Lake
from roster_pipeline.store.lakehouse import connect
from roster_pipeline.store.merge import StateTableBroken, apply_batch
from roster_pipeline.store.roster_schema import ensure_schema
from roster_pipeline.store.warehouse import RosterWarehouse

T0 = datetime(2026, 9, 1, tzinfo=UTC)


def student(sourced_id: str, changed: datetime, name: str = "Ann") -> dict:
    return {
        "sourcedId": sourced_id,
        "status": "active",
        "dateLastModified": changed,
        "role": "student",
        "givenName": name,
    }


def iso(moment: datetime) -> str:
    return moment.isoformat().replace("+00:00", "Z")


@pytest.fixture
def warehouse(tmp_path):
    return RosterWarehouse(tmp_path, Lake(tmp_path / "lake"))


def land(warehouse: RosterWarehouse, mode: str, records: list[dict], snapshot_at: datetime, malformed: int = 0):
    writer = warehouse.lake.new_batch("users", "d1")
    writer.append(flatten_records("users", "d1", records))
    return writer, lambda: writer.commit(mode, None, iso(snapshot_at), malformed=malformed)


def users(warehouse: RosterWarehouse) -> dict[str, tuple]:
    with connect(warehouse.paths) as con:
        rows = con.execute("SELECT sourced_id, status, given_name FROM users_all ORDER BY 1").fetchall()
    return {row[0]: row[1:] for row in rows}


def test_a_full_sync_committed_after_a_later_delta_neither_loses_new_records_nor_regresses_changed_ones(warehouse):
    _, commit = land(warehouse, "full", [student("u1", T0), student("u2", T0), student("u3", T0)], T0)
    commit()
    warehouse.publish_district("d1")

    # The weekly full sync starts at T0+1h and pages slowly: it sees u1 and u2 as they were; u3 is gone.
    _, commit_full = land(
        warehouse, "full", [student("u1", T0), student("u2", T0)], snapshot_at=T0 + timedelta(hours=1)
    )
    # Meanwhile the nightly delta (started later) sees a new student and an edit, and publishes first.
    _, commit_delta = land(
        warehouse,
        "delta",
        [student("u4", T0 + timedelta(hours=2)), student("u1", T0 + timedelta(hours=2), "Anna")],
        T0 + timedelta(hours=2),
    )
    commit_delta()
    warehouse.publish_district("d1")
    commit_full()
    result = warehouse.publish_district("d1", guard=GuardPolicy(max_removed_share=0.5))  # 1 of 4 is real here

    assert result.endpoints["users"].batches == 1  # the late full batch was applied, not skipped
    assert users(warehouse) == {
        "u1": ("active", "Anna"),  # the delta's newer version survives the older full snapshot
        "u2": ("active", "Ann"),
        "u3": ("tobedeleted", "Ann"),  # deleted before the full snapshot began: tombstoned
        "u4": ("active", "Ann"),  # created after the full snapshot began: not tombstoned
    }


def test_a_full_batch_with_malformed_records_does_not_tombstone_what_it_could_not_read(warehouse):
    _, commit = land(warehouse, "full", [student("u1", T0), student("u2", T0)], T0)
    commit()
    warehouse.publish_district("d1")
    # Tomorrow's bulk file has u2's row unreadable: u2 is missing from the batch but was not deleted.
    _, commit = land(warehouse, "full", [student("u1", T0)], T0 + timedelta(days=1), malformed=1)
    commit()
    result = warehouse.publish_district("d1")
    assert result.endpoints["users"].tombstoned == 0
    assert users(warehouse)["u2"] == ("active", "Ann")
    with connect(warehouse.paths) as con:
        modes = [row[0] for row in con.execute("SELECT mode FROM ops.applied_batches ORDER BY batch_id").fetchall()]
    assert modes == ["full", "full, no tombstones (1 malformed records, not all identifiable)"]


def test_a_full_batch_spares_exactly_the_malformed_records_it_can_name_and_tombstones_real_deletions(warehouse):
    _, commit = land(warehouse, "full", [student(i, T0) for i in ("u1", "u2", "u3")], T0)
    commit()
    warehouse.publish_district("d1")
    # Next week: u2's row is unreadable but its sourcedId is known; u3 was really deleted.
    writer = warehouse.lake.new_batch("users", "d1")
    writer.append(flatten_records("users", "d1", [student("u1", T0)]))
    writer.commit("full", None, iso(T0 + timedelta(days=7)), malformed=1, malformed_ids=["u2"])
    warehouse.publish_district("d1", guard=GuardPolicy(max_removed_share=0.5))
    state = users(warehouse)
    assert (state["u2"][0], state["u3"][0]) == ("active", "tobedeleted")


def test_batch_ids_sort_in_commit_order_not_start_order(warehouse):
    _, commit_first = land(warehouse, "full", [student("u1", T0)], T0)
    _, commit_second = land(warehouse, "delta", [student("u2", T0)], T0)
    second = commit_second()
    first = commit_first()
    assert second.batch_id < first.batch_id
    assert [b.batch_id for b in warehouse.lake.batches("users", "d1")] == [second.batch_id, first.batch_id]


def test_the_lake_keeps_the_newest_applied_full_batch_and_what_came_after(warehouse):
    def publish(mode: str, ids: list[str]) -> str:
        began = datetime.now(UTC)  # a real fetch: the snapshot begins now, the batch commits just after
        _, commit = land(warehouse, mode, [student(i, began) for i in ids], began)
        batch_id = commit().batch_id
        warehouse.publish_district("d1")
        return batch_id

    publish("full", ["u1"])
    publish("delta", ["u2"])
    second_full = publish("full", ["u1", "u2"])
    last_delta = publish("delta", ["u3"])

    assert [b.batch_id for b in warehouse.lake.batches("users", "d1")] == [second_full, last_delta]
    assert sorted(users(warehouse)) == ["u1", "u2", "u3"]
    # Rebuilding from what the lake kept gives the same state.
    rebuilt = RosterWarehouse(warehouse.data_dir / "rebuilt", warehouse.lake)
    rebuilt.publish_district("d1")
    assert users(rebuilt) == users(warehouse)


def test_pruning_keeps_a_delta_committed_while_the_newest_full_sync_was_paging(warehouse):
    began = datetime.now(UTC)
    _, commit = land(warehouse, "full", [student("u1", began)], began)
    commit()
    warehouse.publish_district("d1")
    full_began = datetime.now(UTC)
    _, commit_full = land(warehouse, "full", [student("u1", began)], full_began)
    edited = datetime.now(UTC)
    _, commit_delta = land(warehouse, "delta", [student("u1", edited, "Anna"), student("u2", edited)], edited)
    delta = commit_delta()
    warehouse.publish_district("d1")
    commit_full()
    warehouse.publish_district("d1")
    assert delta.batch_id in [b.batch_id for b in warehouse.lake.batches("users", "d1")]
    rebuilt = RosterWarehouse(warehouse.data_dir / "rebuilt", warehouse.lake)
    rebuilt.publish_district("d1")
    assert users(rebuilt) == users(warehouse) == {"u1": ("active", "Anna"), "u2": ("active", "Ann")}


def test_a_stale_delta_committed_after_a_full_sync_does_not_revive_what_the_full_sync_saw_deleted(warehouse):
    _, commit = land(warehouse, "full", [student("u1", T0), student("u2", T0)], T0)
    commit()
    warehouse.publish_district("d1")
    # A slow delta began at T0+1d and saw u2's edit of T0+20h ...
    _, commit_slow_delta = land(
        warehouse, "delta", [student("u2", T0 + timedelta(hours=20), "Bea")], T0 + timedelta(days=1)
    )
    # ... then u2 was deleted, and a full sync that began later saw it gone and published first.
    _, commit_full = land(warehouse, "full", [student("u1", T0)], T0 + timedelta(days=1, hours=2))
    commit_full()
    warehouse.publish_district("d1", guard=GuardPolicy(max_removed_share=0.5))
    commit_slow_delta()
    warehouse.publish_district("d1")
    assert users(warehouse)["u2"][0] == "tobedeleted"


def test_records_without_dates_are_ordered_by_the_snapshot_that_saw_them(warehouse):
    undated = [{"sourcedId": s, "status": "active", "role": "student", "givenName": "Ann"} for s in ("u1", "u2")]
    _, commit = land(warehouse, "full", undated, T0)
    commit()
    warehouse.publish_district("d1")
    _, commit_full = land(warehouse, "full", undated, T0 + timedelta(hours=1))  # slow: commits last
    newer = [{**undated[0], "givenName": "Anna"}, {"sourcedId": "u3", "status": "active", "role": "student"}]
    _, commit_delta = land(warehouse, "delta", newer, T0 + timedelta(hours=2))
    commit_delta()
    warehouse.publish_district("d1")
    commit_full()
    warehouse.publish_district("d1")
    state = users(warehouse)
    assert state["u1"] == ("active", "Anna")  # the later snapshot's version stays
    assert state["u3"][0] == "active"  # written after the full snapshot began: not tombstoned


def test_a_batch_holding_a_record_twice_lands_its_newest_version_once(warehouse):
    _, commit = land(warehouse, "full", [student("u1", T0), student("u1", T0 + timedelta(hours=1), "Anna")], T0)
    commit()
    result = warehouse.publish_district("d1")
    assert users(warehouse) == {"u1": ("active", "Anna")}
    assert result.endpoints["users"].records == 2


def test_a_state_table_that_would_hold_a_record_twice_is_never_published(warehouse):
    _, commit = land(warehouse, "full", [student("u1", T0), student("u2", T0)], T0)
    commit()
    warehouse.publish_district("d1")
    # Whatever put it there (a bug, a hand edit), a second row for u2 must not reach the roster on the next publish.
    with duckdb.connect(str(warehouse.work_path("d1"))) as con:
        con.execute("INSERT INTO users_all SELECT * FROM users_all WHERE sourced_id = 'u2'")
    _, commit = land(warehouse, "delta", [student("u3", T0 + timedelta(hours=1))], T0 + timedelta(hours=1))
    batch = commit()
    with pytest.raises(StateTableBroken, match=r"district 'd1', endpoint users: 1 record\(s\) would be held twice"):
        warehouse.publish_district("d1")
    assert set(users(warehouse)) == {"u1", "u2"}  # the roster still holds the last good publish
    assert [b.batch_id for b in warehouse.lake.batches("users", "d1")][-1] == batch.batch_id  # kept for next time


def test_a_work_database_made_with_the_old_primary_key_still_merges(warehouse):
    work = warehouse.work_path("d1")
    work.parent.mkdir(parents=True)
    with duckdb.connect(str(work)) as con:
        ensure_schema(con)
        con.execute("CREATE TABLE keyed AS SELECT * FROM users_all WITH NO DATA")
        con.execute("DROP TABLE users_all")
        con.execute("ALTER TABLE keyed RENAME TO users_all")
        con.execute("ALTER TABLE users_all ADD PRIMARY KEY (district_id, sourced_id)")
    _, commit = land(warehouse, "full", [student("u1", T0), student("u2", T0)], T0)
    commit()
    warehouse.publish_district("d1")
    _, commit = land(warehouse, "delta", [student("u2", T0 + timedelta(hours=1), "Bo")], T0 + timedelta(hours=1))
    commit()
    warehouse.publish_district("d1")
    assert users(warehouse) == {"u1": ("active", "Ann"), "u2": ("active", "Bo")}
    with duckdb.connect(str(work)) as con:
        kinds = con.execute(
            "SELECT constraint_type FROM duckdb_constraints() WHERE table_name = 'users_all'"
        ).fetchall()
    assert ("PRIMARY KEY",) in kinds


def test_of_two_equal_versions_of_a_record_in_one_batch_the_one_landed_last_is_kept(warehouse):
    _, commit = land(warehouse, "full", [student("u1", T0, "Ann"), student("u1", T0, "Anna")], T0)
    commit()
    warehouse.publish_district("d1")
    assert users(warehouse) == {"u1": ("active", "Anna")}


def test_of_two_equal_versions_landed_in_different_parts_the_later_part_wins(warehouse, monkeypatch):
    monkeypatch.setattr(lake_module, "PART_ROWS", 1)  # every page its own Parquet part
    writer = warehouse.lake.new_batch("users", "d1")
    for name in ("Ann", "Anna", "Annie"):
        writer.append(flatten_records("users", "d1", [student("u1", T0, name)]))
    batch = writer.commit("full", None, iso(T0))
    assert len(batch.files) == 3
    warehouse.publish_district("d1")
    assert users(warehouse) == {"u1": ("active", "Annie")}


def in_memory_mb(con: duckdb.DuckDBPyConnection) -> float:
    row = con.execute("SELECT sum(memory_usage_bytes) / 1e6 FROM duckdb_memory() WHERE tag = 'IN_MEMORY_TABLE'")
    return float(row.fetchone()[0] or 0)


def test_a_merge_holds_a_batch_once_in_memory_not_a_copy_beside_the_rows_it_inserts(warehouse):
    # Inside the publish transaction a table made (even a temporary one, even dropped) keeps its memory until
    # COMMIT, so staging each batch as a copy held two of every batch at the merge's peak.
    many = [{**student(f"u{i:05d}-{'x' * 30}", T0), "email": f"u{i}@mail.example.com"} for i in range(5000)]
    _, commit = land(warehouse, "full", many, T0)
    batch = commit()
    with warehouse._work_connection("d1") as con:
        con.execute("BEGIN")
        con.execute("CREATE TEMP TABLE one_copy AS SELECT * FROM read_parquet(?)", [batch.files])
        one_copy = in_memory_mb(con)
        con.execute("ROLLBACK")
        con.execute("BEGIN")
        assert apply_batch(con, "users_all", batch)[0] == 5000
        merged = in_memory_mb(con)
        con.execute("ROLLBACK")
    assert merged < 1.5 * one_copy
