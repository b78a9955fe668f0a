"""A district's state folder has one owner: its files keep their names, and every write replaces a file whole."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import orjson
import pytest

from roster_pipeline.ingest.csv_drops import BundleRef, ImportLog, RefusalLog
from roster_pipeline.ingest.probe import CapabilityReport, EndpointCapability, load_capabilities, store_capabilities
from roster_pipeline.ingest.side_files import SideFileLedger
from roster_pipeline.oneroster.csv_reader import SideRow
from roster_pipeline.store import lake_store
from roster_pipeline.store.district_state import DistrictState, UnreadableStateFile
from roster_pipeline.store.guard import (
    GuardReport,
    clear_after_publish,
    discard_quarantined,
    full_sync_reason,
    mark_quarantined,
    quarantine_state,
    release_requested,
    request_release,
)
from roster_pipeline.store.lake import Lake, SyncRunRecord
from roster_pipeline.store.lake_store import LakeFolder

REPO = Path(__file__).resolve().parents[2]


@pytest.fixture
def lake(tmp_path: Path) -> Lake:
    return Lake(tmp_path / "data" / "lake")


def leftovers(folder: Path) -> list[str]:
    return sorted(path.name for path in folder.rglob(".*.tmp"))


def test_the_state_folder_and_its_file_names_are_the_ones_existing_data_folders_have(lake):
    folder = lake.root / "_state" / "district=oak"
    state = lake.state("oak")
    assert state.path == DistrictState(LakeFolder(lake.root), "oak").path == folder
    key = "a.zip@2024-01-01T00:00:00.000000Z"
    files = [
        (state.watermark("users"), "watermarks/users.json"),
        (state.capabilities, "capabilities.json"),
        (state.quarantine, "quarantine.json"),
        (state.release, "release.json"),
        (state.resync, "resync.json"),
        (state.import_log("orgs"), "bundles/orgs.json"),
        (state.refusal(key), f"bundles/refused/{key}.json"),
        (state.side_file_ledger, "side-files.json"),
    ]
    for file, name in files:
        assert file.path == folder / name
    run = state.new_run_record("2024-05-01T10:00:00.000Z", "users").path.relative_to(folder)
    assert run.parent.as_posix() == "runs" and run.name.startswith("2024-05-01T100000.000Z-users-")


def test_files_written_by_the_previous_layout_are_read_as_before(lake):
    folder = lake.root / "_state" / "district=oak"
    for name, document in {
        "watermarks/users.json": {"watermark": "2024-05-01T10:00:00Z", "batch_id": "b1", "updated_at": "x"},
        "quarantine.json": {"since": "2024-05-01T10:00:00+00:00", "reasons": ["too many"], "batches": []},
        "bundles/orgs.json": [{"key": "a.zip@t", "name": "a.zip", "outcome": "imported", "at": "t"}],
        "side-files.json": {"roles": {"r1": ["u1", {"role": "student"}]}},
    }.items():
        (folder / name).parent.mkdir(parents=True, exist_ok=True)
        (folder / name).write_bytes(orjson.dumps(document))
    assert lake.watermark("oak", "users") == "2024-05-01T10:00:00Z"
    assert quarantine_state(lake, "oak") == {
        "since": "2024-05-01T10:00:00+00:00",
        "reasons": ["too many"],
        "batches": [],
    }
    assert ImportLog(lake, "oak", "orgs").keys() == {"a.zip@t"}
    assert SideFileLedger.load(lake, "oak").items()["roles"] == {"u1": [{"role": "student"}]}


def test_a_write_that_fails_before_the_rename_leaves_the_old_document_and_no_temporary_file(lake, monkeypatch):
    state = lake.state("oak")
    state.quarantine.write({"since": "before"})

    def refuse(source: object, target: object) -> None:
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(lake_store.os, "replace", refuse)
    with pytest.raises(OSError, match="No space left"):
        state.quarantine.write({"since": "after", "padding": "x" * 100_000})
    monkeypatch.undo()
    assert state.quarantine.read() == {"since": "before"}
    assert leftovers(state.path) == []


KILLED_WRITER = """
import sys, time
from pathlib import Path
from roster_pipeline.store import lake_store
from roster_pipeline.store.district_state import DistrictState

def hang(fd):  # the content is written but not yet renamed into place: be killed here
    Path(sys.argv[2]).touch()
    time.sleep(60)

lake_store.os.fsync = hang
DistrictState(lake_store.LakeFolder(Path(sys.argv[1])), "oak").watermark("users").write({"watermark": "x" * 1_000_000})
"""


def test_a_writer_killed_mid_write_leaves_the_old_document_and_nothing_a_reader_picks_up(lake, tmp_path):
    lake.set_watermark("oak", "users", "2024-05-01T10:00:00Z", "b1")
    ready = tmp_path / "ready"
    writer = subprocess.Popen([sys.executable, "-c", KILLED_WRITER, str(lake.root), str(ready)], cwd=REPO)
    try:
        deadline = time.monotonic() + 30
        while not ready.exists():
            assert writer.poll() is None and time.monotonic() < deadline, "the writer never reached the write"
            time.sleep(0.01)
    finally:
        writer.send_signal(signal.SIGKILL)
        writer.wait()
    state = lake.state("oak")
    left = leftovers(state.path)  # a killed writer cannot clean up after itself
    assert left and all(name.startswith(".users.json.") for name in left)
    assert lake.watermark("oak", "users") == "2024-05-01T10:00:00Z"
    assert list(lake.watermarks("oak")) == ["users"]


def test_the_next_run_removes_a_killed_writers_temporary_file_once_no_live_write_can_own_it(lake, tmp_path):
    lake.set_watermark("oak", "users", "2024-05-01T10:00:00Z", "b1")
    folder = lake.state("oak").path / "watermarks"
    left_by_killed = folder / ".users.json.0badc0de.tmp"
    being_written = folder / ".classes.json.1badc0de.tmp"
    for path in (left_by_killed, being_written):
        path.write_bytes(b'{"watermark": "2024-')
    hours_ago = time.time() - 2 * 3600
    os.utime(left_by_killed, (hours_ago, hours_ago))

    removed = lake.clean_abandoned()

    assert removed == [str(left_by_killed)]
    assert not left_by_killed.exists() and being_written.exists()
    assert lake.watermark("oak", "users") == "2024-05-01T10:00:00Z"


def test_concurrent_writers_of_one_file_never_let_a_reader_see_a_torn_document(lake):
    state = lake.state("oak")
    documents = [{"writer": n, "padding": str(n) * 200_000} for n in range(6)]
    state.capabilities.write(documents[0])
    seen: list[object] = []
    done = threading.Event()

    def write(document: dict[str, object]) -> None:
        for _ in range(15):
            state.capabilities.write(document)

    def read() -> None:
        while not done.is_set():
            try:
                seen.append(state.capabilities.read())
            except UnreadableStateFile as error:  # a torn document
                seen.append(error)

    reader = threading.Thread(target=read)
    writers = [threading.Thread(target=write, args=(document,)) for document in documents]
    reader.start()
    for thread in writers:
        thread.start()
    for thread in writers:
        thread.join()
    done.set()
    reader.join()
    assert seen and all(document in documents for document in seen)
    assert state.capabilities.read() in documents
    assert leftovers(state.path) == []


def test_an_unreadable_state_file_is_an_error_that_names_it_never_an_absent_one(lake):
    state = lake.state("oak")
    state.quarantine.path.parent.mkdir(parents=True)
    state.quarantine.path.write_bytes(b'{"since": "2024-05-01T10:')  # damaged outside the pipeline
    with pytest.raises(UnreadableStateFile, match=r"quarantine\.json"):
        quarantine_state(lake, "oak")
    with pytest.raises(UnreadableStateFile):
        full_sync_reason(lake, "oak")  # a damaged quarantine must not let a delta sync through
    state.release.path.write_bytes(b"")
    assert release_requested(lake, "oak")  # a release is its marker's presence, as it always was


def test_watermarks_and_run_records_round_trip(lake):
    lake.set_watermark("oak", "users", "2024-05-01T10:00:00Z", "b1")
    lake.set_watermark("oak", "orgs", "2024-05-02T10:00:00Z", "b2")
    assert lake.watermark("oak", "users") == "2024-05-01T10:00:00Z" and lake.watermark("oak", "classes") is None
    assert {endpoint: state["batch_id"] for endpoint, state in lake.watermarks("oak").items()} == {
        "orgs": "b2",
        "users": "b1",
    }
    first = SyncRunRecord("r1", "oak", "users", "full", "2024-05-01T10:00:00Z", "2024-05-01T10:01:00Z", "success")
    second = SyncRunRecord("r2", "oak", "users", "delta", "2024-05-02T10:00:00Z", "2024-05-02T10:01:00Z", "failed")
    lake.record_run(second)
    lake.record_run(first)
    assert [run["run_id"] for _, run in lake.run_records("oak")] == ["r1", "r2"]
    assert lake.watermarks("elm") == {} and list(lake.run_records("elm")) == []


def test_a_capability_report_round_trips(lake):
    report = CapabilityReport("oak", "generic", "1.1", "http://x", "2024-05-01T10:00:00Z", "oauth2", True)
    report.endpoints["users"] = EndpointCapability("users", True, True, True, filter_works=False, notes=["n"])
    assert load_capabilities(lake, "oak") is None
    assert store_capabilities(lake, report) == str(lake.state("oak").capabilities.path)
    assert load_capabilities(lake, "oak") == report


def test_the_guard_markers_round_trip_through_a_quarantine_a_release_and_a_discard(lake):
    report = GuardReport(students_before=10, students_removed=5, reasons=["would remove 5 of 10 active students"])
    mark_quarantined(lake, "oak", report, [])
    state = quarantine_state(lake, "oak")
    assert state is not None and state["reasons"] == report.reasons and state["students_removed"] == 5
    assert not release_requested(lake, "oak")
    request_release(lake, "oak")
    assert release_requested(lake, "oak")
    discard_quarantined(lake, "oak")
    assert quarantine_state(lake, "oak") is None and not release_requested(lake, "oak")
    reason = full_sync_reason(lake, "oak")
    assert reason is not None and reason.startswith("quarantined batches discarded on ")
    clear_after_publish(lake, "oak")
    assert full_sync_reason(lake, "oak") is None
    assert list(lake.state("oak").path.iterdir()) == []


def test_the_import_log_and_the_refusals_round_trip(lake, tmp_path):
    bundle = BundleRef("a.zip", tmp_path / "a.zip", 1_000.0)
    log = ImportLog(lake, "oak", "orgs")
    log.add(bundle, "imported", mode="bulk", batch_id="b1")
    assert ImportLog(lake, "oak", "orgs").entries == log.entries and ImportLog(lake, "oak", "orgs").keys() == {
        bundle.key
    }
    first = RefusalLog(lake, "oak").record(bundle, "bad manifest", "run-1")
    # Another endpoint's fetch meeting the same bundle keeps the first record.
    assert RefusalLog(lake, "oak").record(bundle, "other words", "run-2") == first
    RefusalLog(lake, "oak").record(bundle, "users.csv unreadable", "run-1", endpoint="users")
    refusals = RefusalLog(lake, "oak")
    assert refusals.concerning(bundle, "orgs") == first
    assert [refusal.reason for refusal in refusals.refusals] == ["bad manifest", "users.csv unreadable"]


def test_the_side_file_ledger_round_trips(lake):
    ledger = SideFileLedger.load(lake, "oak")
    ledger.apply("roles", "bulk", [SideRow("r1", "u1", True, {"role": "student"})])
    ledger.save()
    again = SideFileLedger.load(lake, "oak")
    assert again.rows == ledger.rows and again.items()["roles"] == {"u1": [{"role": "student"}]}
    assert lake.state("oak").side_file_ledger.exists()


def test_no_other_module_builds_a_state_folder_path():
    builders = [
        path.relative_to(REPO).as_posix()
        for path in (REPO / "roster_pipeline").rglob("*.py")
        if path.name != "district_state.py" and '"_state"' in path.read_text()
    ]
    assert builders == []
