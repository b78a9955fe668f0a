"""The instance storage of the project's dagster.yaml: Dagster's SQLite files, with connections kept open."""

from __future__ import annotations

import multiprocessing
import shutil
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import dagster as dg
import pytest
from dagster._core.storage.dagster_run import DagsterRun
from sqlalchemy import event
from sqlalchemy.pool import Pool

from roster_pipeline.config.settings import instance_class, project_dagster_yaml
from roster_pipeline.defs.instance_storage import (
    PooledSqliteEventLogStorage,
    PooledSqliteScheduleStorage,
    RosterInstance,
)
from roster_pipeline.sandbox.generator import DistrictSpec, generate_district
from roster_pipeline_tests.pipeline_fixtures import PipelineWorld


@contextmanager
def pooled_instance(home: Path) -> Iterator[dg.DagsterInstance]:
    with dg.instance_for_test(temp_dir=str(home), overrides=instance_class()) as instance:
        yield instance


@contextmanager
def dagster_sqlite_instance(home: Path) -> Iterator[dg.DagsterInstance]:
    """Dagster's own `storage: sqlite` on the same folder (what a user switching back would run)."""
    overrides = {"storage": {"sqlite": {"base_dir": str(home)}}}
    with dg.instance_for_test(temp_dir=str(home), overrides=overrides) as instance:
        yield instance


@contextmanager
def counted_connections() -> Iterator[list[object]]:
    """Every database connection SQLAlchemy opens in the block."""
    opened: list[object] = []

    def on_connect(dbapi_connection: object, record: object) -> None:
        opened.append(dbapi_connection)

    event.listen(Pool, "connect", on_connect)
    try:
        yield opened
    finally:
        event.remove(Pool, "connect", on_connect)


def a_run(instance: dg.DagsterInstance, job_name: str = "district_sync") -> DagsterRun:
    return instance.add_run(DagsterRun(job_name=job_name))


def test_the_project_instance_stores_in_its_own_folder_with_the_pooled_storage(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("DAGSTER_HOME", raising=False)  # as `dagster definitions validate` or a notebook opens it
    shutil.copyfile(project_dagster_yaml(), tmp_path / "dagster.yaml")
    with dg.DagsterInstance.from_config(str(tmp_path)) as instance:
        assert isinstance(instance, RosterInstance)
        assert isinstance(instance.event_log_storage, PooledSqliteEventLogStorage)
        assert isinstance(instance.schedule_storage, PooledSqliteScheduleStorage)
        run = a_run(instance)
        # a run's worker process builds its instance from the instance's reference
        rebuilt = dg.DagsterInstance.from_ref(instance.get_ref())
        assert isinstance(rebuilt.event_log_storage, PooledSqliteEventLogStorage)
        assert rebuilt.get_run_by_id(run.run_id) is not None
    assert (tmp_path / "history" / "runs.db").exists()  # Dagster's own layout


def test_a_district_sync_opens_a_handful_of_connections(world: PipelineWorld) -> None:
    world.add_rest_district(generate_district(DistrictSpec("oak", seed=4, schools=1, students_per_school=50)))

    with counted_connections() as opened:
        result = world.sync("oak")

    assert result.success, result.error
    # Dagster's own SQLite storage opens (and closes) a connection per transaction: ~600 for this sync.
    assert len(opened) < 30, len(opened)


def test_the_ui_sees_a_running_runs_events_as_they_commit(tmp_path: Path) -> None:
    """The UI follows a running run by watching its event file; commits through kept-open connections land in the
    WAL beside it (no checkpoint per event), and the UI's watcher must wake on them."""
    with pooled_instance(tmp_path) as writer, pooled_instance(tmp_path) as reader:
        run = a_run(writer)
        writer.report_engine_event("first", run)  # the run's file exists before the UI watches it
        seen: list[str] = []
        arrived = threading.Event()

        def on_event(entry: dg.EventLogEntry, cursor: str) -> None:
            seen.append(entry.message)
            if entry.message == "third":
                arrived.set()

        reader.watch_event_logs(run.run_id, None, on_event)
        try:
            writer.report_engine_event("second", run)
            writer.report_engine_event("third", run)
            assert arrived.wait(10), seen
        finally:
            reader.end_watch_event_logs(run.run_id, on_event)
    assert seen[-2:] == ["second", "third"]


def test_a_runs_file_commits_without_waiting_for_the_disk_and_the_index_waits(tmp_path: Path) -> None:
    with pooled_instance(tmp_path) as instance:
        run = a_run(instance)
        instance.report_engine_event("written", run)
        storage = instance.event_log_storage
        assert isinstance(storage, PooledSqliteEventLogStorage)
        with storage.run_connection(run.run_id) as conn:
            run_file = conn.exec_driver_sql("PRAGMA synchronous").scalar()
        with storage.index_connection() as conn:
            index = conn.exec_driver_sql("PRAGMA synchronous").scalar()
    assert (run_file, index) == (1, 2)  # NORMAL, FULL


def test_dagsters_own_sqlite_storage_reads_what_it_wrote(tmp_path: Path) -> None:
    with pooled_instance(tmp_path) as instance:
        run = a_run(instance)
        instance.report_engine_event("written with kept-open connections", run)
        instance.add_dynamic_partitions("district", ["oak"])
    with dagster_sqlite_instance(tmp_path) as instance:
        assert instance.get_run_by_id(run.run_id) is not None
        messages = [entry.message for entry in instance.all_logs(run.run_id)]
        assert "written with kept-open connections" in messages
        assert instance.get_dynamic_partitions("district") == ["oak"]


def _report_in_child(instance: dg.DagsterInstance, run: DagsterRun) -> None:
    instance.report_engine_event("from a forked child", run)


def test_a_forked_process_does_not_share_its_parents_connections(tmp_path: Path) -> None:
    with pooled_instance(tmp_path) as instance:
        run = a_run(instance)
        instance.report_engine_event("parent, before the fork", run)  # the parent now holds open connections
        child = multiprocessing.get_context("fork").Process(target=_report_in_child, args=(instance, run))
        child.start()
        child.join(60)
        assert child.exitcode == 0
        instance.report_engine_event("parent, after the fork", run)
        messages = [entry.message for entry in instance.all_logs(run.run_id)]
    assert messages[-3:] == ["parent, before the fork", "from a forked child", "parent, after the fork"]
