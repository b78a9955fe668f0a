"""The roster store: each district merged in its own work database, then published into the DuckLake roster.

Each district has a private work database (``<data>/work/district=<id>.duckdb``) holding its merged state, the
guard's baseline and its ops records. A publish applies the district's new lake batches there in one transaction
(rolled back whole on failure or when the guard trips), then replaces the district's rows in the roster in one
DuckLake commit (district_publish.py). Districts share nothing but the roster's catalog, so several publish at once;
readers see the last committed snapshot and never block a publish.

The transaction's parts live beside this module: merge.py applies batches, derived_tables.py rebuilds the link
and derived tables, ops_log.py records what was applied, roster_schema.py creates the tables.
"""

from __future__ import annotations

import fcntl
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor, wait
from contextlib import contextmanager
from dataclasses import replace
from functools import partial
from pathlib import Path
from typing import Any, TypeVar

import duckdb

from roster_pipeline.config.settings import Settings, scaled_size
from roster_pipeline.store.derived_tables import SchoolSettings, rebuild_derived, rebuild_links
from roster_pipeline.store.district_publish import (
    Baseline,
    PublishedElsewhere,
    current_database,
    publish_district_rows,
)
from roster_pipeline.store.district_reads import read_district
from roster_pipeline.store.guard import (
    DistrictQuarantined,
    GuardPolicy,
    GuardReport,
    clear_after_publish,
    mark_quarantined,
    release_requested,
)
from roster_pipeline.store.lake import Lake
from roster_pipeline.store.lake_store import LakeBucket
from roster_pipeline.store.lakehouse import (
    database_tables,
    load_extensions,
    open_duckdb,
    quoted_path,
    remove_spill_files,
    wait_for_lock,
)
from roster_pipeline.store.merge import apply_batches, superseded_batches
from roster_pipeline.store.object_storage import create_files_secret
from roster_pipeline.store.ops_log import mirror_ops, record_publish
from roster_pipeline.store.publish_result import PublishResult
from roster_pipeline.store.roster_schema import STATE_SCHEMA, ensure_schema
from roster_pipeline.store.sql_files import load_sql, statements, used_params
from roster_pipeline.store.work_cache import bring_up_to_date

GUARD_SQL = load_sql("guard")
# How many times a publish starts again when another worker published the district while it merged.
PUBLISH_ATTEMPTS = 3

T = TypeVar("T")
# Compression the work databases do without (see RosterWarehouse._work_connection).
WORK_UNUSED_COMPRESSION = "fsst"
# DuckDB threads for one district's merge and publish. One was faster than two on a 2-core host (a 20,000-student
# district: 2.34 s against 2.64 s, each statement too small to gain from a second thread) and held ~40 MB less at its
# peak; a host with more cores publishes several districts side by side instead (the `roster_duckdb` pool).
WORK_THREADS = 1
# A district whose merge outgrows the work memory limit is merged again under this many times the limit.
MEMORY_RETRY_FACTOR = 4
# How long a publish waits for another publish of the same district (or a `discard`) to finish: the largest
# districts publish in well under a minute; a holder still there after this is hung, not slow.
PUBLISH_LOCK_WAIT_S = 1800.0
PUBLISH_LOCK_POLL_S = 0.05


class MemoryLimit:
    """The work connection's DuckDB memory limit, raised once when a step outgrows it.

    Restoring from the roster, the merge, the roster's commit and the reads beside it each roll back (or only read)
    when DuckDB runs out of memory, so such a step is run again under MEMORY_RETRY_FACTOR times the limit (``raised``
    names it), and the rest of the publish keeps that limit."""

    def __init__(self, con: duckdb.DuckDBPyConnection, limit: str) -> None:
        self.con, self.limit, self.raised = con, limit, ""

    def enough(self, step: Callable[[], T]) -> T:
        try:
            return step()
        except duckdb.OutOfMemoryException:
            if self.raised:
                raise
            self.raised = scaled_size(self.limit, MEMORY_RETRY_FACTOR)
            self.con.execute("SET memory_limit = ?", [self.raised])
            return step()


class ReadsFailed(RuntimeError):
    """The roster took a district's rows, but its row counts or data checks could not be read back."""


class RosterWarehouse:
    """Owns the districts' work databases and publishes them into the roster (a DuckLake) under a data folder."""

    def __init__(self, data_dir: Path, lake: Lake | None = None) -> None:
        self.paths = Settings.from_env(data_dir)
        self.data_dir = self.paths.data_dir
        self.lake = lake or Lake(self.paths.lake_root)

    def publish_district(
        self, district_id: str, schools: SchoolSettings | None = None, guard: GuardPolicy | None = None
    ) -> PublishResult:
        """Apply the district's unapplied batches and rebuild its derived tables in one transaction, then publish
        the district's rows to the roster. ``schools`` carries the registry's school section (default: all enabled).

        Raises DistrictQuarantined (after rolling back) when the mass-deletion guard trips, and ReadsFailed when the
        roster took the district's rows but its row counts or data checks could not be read back.
        """
        guard = guard or GuardPolicy()
        if release_requested(self.lake, district_id):
            guard = replace(guard, released=True)
        with self.publish_lock(district_id):
            # DuckDB spills a merge beyond its memory limit into `<work database>.tmp/`; under this lock no other
            # process has the work database open, so what is there was left by a killed merge.
            work = self.work_path(district_id)
            spilled = remove_spill_files(work.with_name(work.name + ".tmp"))
            with self._work_connection(district_id) as con:
                result = self._merge_and_publish(con, district_id, schools, guard)
            result.leftover_spill_removed = spilled
            # Only after the publish, and under the district's lock so no other publish of it is listing the lake:
            # drop what the newest applied full batch supersedes, so the lake does not grow forever.
            result.pruned = self.lake.prune(result.superseded)
        clear_after_publish(self.lake, district_id)
        if result.reads_failed is not None:  # only now: the publish's bookkeeping is done, a release used up
            raise ReadsFailed(
                f"district '{district_id}': published, but reading back its row counts and data checks failed: "
                f"{result.reads_failed}"
            ) from result.reads_failed
        return result

    @property
    def work_is_a_cache(self) -> bool:
        """Whether each worker keeps its own work databases: the lake is on a bucket, so workers need share no
        folder (work_cache.py). A folder lake keeps them beside it, shared by every worker that mounts it."""
        return isinstance(self.lake.store, LakeBucket)

    def _merge_and_publish(
        self, con: duckdb.DuckDBPyConnection, district_id: str, schools: SchoolSettings | None, guard: GuardPolicy
    ) -> PublishResult:
        """Merge and publish; where the work database is a cache, from the roster's newest publish of the district,
        starting again (a bounded number of times) when another worker publishes it meanwhile."""
        memory = MemoryLimit(con, self.paths.work_memory_limit)
        if not self.work_is_a_cache:
            result = memory.enough(lambda: self._merge(con, district_id, schools, guard))
            self._publish(con, result, memory)
            result.memory_limit_raised_to = memory.raised
            return result
        for attempt in range(1, PUBLISH_ATTEMPTS + 1):
            baseline, restored = memory.enough(partial(bring_up_to_date, con, self.paths, district_id))
            result = memory.enough(lambda: self._merge(con, district_id, schools, guard))
            result.restored_rows = restored
            try:
                self._publish(con, result, memory, based_on=baseline)
                result.memory_limit_raised_to = memory.raised
                return result
            except PublishedElsewhere:
                if attempt == PUBLISH_ATTEMPTS:
                    raise
        raise AssertionError("unreachable")

    def _merge(
        self, con: duckdb.DuckDBPyConnection, district_id: str, schools: SchoolSettings | None, guard: GuardPolicy
    ) -> PublishResult:
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
        result.superseded = superseded_batches(con, self.lake, district_id)
        return result

    def _publish(
        self,
        con: duckdb.DuckDBPyConnection,
        result: PublishResult,
        memory: MemoryLimit,
        based_on: Baseline | None = None,
    ) -> None:
        """Commit the merged district to the roster while a second cursor reads its row counts and data checks back
        from the work database the merge committed (district_reads.py): DuckDB releases the GIL, so the commit and
        the reads use both cores. Either one that ran out of memory beside the other is run again on its own."""
        district_id = result.district_id
        commit = partial(publish_district_rows, con, self.paths, district_id, based_on=based_on)
        with ThreadPoolExecutor(max_workers=1, thread_name_prefix="district-reads") as pool:
            reads = pool.submit(read_district, con, district_id)
            try:
                commit()
            except duckdb.OutOfMemoryException:
                wait([reads])  # the reads shared the memory limit: the commit is tried again alone
                memory.enough(commit)
            try:
                try:
                    read = reads.result()
                except duckdb.OutOfMemoryException:
                    read = memory.enough(partial(read_district, con, district_id))
            except Exception as error:  # the roster has the rows: publish_district finishes, then says so
                result.reads_failed = error
                return
        result.row_counts, result.check_findings = read.row_counts, read.findings

    def _evaluate_guard(
        self, con: duckdb.DuckDBPyConnection, district_id: str, result: PublishResult, policy: GuardPolicy
    ) -> GuardReport:
        row = [_count(con, statement, {"district": district_id}) for statement in statements(GUARD_SQL["evaluate"])]
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

    def work_path(self, district_id: str) -> Path:
        return self.paths.work_path(district_id)

    @contextmanager
    def _work_connection(self, district_id: str) -> Iterator[duckdb.DuckDBPyConnection]:
        path = self.work_path(district_id)
        path.parent.mkdir(parents=True, exist_ok=True)
        fresh = not path.exists()
        con = open_duckdb(path)
        con.execute("SET memory_limit = ?", [self.paths.work_memory_limit])
        # The commit writes the merged tables into the file, and choosing FSST for each string column was ~40% of
        # that (a 20,000-student district's commit: 0.80 s, 0.5 s without FSST). A work database is private to its
        # district and read whole by the next merge, so it trades size (about twice as large) for time.
        con.execute(f"SET disabled_compression_methods = '{WORK_UNUSED_COMPRESSION}'")
        con.execute(f"SET threads = {WORK_THREADS}")
        if isinstance(self.lake.store, LakeBucket):  # the merge reads the batches' Parquet parts from the bucket
            load_extensions(con, ("httpfs",))
            create_files_secret(con, self.lake.store.url)
        try:
            ensure_schema(con)
            if fresh:
                migrate_from_legacy(con, self.paths.legacy_work_path, district_id)
            yield con
        finally:
            con.close()

    @contextmanager
    def publish_lock(self, district_id: str) -> Iterator[None]:
        """Held by every publish of the district (and by anything that changes what it reads, such as `discard`).

        The Dagster pool bounds how many roster writers run at once; this lock also covers CLI runs outside Dagster,
        and keeps two publishes of one district from interleaving. A killed holder's lock goes with its process; a
        live one is waited for at most PUBLISH_LOCK_WAIT_S, then TimeoutError says so (the batches wait in the lake
        for the next publish)."""
        path = self.paths.work_dir / f"district={district_id}.lock"
        path.parent.mkdir(parents=True, exist_ok=True)
        with open(path, "w") as handle:
            held = f"another publish or discard of district '{district_id}' is still running"
            wait_for_lock(handle, PUBLISH_LOCK_WAIT_S, held, PUBLISH_LOCK_POLL_S)
            try:
                yield
            finally:
                fcntl.flock(handle, fcntl.LOCK_UN)


def migrate_from_legacy(con: duckdb.DuckDBPyConnection, legacy: Path, district_id: str) -> int:
    """Seed a new district work database with the district's rows from a pre-DuckLake shared work database, so
    an upgrade keeps each district's merged state, watermarks and guard baseline. Returns the rows copied."""
    if not legacy.exists():
        return 0
    copied = 0
    con.execute(f"ATTACH '{quoted_path(legacy)}' AS legacy (READ_ONLY)")
    try:
        tables, known = database_tables(con, current_database(con)), set(database_tables(con, "legacy"))
        for schema, table in tables:
            if (schema, table) not in known or schema == STATE_SCHEMA:  # bookkeeping of the database itself
                continue
            row = con.execute(
                f"INSERT INTO {schema}.{table} BY NAME SELECT * FROM legacy.{schema}.{table} WHERE district_id = ?",
                [district_id],
            ).fetchone()
            copied += int(row[0]) if row else 0
    finally:
        con.execute("DETACH legacy")
    return copied


def _count(con: duckdb.DuckDBPyConnection, statement: str, params: dict[str, Any]) -> int:
    """The single count a statement selects."""
    row = con.execute(statement, used_params(statement, params)).fetchone()
    return int(row[0]) if row else 0
