"""The DuckDB roster: one transaction per district publish, and the published ``roster.duckdb`` file.

Analysts must never block a sync, nor a sync an analyst. In DuckDB any open connection to a file blocks a
writer in another process, so we never write the published file in place: each district is merged in one
transaction into a private work database (``<data>/work/roster-build.duckdb``), which is then checkpointed,
copied and atomically renamed over ``<data>/roster.duckdb``. An analyst who has the old file open keeps reading
that snapshot (the rename does not touch their open inode) and sees the new state on reconnecting. A failed merge
rolls back, and the published file is only ever replaced by a committed state.

The transaction's parts live beside this module: merge.py applies batches, derived_tables.py rebuilds the link
and derived tables, ops_log.py records what was applied, roster_schema.py creates the tables.
"""

from __future__ import annotations

import fcntl
import os
import shutil
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import replace
from pathlib import Path

import duckdb

from roster_pipeline.config.settings import Settings
from roster_pipeline.store.catalogue import DERIVED_TABLES, ROSTER_TABLES
from roster_pipeline.store.derived_tables import SchoolSettings, rebuild_derived, rebuild_links
from roster_pipeline.store.guard import (
    DistrictQuarantined,
    GuardPolicy,
    GuardReport,
    clear_after_publish,
    mark_quarantined,
    release_requested,
)
from roster_pipeline.store.lake import Lake
from roster_pipeline.store.merge import apply_batches, superseded_batches
from roster_pipeline.store.ops_log import mirror_ops, record_publish
from roster_pipeline.store.publish_result import PublishResult
from roster_pipeline.store.roster_schema import ensure_schema
from roster_pipeline.store.sql_files import load_sql, statements, used_params

GUARD_SQL = load_sql("guard")


class RosterWarehouse:
    """Owns the work database and the published ``roster.duckdb`` under a data folder."""

    def __init__(self, data_dir: Path, lake: Lake | None = None) -> None:
        paths = Settings.from_env(data_dir)
        self.data_dir = paths.data_dir
        self.lake = lake or Lake(paths.lake_dir)
        self.work_path = paths.work_path
        self.published_path = paths.roster_path

    def publish_district(
        self, district_id: str, schools: SchoolSettings | None = None, guard: GuardPolicy | None = None
    ) -> PublishResult:
        """Apply the district's unapplied batches and rebuild its derived tables in one transaction, then publish
        the database file. ``schools`` carries the registry's school section (default: all enabled).

        Raises DistrictQuarantined (after rolling back) when the mass-deletion guard trips.
        """
        guard = guard or GuardPolicy()
        if release_requested(self.lake, district_id):
            guard = replace(guard, released=True)
        # The lock spans the merge and the file copy: another publisher must not checkpoint the work database
        # while it is being copied.
        with self.publish_lock():
            # Under the lock no publish is copying, so any half-copied file is a killed publisher's.
            abandoned = self.clean_abandoned_publishes()
            result = self._merge(district_id, schools, guard)
            result.cleaned = abandoned
            self._publish_file()
            # Only after the publish, and under the lock so no other publish is listing the lake: drop what the
            # newest applied full batch supersedes, so the lake does not grow with every nightly run forever.
            result.pruned = self.lake.prune(result.superseded)
        clear_after_publish(self.lake, district_id)
        return result

    def _merge(self, district_id: str, schools: SchoolSettings | None, guard: GuardPolicy) -> PublishResult:
        with self._work_connection() as con:
            result = PublishResult(district_id, released=guard.released)
            con.execute("BEGIN TRANSACTION")
            try:
                for statement in statements(GUARD_SQL["snapshot"]):
                    con.execute(statement, used_params(statement, {"district": district_id}))
                apply_batches(con, self.lake, district_id, result)
                rebuild_links(con, district_id)
                rebuild_derived(con, district_id, schools or SchoolSettings())
                result.guard = self._evaluate_guard(con, district_id, result, guard)
                if result.guard.tripped and not guard.released:
                    raise DistrictQuarantined(district_id, result.guard)
                result.runs_imported += mirror_ops(con, self.lake, district_id)
                record_publish(
                    con,
                    district_id,
                    batches=result.batches,
                    students_removed=result.guard.students_removed,
                    links_removed=result.guard.links_removed,
                    released=guard.released,
                )
                con.execute("COMMIT")
            except DistrictQuarantined:
                con.execute("ROLLBACK")
                mark_quarantined(self.lake, district_id, result.guard, result.applied)
                raise
            except BaseException:
                con.execute("ROLLBACK")
                raise
            result.row_counts = self.row_counts(con, district_id)
            result.superseded = superseded_batches(con, self.lake, district_id)
            con.execute("CHECKPOINT")
        return result

    def _evaluate_guard(
        self, con: duckdb.DuckDBPyConnection, district_id: str, result: PublishResult, policy: GuardPolicy
    ) -> GuardReport:
        row = con.execute(GUARD_SQL["evaluate"], {"district": district_id}).fetchone()
        assert row is not None
        students_before, students_removed, links_before, links_removed, users, users_changed, enrolled, changed = row
        report = GuardReport(
            students_before=students_before,
            students_removed=students_removed,
            links_before=links_before,
            links_removed=links_removed,
            malformed=result.malformed,
            users_before=users,
            users_changed=users_changed,
            enrollments_before=enrolled,
            enrollments_changed=changed,
        )
        return report.evaluate(policy)

    def row_counts(self, con: duckdb.DuckDBPyConnection, district_id: str) -> dict[str, int]:
        counts = {}
        for table in (*ROSTER_TABLES, *DERIVED_TABLES):
            row = con.execute(f"SELECT count(*) FROM {table} WHERE district_id = ?", [district_id]).fetchone()
            counts[table] = int(row[0]) if row else 0
        return counts

    @contextmanager
    def _work_connection(self) -> Iterator[duckdb.DuckDBPyConnection]:
        self.work_path.parent.mkdir(parents=True, exist_ok=True)
        con = duckdb.connect(str(self.work_path))
        try:
            ensure_schema(con)
            yield con
        finally:
            con.close()

    @contextmanager
    def publish_lock(self) -> Iterator[None]:
        """Held by every publish (and by anything that changes what a publish reads, such as `discard`).

        The Dagster pool already serialises roster writers; this lock also covers CLI runs outside Dagster."""
        self.work_path.parent.mkdir(parents=True, exist_ok=True)
        with open(self.work_path.with_suffix(".lock"), "w") as handle:
            fcntl.flock(handle, fcntl.LOCK_EX)
            try:
                yield
            finally:
                fcntl.flock(handle, fcntl.LOCK_UN)

    def clean_abandoned_publishes(self) -> list[str]:
        """Remove half-copied ``.roster.duckdb.*.publishing`` files; call only under the publish lock."""
        removed = []
        for leftover in self.published_path.parent.glob(f".{self.published_path.name}.*.publishing"):
            leftover.unlink(missing_ok=True)
            removed.append(leftover.name)
        return removed

    def _publish_file(self) -> None:
        tmp = self.published_path.with_name(f".{self.published_path.name}.{uuid.uuid4().hex[:8]}.publishing")
        shutil.copyfile(self.work_path, tmp)
        with open(tmp, "rb") as handle:  # durable before it becomes the published file
            os.fsync(handle.fileno())
        os.replace(tmp, self.published_path)
