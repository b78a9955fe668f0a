"""The lake on S3-compatible object storage (`ROSTER_LAKE_URL=s3://…`): workers that share no folder.

moto's S3 server answers over real HTTP on loopback and checks each request's signature. Each "worker" below has its
own data folder (its own work databases); they share only the bucket (lake and roster files) and the roster's
catalog, as pods on different nodes would.
"""

from __future__ import annotations

import subprocess
import sys
from datetime import UTC, datetime
from pathlib import Path

import orjson
import pytest
from obstore.exceptions import BaseError

from roster_pipeline.config.settings import Settings
from roster_pipeline.oneroster.flatten import flatten_records
from roster_pipeline.store.guard import clear_after_publish, release_requested, request_release
from roster_pipeline.store.lake import BATCH_MANIFEST, BATCH_OWNER, Lake, SyncRunRecord
from roster_pipeline.store.lakehouse import connect
from roster_pipeline.store.object_storage import ObjectStorageCredentialsMissing
from roster_pipeline.store.warehouse import RosterWarehouse
from roster_pipeline_tests.s3_server import BUCKET, Bucket

DISTRICT = "oak-usd"
T0 = datetime(2024, 5, 1, 8, 0, tzinfo=UTC)


def user(number: int, name: str = "Ann", status: str = "active", at: int = 7) -> dict:
    return {
        "sourcedId": f"s{number}",
        "status": status,
        "dateLastModified": T0.replace(hour=at, minute=number),
        "role": "student",
        "givenName": name,
    }


def land(lake: Lake, mode: str, records: list[dict], at: int = 8) -> None:
    writer = lake.new_batch("users", DISTRICT)
    writer.append(flatten_records("users", DISTRICT, records))
    writer.commit(mode, None, T0.replace(hour=at).isoformat().replace("+00:00", "Z"))


@pytest.fixture
def lake_url(bucket: Bucket, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> str:
    """The lake and the roster's files on the bucket; the catalog in a folder standing for a shared database."""
    monkeypatch.setenv("ROSTER_LAKE_URL", f"s3://{BUCKET}/lake/")
    (tmp_path / "shared").mkdir()
    monkeypatch.setenv("ROSTER_CATALOG_URL", f"sqlite:{tmp_path / 'shared' / 'catalog.sqlite'}")
    return f"s3://{BUCKET}/lake/"


def worker(tmp_path: Path, name: str) -> RosterWarehouse:
    """A worker with a data folder (work databases) of its own."""
    return RosterWarehouse(tmp_path / name)


def students(settings: Settings) -> dict[str, str]:
    """The district's students who are not called Ann (the name every student starts with)."""
    query = "SELECT sourced_id, given_name FROM students WHERE district_id = ? AND given_name <> 'Ann'"
    with connect(settings) as con:
        return dict(con.execute(query, [DISTRICT]).fetchall())


def student_ids(settings: Settings) -> set[str]:
    with connect(settings) as con:
        return {
            row[0]
            for row in con.execute("SELECT sourced_id FROM students WHERE district_id = ?", [DISTRICT]).fetchall()
        }


def publishes(settings: Settings) -> int:
    with connect(settings) as con:
        row = con.execute("SELECT count(*) FROM ops.publishes WHERE district_id = ?", [DISTRICT]).fetchone()
    return int(row[0]) if row else 0


def test_batches_and_state_live_on_the_bucket_and_nothing_in_the_data_folder(
    lake_url: str, bucket: Bucket, tmp_path: Path
) -> None:
    lake = worker(tmp_path, "a").lake
    land(lake, "full", [user(0), user(1)])
    lake.set_watermark(DISTRICT, "users", "2024-05-01T08:00:00Z", "b1")
    now = "2024-05-01T08:00:00.000000Z"
    lake.record_run(SyncRunRecord("run-1", DISTRICT, "users", "full", now, now, "success", records=2))

    [batch] = lake.batches("users", DISTRICT)
    assert batch.records == 2 and batch.files == [f"{lake_url}{batch.prefix}part-00000.parquet"]
    assert lake.scan(batch).collect()["sourced_id"].sort().to_list() == ["s0", "s1"]
    assert lake.live_ids("users", DISTRICT) == {"s0", "s1"}
    assert lake.watermark(DISTRICT, "users") == "2024-05-01T08:00:00Z"
    assert [record["run_id"] for _, record in lake.run_records(DISTRICT)] == ["run-1"]
    request_release(lake, DISTRICT, by="test")
    assert release_requested(lake, DISTRICT)
    clear_after_publish(lake, DISTRICT)
    assert not release_requested(lake, DISTRICT)
    assert f"lake/{batch.prefix}{BATCH_MANIFEST}" in bucket.keys("lake/")
    assert bucket.keys("lake/_incoming/") == []  # staged, then copied into place
    assert not (tmp_path / "a" / "lake").exists()


def test_a_batch_being_written_is_invisible_until_committed_and_an_aborted_one_leaves_nothing(
    lake_url: str, bucket: Bucket, tmp_path: Path
) -> None:
    lake = worker(tmp_path, "a").lake
    writer = lake.new_batch("users", DISTRICT)
    writer.append(flatten_records("users", DISTRICT, [user(0)]))
    writer._flush()
    assert lake.batches("users", DISTRICT) == []
    assert lake.clean_abandoned() == []  # its writer (this process) is alive
    writer.abort()
    assert bucket.keys("lake/") == []


def test_a_commit_killed_half_way_is_removed_whole_by_the_next_run(
    lake_url: str, bucket: Bucket, tmp_path: Path
) -> None:
    lake = worker(tmp_path, "a").lake
    land(lake, "full", [user(0)])
    writer = lake.new_batch("users", DISTRICT)
    writer.append(flatten_records("users", DISTRICT, [user(1)]))
    writer._flush()
    # As a commit killed after copying its part into place and before writing the manifest leaves it, by a process
    # that has exited since.
    dead = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True, text=True)
    owner = orjson.loads(lake.store.read(writer.staging + BATCH_OWNER) or b"{}")
    final = lake.batch_prefix("users", DISTRICT, "20240501T090000000000Z-deadbeef")
    lake.store.write(
        writer.staging + BATCH_OWNER, orjson.dumps({**owner, "pid": int(dead.stdout), "committing_to": final})
    )
    lake.store.copy(writer.staging + "part-00000.parquet", final + "part-00000.parquet")
    assert len(lake.batches("users", DISTRICT)) == 1  # no manifest: not a batch

    removed = lake.clean_abandoned()

    assert removed == [f"{lake_url}{writer.staging}"]
    assert bucket.keys("lake/_incoming/") == [] and bucket.keys(f"lake/{final}") == []
    assert [b.records for b in lake.batches("users", DISTRICT)] == [1]


def test_a_prune_killed_half_way_is_finished_by_the_next_run(lake_url: str, bucket: Bucket, tmp_path: Path) -> None:
    lake = worker(tmp_path, "a").lake
    land(lake, "full", [user(0)])
    [batch] = lake.batches("users", DISTRICT)
    # As a prune killed after its note and the manifest's deletion leaves it.
    lake.store.write(f"_pruning/{batch.prefix.rstrip('/')}", b"")
    lake.store.delete([batch.prefix + BATCH_MANIFEST])
    assert lake.batches("users", DISTRICT) == []

    assert lake.clean_abandoned() == [f"{lake_url}{batch.prefix}"]
    assert bucket.keys("lake/") == []


def test_a_second_worker_continues_a_district_from_the_roster_and_keeps_its_history(
    lake_url: str, tmp_path: Path
) -> None:
    first, second = worker(tmp_path, "a"), worker(tmp_path, "b")
    land(first.lake, "full", [user(n) for n in range(20)])
    first.publish_district(DISTRICT)

    land(second.lake, "delta", [user(1, "Bob", at=11), user(2, status="tobedeleted", at=11)], at=12)
    result = second.publish_district(DISTRICT)

    assert result.restored_rows > 0 and result.batches == 1  # started from the roster; applied only the delta
    assert result.guard.students_before == 20  # the guard measured against what was published
    assert students(second.paths) == {"s1": "Bob"}
    assert student_ids(second.paths) == {f"s{n}" for n in range(20)} - {"s2"}
    assert publishes(second.paths) == 2  # the first worker's publish is still on record

    again = first.publish_district(DISTRICT)  # its work database is behind: it starts from the roster too
    assert again.restored_rows > 0 and again.batches == 0
    assert students(first.paths) == {"s1": "Bob"} and len(student_ids(first.paths)) == 19
    assert publishes(first.paths) == 3


def test_a_worker_restoring_a_district_too_large_for_its_memory_limit_does_so_under_four_times_as_much(
    lake_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    first = worker(tmp_path, "a")
    land(
        first.lake,
        "full",
        [{**user(n % 60), "sourcedId": f"s{n}", "email": f"s{n}@mail.example.com"} for n in range(3000)],
    )
    first.publish_district(DISTRICT)
    monkeypatch.setenv("ROSTER_WORK_MEMORY_LIMIT", "24MB")  # too little to copy 3,000 students from the roster
    second = worker(tmp_path, "b")
    land(second.lake, "delta", [user(1, "Bob", at=11)], at=12)

    result = second.publish_district(DISTRICT)

    assert result.memory_limit_raised_to == "96MB"  # (an upload to the bucket alone takes a 76.5 MiB buffer)
    assert result.restored_rows > 0 and result.batches == 1
    assert students(second.paths) == {"s1": "Bob"} and len(student_ids(second.paths)) == 3000


def test_a_district_published_by_another_worker_during_the_merge_is_merged_again(
    lake_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    first, second = worker(tmp_path, "a"), worker(tmp_path, "b")
    land(first.lake, "full", [user(n) for n in range(20)])
    first.publish_district(DISTRICT)
    merge, merges = RosterWarehouse._merge, []

    def merge_while_another_worker_publishes(self: RosterWarehouse, *args: object) -> object:
        result = merge(self, *args)  # type: ignore[arg-type]
        merges.append(self is first)
        if self is first and merges.count(True) == 1:
            land(second.lake, "delta", [user(1, "Bob", at=11)], at=12)
            second.publish_district(DISTRICT)
        return result

    monkeypatch.setattr(RosterWarehouse, "_merge", merge_while_another_worker_publishes)
    land(first.lake, "delta", [user(0, "Cy", at=11)], at=13)
    first.publish_district(DISTRICT)

    assert merges == [True, False, True]  # the first merge's publish was refused, and it merged again
    assert students(first.paths) == {"s0": "Cy", "s1": "Bob"}  # neither worker's change is lost
    assert len(student_ids(first.paths)) == 20
    assert publishes(first.paths) == 3


def test_the_lake_needs_its_credentials_and_never_shows_them(
    lake_url: str, bucket: Bucket, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("AWS_ACCESS_KEY_ID")
    with pytest.raises(ObjectStorageCredentialsMissing, match=r"the lake is on object storage .* AWS_ACCESS_KEY_ID"):
        Lake(lake_url)

    monkeypatch.setenv("AWS_ACCESS_KEY_ID", bucket.key_id)
    wrong = "wrong" + bucket.secret[5:]
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", wrong)
    with pytest.raises(BaseError) as refused:
        land(Lake(lake_url), "full", [user(0)])
    assert "403" in str(refused.value) or "Forbidden" in str(refused.value) or "Signature" in str(refused.value)
    assert wrong not in str(refused.value) and bucket.secret not in str(refused.value)
    assert bucket.keys("lake/") == []
