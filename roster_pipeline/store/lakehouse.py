"""The published roster: a DuckLake with a SQLite catalog (WAL) and Parquet data files under the data folder (or a
PostgreSQL catalog, and files in a shared folder or on object storage: `Settings`, object_storage.py).

Analysts and products read it; each district's publish is one DuckLake transaction that replaces that district's
rows, so a commit costs what the district holds, never what the fleet holds. Readers in other processes always see
a committed snapshot and never block a writer. Several writers may commit at once: a conflict (two commits racing
for the catalog, or touching the same data file) rolls back and the publish is retried.

Offline, the `ducklake` and `sqlite` extensions (and `postgres`, `httpfs` when needed) come from their PyPI wheels
(`duckdb-extension-*`), installed into DuckDB's extension directory on first use, so the DuckDB shell
(`roster-pipeline sql`) finds them too.
"""

from __future__ import annotations

import contextlib
import fcntl
import importlib.util
import os
import random
import sqlite3
import time
from collections.abc import Callable, Iterator
from functools import partial
from pathlib import Path
from typing import Any, TypeVar

import duckdb

from roster_pipeline.config.settings import Settings, scaled_size
from roster_pipeline.store.object_storage import create_files_secret, on_object_storage

CATALOG = "roster"
EXTENSIONS = ("sqlite", "ducklake")
# Rows per row group of the Parquet files a publish writes (DuckLake's default is 122,880). DuckDB's Parquet writer
# holds a whole row group of each table in memory before writing it, so a large district's publish held every table
# whole: a 20,000-student district's publish peaked ~35 MB lower with 16,384, and was no slower. A district's
# files stay one file per table per publish; readers skip row groups by their statistics as before.
PARQUET_ROW_GROUP_ROWS = 16_384
# A conflicting commit is retried this many times, after a growing, jittered pause.
MAX_COMMIT_ATTEMPTS = 30
RETRY_PAUSE_S = 0.05

T = TypeVar("T")


class ExtensionMissing(RuntimeError):
    """The DuckLake extensions could not be loaded (the wheels are not installed for this DuckDB)."""


# DuckDB checks an extension's signature (a hash of the whole file, 0.1 s for each of ours) every time a database
# instance loads it, and the pipeline opens many instances (a work database per run, a reader per check). So each
# process checks each installed file once, on a connection that enforces signatures, and records the file's identity;
# connections made by `open_duckdb` then load that same, unchanged file without checking it again. A file that
# changed since (another install, or tampering) is checked again before any connection loads it.
# Such connections never load an extension by themselves (DuckDB's autoload), so nothing unchecked reaches them.
UNCHECKED: dict[str, str | bool | int | float | list[str]] = {
    "allow_unsigned_extensions": True,
    "autoload_known_extensions": False,
    "autoinstall_known_extensions": False,
}
# The extensions checked so far, and the identity (inode, size, mtime) of every file that check accepted; replaced
# whole, never changed in place, so other threads read it without a lock.
_checked: tuple[frozenset[str], dict[str, tuple[int, int, int]]] = (frozenset(), {})


def open_duckdb(database: str | Path = ":memory:", *, read_only: bool = False) -> duckdb.DuckDBPyConnection:
    """A DuckDB connection that may attach the roster: it loads the extensions this process has already checked
    without paying for the check again (see `load_extensions`)."""
    return duckdb.connect(str(database), read_only=read_only, config=UNCHECKED)


def extensions_for(settings: Settings | None) -> tuple[str, ...]:
    """The extensions attaching the roster needs: DuckLake, the catalog's database (SQLite, or PostgreSQL), and
    httpfs when the files are on object storage."""
    names: tuple[str, ...] = EXTENSIONS
    if settings is not None and settings.roster_catalog_spec.startswith(("postgres:", "postgresql:")):
        names = ("ducklake", "postgres")
    if settings is not None and on_object_storage(settings.roster_data_path):
        names = (*names, "httpfs")
    return names


def load_extensions(con: duckdb.DuckDBPyConnection, names: tuple[str, ...] = EXTENSIONS) -> None:
    """Load the roster's extensions into `con`, installing each from its wheel the first time (no network needed).
    Their files are signature-checked once per process (and again if they change) before any connection loads them."""
    if not _still_checked(names):
        _check_extensions(names)
    for name in names:
        con.execute(f"LOAD {name}")


def _check_extensions(names: tuple[str, ...]) -> None:
    """Install (from the wheels) and load the extensions on a connection that enforces signatures, and remember the
    identity of the files it accepted."""
    global _checked
    known, _ = _checked
    with duckdb.connect() as checked:
        for name in sorted(known | set(names)):
            try:
                checked.execute(f"LOAD {name}")
            except duckdb.Error:
                checked.execute(f"INSTALL '{_wheel_extension(name)}'")
                checked.execute(f"LOAD {name}")
        rows = checked.execute("SELECT install_path FROM duckdb_extensions() WHERE loaded AND install_path LIKE '/%'")
        paths = [row[0] for row in rows.fetchall()]
    _checked = (known | set(names), {path: _identity(path) for path in paths})


def _still_checked(names: tuple[str, ...]) -> bool:
    known, files = _checked
    try:
        return set(names) <= known and all(_identity(path) == seen for path, seen in files.items())
    except OSError:
        return False


def _identity(path: str) -> tuple[int, int, int]:
    stat = os.stat(path)
    return stat.st_ino, stat.st_size, stat.st_mtime_ns


def _wheel_extension(name: str) -> Path:
    spec = importlib.util.find_spec(f"duckdb_extension_{name}")
    folders = list(spec.submodule_search_locations or []) if spec else []
    found = [path for folder in folders for path in Path(folder).rglob(f"*{name}*.duckdb_extension")]
    if not found:
        wheel = f"duckdb-extension-{name}=={duckdb.__version__}"
        raise ExtensionMissing(f"the DuckDB extension '{name}' is not installed: pip install '{wheel}'")
    return found[0]


def attach_sql(settings: Settings, *, read_only: bool, catalog: Path | None = None) -> str:
    """The ATTACH statement that opens the roster (or a local catalog being built for it) as catalog `roster`."""
    options = [f"DATA_PATH '{quoted_path(settings.roster_data_path)}'"]
    if read_only:
        options.append("READ_ONLY")
    where = f"sqlite:{catalog}" if catalog else settings.roster_catalog_spec
    return f"ATTACH 'ducklake:{quoted_path(where)}' AS {CATALOG} ({', '.join(options)})"


def quoted_path(path: Path | str) -> str:
    """A path (or any text) for use inside a single-quoted SQL string."""
    return str(path).replace("'", "''")


class RosterMissing(FileNotFoundError):
    """Nothing has been published yet: the roster's catalog does not exist."""


def attach(con: duckdb.DuckDBPyConnection, settings: Settings, *, read_only: bool) -> None:
    """Attach the roster to `con` as `roster`; a writer creates it the first time."""
    _prepare(con, settings)
    if not read_only:
        ensure_catalog(settings)
    elif settings.catalog_is_local and not settings.roster_catalog.exists():
        raise RosterMissing(f"no roster published yet at {settings.roster_catalog} (run a sync first)")
    try:
        con.execute(attach_sql(settings, read_only=read_only))
    except duckdb.Error as error:
        if settings.catalog_is_local:
            raise
        exists = roster_exists(settings)
        if read_only and not exists:
            raise RosterMissing(f"no roster published yet in {settings.catalog_url} (run a sync first)") from error
        if read_only or not exists:
            raise
        # Two first writers created DuckLake's tables in the catalog database at once, and this one lost.
        con.execute(attach_sql(settings, read_only=read_only))
    if not read_only:
        retry_conflicts(partial(_ensure_options, con))


def _ensure_options(con: duckdb.DuckDBPyConnection) -> None:
    """Set the roster's writing options where they differ (once per roster: they are kept in its catalog)."""
    row = con.execute(
        "SELECT value FROM ducklake_options(?) WHERE option_name = 'parquet_row_group_size' AND scope = 'GLOBAL'",
        [CATALOG],
    ).fetchone()
    if row is None or row[0] != str(PARQUET_ROW_GROUP_ROWS):
        con.execute(f"CALL {CATALOG}.set_option('parquet_row_group_size', {PARQUET_ROW_GROUP_ROWS})")


def _prepare(con: duckdb.DuckDBPyConnection, settings: Settings) -> None:
    """What `con` needs before the roster is attached: the extensions, and the credentials for its files."""
    load_extensions(con, extensions_for(settings))
    create_files_secret(con, settings.roster_data_path)


def roster_exists(settings: Settings) -> bool:
    """Whether anything has been published: the local catalog file exists, or the catalog database holds
    DuckLake's tables."""
    if settings.catalog_is_local:
        return settings.roster_catalog.exists()
    kind, spec = settings.roster_catalog_spec.split(":", 1)
    with open_duckdb() as con:
        load_extensions(con, extensions_for(settings))
        con.execute(f"ATTACH '{quoted_path(spec)}' AS catalog_db (TYPE {kind}, READ_ONLY)")
        found = con.execute(
            "SELECT count(*) FROM duckdb_tables() "
            "WHERE database_name = 'catalog_db' AND table_name = 'ducklake_snapshot'"
        ).fetchone()
    return bool(found and found[0])


def ensure_catalog(settings: Settings) -> None:
    """Create the roster the first time: a SQLite catalog in WAL mode (readers never wait for a committing writer,
    nor it for them) with DuckLake's metadata in it. It is built under another name and renamed into place under a
    lock, so two first publishes cannot both initialise it and a reader never finds it half made. A catalog in
    PostgreSQL (`ROSTER_CATALOG_URL`) is created by the first writer's ATTACH instead."""
    if not settings.catalog_is_local or settings.roster_catalog.exists():
        return
    if settings.files_url is None:
        settings.roster_files_dir.mkdir(parents=True, exist_ok=True)
    settings.roster_dir.mkdir(parents=True, exist_ok=True)
    with open(settings.roster_dir / "catalog.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if settings.roster_catalog.exists():
            return
        building = settings.roster_catalog.with_name(settings.roster_catalog.name + ".building")
        for leftover in building.parent.glob(building.name + "*"):  # a first publish killed half way
            leftover.unlink()
        with contextlib.closing(sqlite3.connect(building)) as catalog:
            catalog.execute("PRAGMA journal_mode=WAL")
        con = open_duckdb()
        try:
            _prepare(con, settings)
            con.execute(attach_sql(settings, read_only=False, catalog=building))
        finally:
            con.close()
        os.replace(building, settings.roster_catalog)


def connect(settings: Settings | None = None) -> duckdb.DuckDBPyConnection:
    """A read-only connection to the published roster, with `roster` as the default catalog.

    `select * from students` and `select * from roster.students` both work; nothing it runs can change the roster.
    """
    con = open_duckdb()
    attach(con, settings or Settings.from_env(), read_only=True)
    con.execute(f"USE {CATALOG}")
    return con


def retry_conflicts(commit: Callable[[], T], attempts: int = MAX_COMMIT_ATTEMPTS) -> T:
    """Run `commit` (one whole transaction, which must roll itself back on failure) until it is not refused
    for a conflict with another writer."""
    for attempt in range(1, attempts + 1):
        try:
            return commit()
        except duckdb.Error as error:
            if attempt == attempts or not is_conflict(error):
                raise
            time.sleep(RETRY_PAUSE_S * attempt * (0.5 + random.random()))
    raise AssertionError("unreachable")


def is_conflict(error: duckdb.Error) -> bool:
    """A commit refused because another writer got there first (it succeeds when tried again)."""
    text = str(error).lower()
    return isinstance(error, duckdb.TransactionException) or any(
        sign in text for sign in ("conflict", "database is locked", "busy", "write-write")
    )


# Maintenance: how long old snapshots stay queryable (time travel, "who could pick up X on date D"), and how old
# an unreferenced file must be before it is deleted (younger ones may belong to a publish still committing).
SNAPSHOT_RETENTION_DAYS = 30
FILE_GRACE_HOURS = 24


# One maintenance run compacts a table of every district at once, so it gets more memory than one district's merge
# (twice the work limit: 192 MB by default).
MAINTENANCE_MEMORY_FACTOR = 2
# How long a maintenance run waits for another to finish (a compaction takes seconds to a minute or two).
MAINTENANCE_LOCK_WAIT_S = 1800.0


def maintain(settings: Settings, *, compact_only: bool = False) -> dict[str, int]:
    """Compact the roster after many small district commits and reclaim space: merge adjacent small files,
    rewrite files most of whose rows were deleted, expire snapshots past the retention, and delete files no
    snapshot needs (including orphans of publishes killed mid-commit). Returns what each step did.

    Files are merged and rewritten one table at a time, each table its own short transaction retried on conflict,
    so that compaction commits beside districts that keep publishing (one transaction for the whole roster merged
    for minutes and lost every commit to them). With `compact_only`, only merges: the other steps failed beside
    publishing districts (a file scheduled for deletion was gone). DuckDB works within MAINTENANCE_MEMORY_FACTOR
    times the work databases' memory limit, spilling into the work folder (an in-memory connection's default is
    `.tmp` in the current directory)."""
    keep_files = f"older_than => now() - INTERVAL {FILE_GRACE_HOURS} HOURS"
    keep_snapshots = f"older_than => now() - INTERVAL {SNAPSHOT_RETENTION_DAYS} DAYS"
    compactions = {"merged_files": "merge_adjacent_files", "rewritten_files": "rewrite_data_files"}
    if compact_only:
        compactions = {"merged_files": "merge_adjacent_files"}
    done = dict.fromkeys(compactions, 0)
    with maintenance_connection(settings) as (con, leftover_spill):
        if leftover_spill:
            done["removed_leftover_spill_bytes"] = leftover_spill
        for schema, table in database_tables(con, CATALOG):
            on = f"'{CATALOG}', '{table}', schema => '{schema}'"
            for name, call in compactions.items():
                done[name] += retry_conflicts(partial(_rows_returned, con, f"CALL ducklake_{call}({on})"))
        if compact_only:
            return done
        steps = {
            "expired_snapshots": f"CALL ducklake_expire_snapshots('{CATALOG}', {keep_snapshots})",
            "deleted_old_files": f"CALL ducklake_cleanup_old_files('{CATALOG}', {keep_files})",
            "deleted_orphans": f"CALL ducklake_delete_orphaned_files('{CATALOG}', {keep_files})",
        }
        for name, statement in steps.items():
            done[name] = retry_conflicts(partial(_rows_returned, con, statement))
    return done


@contextlib.contextmanager
def maintenance_connection(settings: Settings) -> Iterator[tuple[duckdb.DuckDBPyConnection, int]]:
    """A connection with the roster attached for writing, within the maintenance memory limit, spilling into the
    work folder, and the bytes of spill files a killed maintenance had left there, removed first. One maintenance
    at a time: a lock the kernel releases if its holder is killed, and a live holder is waited for at most
    MAINTENANCE_LOCK_WAIT_S."""
    settings.work_dir.mkdir(parents=True, exist_ok=True)
    spill = settings.work_dir / "maintenance.tmp"
    with open(settings.work_dir / "maintenance.lock", "w") as lock:
        wait_for_lock(lock, MAINTENANCE_LOCK_WAIT_S, "another roster maintenance is still running")
        removed = remove_spill_files(spill)
        with open_duckdb() as con:
            con.execute("SET memory_limit = ?", [scaled_size(settings.work_memory_limit, MAINTENANCE_MEMORY_FACTOR)])
            con.execute("SET temp_directory = ?", [str(spill)])
            attach(con, settings, read_only=False)
            yield con, removed


def wait_for_lock(handle: Any, timeout_s: float, held: str, poll_s: float = 1.0) -> None:
    """Take an exclusive lock on the open file, waiting at most ``timeout_s`` (asking every ``poll_s``): a live
    holder that never finishes must not keep the next run waiting forever (a killed one's lock is released by the
    kernel)."""
    deadline = time.monotonic() + timeout_s
    while True:
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
            return
        except BlockingIOError:
            if time.monotonic() >= deadline:
                raise TimeoutError(f"{held} after {timeout_s:.0f} s of waiting ({handle.name}); giving up") from None
            time.sleep(min(poll_s, max(0.0, deadline - time.monotonic())))


def remove_spill_files(folder: Path) -> int:
    """Remove the DuckDB spill files in ``folder`` and return their bytes. DuckDB deletes its spill files when it
    closes, but not those of a process killed mid-query, not even when the database is opened again; call this only
    where no live process can be using the folder."""
    removed = 0
    for leftover in folder.glob("duckdb_temp_storage*.tmp"):
        removed += leftover.stat().st_size
        leftover.unlink()
    return removed


def database_tables(con: duckdb.DuckDBPyConnection, database: str) -> list[tuple[str, str]]:
    """The (schema, table) pairs of an attached database (the roster is `CATALOG`)."""
    query = "SELECT schema_name, table_name FROM duckdb_tables() WHERE database_name = ? ORDER BY ALL"
    return [(schema, table) for schema, table in con.execute(query, [database]).fetchall()]


def _rows_returned(con: duckdb.DuckDBPyConnection, statement: str) -> int:
    return len(con.execute(statement).fetchall())
