"""The DuckDB roster: applying landed batches to current-state tables and publishing ``roster.duckdb``.

Analysts must never block a sync, nor a sync an analyst. In DuckDB any open connection to a file blocks a
writer in another process, so we never write the published file in place: each district is merged in one
transaction into a private work database (``<data>/work/roster-build.duckdb``), which is then checkpointed,
copied and atomically renamed over ``<data>/roster.duckdb``. An analyst who has the old file open keeps reading
that snapshot (the rename does not touch their open inode) and sees the new state on reconnecting. A failed merge
rolls back, and the published file is only ever replaced by a committed state.
"""

from __future__ import annotations

import fcntl
import os
import shutil
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from importlib import resources
from pathlib import Path
from typing import Any

import duckdb
import orjson
import polars as pl

from roster_pipeline.oneroster.flatten import lake_schema
from roster_pipeline.store.guard import (
    DistrictQuarantined,
    GuardPolicy,
    GuardReport,
    clear_after_publish,
    mark_quarantined,
    release_requested,
)
from roster_pipeline.store.lake import Batch, Lake

# Endpoint → state table. The analyst-facing view of each is the name without `_all` (see sql/views.sql).
STATE_TABLES: dict[str, str] = {
    "orgs": "orgs_all",
    "academicSessions": "academic_sessions_all",
    "users": "users_all",
    "courses": "courses_all",
    "classes": "classes_all",
    "enrollments": "enrollments_all",
    "demographics": "demographics_all",
}

LINK_TABLES_DDL = {
    "user_orgs_all": "district_id VARCHAR, user_sourced_id VARCHAR, org_sourced_id VARCHAR, role VARCHAR, "
    "user_is_deleted BOOLEAN",
    "user_agents_all": "district_id VARCHAR, user_sourced_id VARCHAR, agent_sourced_id VARCHAR, role VARCHAR, "
    "user_is_deleted BOOLEAN",
    "class_terms_all": "district_id VARCHAR, class_sourced_id VARCHAR, term_sourced_id VARCHAR, "
    "class_is_deleted BOOLEAN",
    "guardian_student_links_all": "district_id VARCHAR, student_sourced_id VARCHAR, guardian_sourced_id VARCHAR, "
    "relationship VARCHAR, source VARCHAR, excluded_reason VARCHAR, pickup_allowed BOOLEAN, custody_note VARCHAR, "
    "valid_until DATE",
    "guardian_link_history": "district_id VARCHAR, student_sourced_id VARCHAR, guardian_sourced_id VARCHAR, "
    "relationship VARCHAR, source VARCHAR, valid_from TIMESTAMPTZ NOT NULL, valid_to TIMESTAMPTZ",
}

# Derived analyst tables (DESIGN.md), computed from the roster tables in the same publish transaction.
DERIVED_TABLES = (  # in dependency order: a multi-asset yields its outputs topologically
    "guardian_student_links",
    "guardian_link_history",
    "student_schools",
    "school_mappings",
    "student_contacts",
)

# The analyst-facing tables of DESIGN.md, each a view over a state table.
ROSTER_TABLES = (
    "orgs",
    "schools",
    "academic_sessions",
    "users",
    "students",
    "teachers",
    "guardians",
    "user_orgs",
    "user_agents",
    "classes",
    "courses",
    "enrollments",
    "demographics",
)


def load_sql(name: str) -> dict[str, str]:
    """The named statements of ``sql/<name>.sql`` (blocks headed ``-- name: <statement>``)."""
    text = resources.files("roster_pipeline.store.sql").joinpath(f"{name}.sql").read_text(encoding="utf-8")
    statements: dict[str, str] = {}
    current: str | None = None
    for line in text.splitlines():
        if line.startswith("-- name:"):
            current = line.split(":", 1)[1].strip()
            statements[current] = ""
        elif current is not None:
            statements[current] += line + "\n"
    return {key: value.strip() for key, value in statements.items()}


MERGE_SQL = load_sql("merge_batch")
LINKS_SQL = load_sql("links")
VIEWS_SQL = load_sql("views")
DERIVED_SQL = load_sql("derived")
DERIVED_VIEWS_SQL = load_sql("derived_views")
GUARD_SQL = load_sql("guard")
OPS_SQL = load_sql("ops")


@dataclass(frozen=True)
class SchoolSettings:
    """The registry's `schools` section for one district: (sourced_id, site_id, enabled) overrides; and its
    `pickup_metadata`: (column, guardian|student, metadata key) triples."""

    default_enabled: bool = True
    sites: tuple[tuple[str, str, bool], ...] = ()
    pickup: tuple[tuple[str, str, str], ...] = ()

    def pickup_params(self) -> dict[str, str | None]:
        """The guardian_links statement's pickup parameters: whose metadata and which JSON path, per column."""
        mapped = {column: (user, key) for column, user, key in self.pickup}
        params: dict[str, str | None] = {}
        for column in ("pickup_allowed", "do_not_release", "custody_note", "valid_until"):
            user, key = mapped.get(column, ("guardian", None))
            params[f"{column}_user"] = user
            params[f"{column}_path"] = "$." + ".".join(f'"{part}"' for part in key.split(".")) if key else None
        return params


@dataclass
class EndpointPublish:
    endpoint: str
    batches: int = 0
    records: int = 0
    tombstoned: int = 0
    held: int = 0  # unseen records a full batch could not confirm gone, so kept


@dataclass
class PublishResult:
    """What one district's publish applied, for asset metadata and the CLI summary."""

    district_id: str
    endpoints: dict[str, EndpointPublish] = field(default_factory=dict)
    row_counts: dict[str, int] = field(default_factory=dict)
    runs_imported: int = 0
    malformed: int = 0
    guard: GuardReport = field(default_factory=GuardReport)
    released: bool = False
    superseded: list[Batch] = field(default_factory=list)
    pruned: int = 0
    cleaned: list[str] = field(default_factory=list)  # leftovers of killed publishes removed first
    applied: list[Batch] = field(default_factory=list)  # the batches this publish applied (or a quarantine refused)

    @property
    def batches(self) -> int:
        return sum(e.batches for e in self.endpoints.values())


class RosterWarehouse:
    """Owns the work database and the published ``roster.duckdb`` under a data folder."""

    def __init__(self, data_dir: Path, lake: Lake | None = None) -> None:
        self.data_dir = Path(data_dir)
        self.lake = lake or Lake(self.data_dir / "lake")  # Settings.lake_dir
        self.work_path = self.data_dir / "work" / "roster-build.duckdb"  # Settings.work_path
        self.published_path = self.data_dir / "roster.duckdb"  # Settings.roster_path

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
                self._run(con, GUARD_SQL["snapshot"], district_id)
                self._apply_batches(con, district_id, result)
                self._rebuild_links(con, district_id)
                self._rebuild_derived(con, district_id, schools or SchoolSettings())
                result.guard = self._evaluate_guard(con, district_id, result, guard)
                if result.guard.tripped and not guard.released:
                    raise DistrictQuarantined(district_id, result.guard)
                self._mirror_ops(con, district_id, result)
                con.execute(
                    OPS_SQL["record_publish"],
                    {
                        "district": district_id,
                        "batches": result.batches,
                        "students_removed": result.guard.students_removed,
                        "links_removed": result.guard.links_removed,
                        "released": guard.released,
                    },
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
            result.superseded = self._superseded_batches(con, district_id)
            con.execute("CHECKPOINT")
        return result

    def _superseded_batches(self, con: duckdb.DuckDBPyConnection, district_id: str) -> list[Batch]:
        """Applied batches committed before their endpoint's newest applied full batch began its snapshot.

        What remains (that full batch and every batch committed after its snapshot began) rebuilds the
        district's current records; a delta committed while that full sync was paging may hold newer versions,
        so it is kept. Records deleted before the full snapshot are not rebuilt as tombstones.
        """
        newest_full = dict(con.execute(OPS_SQL["newest_applied_full"], {"district": district_id}).fetchall())
        applied = set(con.execute(OPS_SQL["applied_batches"], {"district": district_id}).fetchall())
        superseded = []
        for endpoint, full_id in newest_full.items():
            batches = self.lake.batches(endpoint, district_id)
            full = next((b for b in batches if b.batch_id == full_id), None)
            if full is None or full.snapshot_at is None:
                continue
            superseded += [
                b
                for b in batches
                if (endpoint, b.batch_id) in applied and b.batch_id < full_id and b.committed < full.snapshot_at
            ]
        return superseded

    def _run(self, con: duckdb.DuckDBPyConnection, block: str, district_id: str) -> None:
        for statement in _statements(block):
            con.execute(statement, _used(statement, {"district": district_id}))

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

    def _apply_batches(self, con: duckdb.DuckDBPyConnection, district_id: str, result: PublishResult) -> None:
        applied = set(con.execute(OPS_SQL["applied_batches"], {"district": district_id}).fetchall())
        for endpoint, table in STATE_TABLES.items():
            summary = result.endpoints.setdefault(endpoint, EndpointPublish(endpoint))
            # Every landed batch not applied yet, in commit order — not only those after the newest applied one,
            # since a slow run can commit its batch after a faster, later run's batch was published.
            pending = [b for b in self.lake.batches(endpoint, district_id) if (endpoint, b.batch_id) not in applied]
            for batch in pending:
                active, tombstoned, duplicates, held = self._apply_batch(con, table, batch)
                result.applied.append(batch)
                result.malformed += batch.malformed
                summary.batches += 1
                summary.records += batch.records
                summary.tombstoned += tombstoned
                summary.held += held
                con.execute(
                    OPS_SQL["record_applied"],
                    {
                        "district": district_id,
                        "endpoint": endpoint,
                        "batch_id": batch.batch_id,
                        "mode": applied_mode(batch, held),
                        "records": batch.records,
                        "active": active,
                        "tombstoned": tombstoned,
                        "duplicates": duplicates,
                    },
                )

    def _apply_batch(self, con: duckdb.DuckDBPyConnection, table: str, batch: Batch) -> tuple[int, int, int, int]:
        """Merge one batch; returns its active records, tombstones, duplicates and held (unconfirmed) tombstones."""
        params: dict[str, Any] = {"district": batch.district_id, "files": batch.files}
        duplicates_row = con.execute(MERGE_SQL["count_duplicates"], params).fetchone()
        duplicates = int(duplicates_row[0]) if duplicates_row else 0
        con.execute(MERGE_SQL["stage"], params)
        active_row = con.execute(MERGE_SQL["count_staged"]).fetchone()
        active = int(active_row[0]) if active_row else 0
        snapshot = {"district": batch.district_id, "snapshot_at": batch.snapshot_at}
        unseen = {
            **snapshot,
            "full": tombstones_unseen(batch),
            "spared": list(batch.malformed_ids or []),
            "confirm": batch.confirm_unseen,
            "gone": list(batch.confirmed_gone),
        }
        con.execute(MERGE_SQL["find_unseen"].format(table=table), unseen)
        held_row = con.execute(MERGE_SQL["count_held"]).fetchone()
        held = int(held_row[0]) if held_row else 0
        tombstone = {"district": batch.district_id, "snapshot_at": batch.snapshot_at, "batch_id": batch.batch_id}
        tombstoned_row = con.execute(MERGE_SQL["tombstone_unseen"].format(table=table), tombstone).fetchone()
        tombstoned = int(tombstoned_row[0]) if tombstoned_row else 0
        con.execute(MERGE_SQL["drop_older_versions"].format(table=table), snapshot)
        con.execute(MERGE_SQL["remove_replaced"].format(table=table), {"district": batch.district_id})
        con.execute(
            MERGE_SQL["insert_staged"].format(table=table),
            {"batch_id": batch.batch_id, "snapshot_at": batch.snapshot_at},
        )
        return active, tombstoned, duplicates, held

    def _rebuild_links(self, con: duckdb.DuckDBPyConnection, district_id: str) -> None:
        for block in LINKS_SQL.values():
            for statement in _statements(block):
                con.execute(statement, {"district": district_id})

    def _rebuild_derived(self, con: duckdb.DuckDBPyConnection, district_id: str, schools: SchoolSettings) -> None:
        params = {"district": district_id, "default_enabled": schools.default_enabled}
        for statement in _statements(DERIVED_SQL["school_settings"]):
            con.execute(statement, _used(statement, params))
        for sourced_id, site_id, enabled in schools.sites:
            con.execute(
                DERIVED_SQL["insert_school_setting"],
                {"district": district_id, "sourced_id": sourced_id, "site_id": site_id, "enabled": enabled},
            )
        published_at = {"district": district_id, "published_at": datetime.now(UTC), **schools.pickup_params()}
        for name in ("guardian_links", "link_history"):
            for statement in _statements(DERIVED_SQL[name]):
                con.execute(statement, _used(statement, published_at))

    def _mirror_ops(self, con: duckdb.DuckDBPyConnection, district_id: str, result: PublishResult) -> None:
        for endpoint, state in self.lake.watermarks(district_id).items():
            con.execute(
                OPS_SQL["upsert_watermark"],
                {
                    "district": district_id,
                    "endpoint": endpoint,
                    "watermark": state.get("watermark"),
                    "batch_id": state.get("batch_id"),
                    "updated_at": state.get("updated_at"),
                },
            )
        known = {row[0] for row in con.execute(OPS_SQL["known_runs"], {"district": district_id}).fetchall()}
        for key, run in self.lake.run_records(district_id):
            if key in known:
                continue
            con.execute(OPS_SQL["insert_run"], _run_params(key, run))
            result.runs_imported += 1

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


def tombstones_unseen(batch: Batch) -> bool:
    """Whether a batch may tombstone what it did not see: only a full batch, and only if every source record it
    dropped as malformed is known by sourcedId (those are spared) — a record missing because its row was
    unreadable has not been deleted."""
    return batch.mode == "full" and (batch.malformed == 0 or batch.malformed_ids is not None)


def applied_mode(batch: Batch, held: int = 0) -> str:
    """The batch's mode as ``ops.applied_batches`` shows it, with why it tombstoned less than it did not see."""
    if batch.mode == "full" and not tombstones_unseen(batch):
        return f"full, no tombstones ({batch.malformed} malformed records, not all identifiable)"
    notes = []
    if batch.mode == "full" and batch.malformed:
        notes.append(f"{batch.malformed} malformed records spared")
    if held:
        notes.append(f"{held} unseen records held (not confirmed gone)")
    return ", ".join([batch.mode, *notes])


def ensure_schema(con: duckdb.DuckDBPyConnection) -> None:
    """Create the state tables (typed from the lake schema), link tables, ops schema and views if missing."""
    for endpoint, table in STATE_TABLES.items():
        schema = {name: _duckdb_type(dtype) for name, dtype in lake_schema(endpoint).items()}
        columns = ", ".join(f'"{name}" {kind}' for name, kind in schema.items())
        con.execute(
            f"CREATE TABLE IF NOT EXISTS {table} ({columns}, is_deleted BOOLEAN NOT NULL, batch_id VARCHAR, "
            f"snapshot_at TIMESTAMPTZ, tombstoned_at TIMESTAMPTZ, PRIMARY KEY (district_id, sourced_id))"
        )
        schema.update(snapshot_at="TIMESTAMPTZ", tombstoned_at="TIMESTAMPTZ")
        # A database built by an older version gains the columns the lake schema has grown since (e.g. the
        # OneRoster 1.2 user fields); existing rows read NULL there until their next batch.
        for name, kind in schema.items():
            con.execute(f'ALTER TABLE {table} ADD COLUMN IF NOT EXISTS "{name}" {kind}')
    for table, columns in LINK_TABLES_DDL.items():
        con.execute(f"CREATE TABLE IF NOT EXISTS {table} ({columns})")
    # A database built before the pickup columns existed gains them (NULL until the next publish).
    for column, kind in (("pickup_allowed", "BOOLEAN"), ("custody_note", "VARCHAR"), ("valid_until", "DATE")):
        con.execute(f"ALTER TABLE guardian_student_links_all ADD COLUMN IF NOT EXISTS {column} {kind}")
    for statement in _statements(OPS_SQL["schema"]):
        con.execute(statement)
    for statement in _statements(VIEWS_SQL["views"]) + _statements(DERIVED_VIEWS_SQL["views"]):
        con.execute(statement)


def _duckdb_type(dtype: Any) -> str:  # a polars DataType instance or class
    if isinstance(dtype, pl.List):
        return f"{_duckdb_type(dtype.inner)}[]"
    if isinstance(dtype, pl.Struct):
        return "STRUCT(" + ", ".join(f'"{f.name}" {_duckdb_type(f.dtype)}' for f in dtype.fields) + ")"
    if isinstance(dtype, pl.Datetime):
        return "TIMESTAMPTZ" if dtype.time_zone else "TIMESTAMP"
    if isinstance(dtype, pl.Boolean):
        return "BOOLEAN"
    return "VARCHAR"


def _used(statement: str, params: dict[str, Any]) -> dict[str, Any]:
    """The parameters a statement names (DuckDB refuses unused named parameters)."""
    return {key: value for key, value in params.items() if f"${key}" in statement}


def _statements(block: str) -> list[str]:
    """The statements of a block, without comment lines (our SQL files keep `;` out of comments)."""
    code = "\n".join(line for line in block.splitlines() if not line.lstrip().startswith("--"))
    return [statement.strip() for statement in code.split(";") if statement.strip()]


def _run_params(key: str, run: dict[str, Any]) -> dict[str, Any]:
    names = [
        "run_id",
        "mode",
        "started_at",
        "finished_at",
        "outcome",
        "records",
        "pages",
        "bytes",
        "tombstones",
        "watermark_from",
        "watermark_to",
        "batch_id",
        "error",
    ]
    params = {name: run.get(name) for name in names}
    details = run.get("extra") or None  # e.g. a CSV bundle's name, malformed row count and first problems
    params.update(
        record_key=key,
        district=run["district_id"],
        endpoint=run["endpoint"],
        details=orjson.dumps(details).decode() if details else None,
    )
    return params
