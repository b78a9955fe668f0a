"""The local Dagster instance's SQLite storage, with each database's connection kept open between transactions.

Dagster's SQLite storages build a SQLAlchemy engine for every transaction and close its connection afterwards
(`NullPool`). Closing the last connection to a WAL database checkpoints it and deletes its WAL, and the next
transaction opens it all again; and before most asset and partition queries it asks whether a table exists through a
new engine too. A 20,000-student district's run made ~840 such connections for ~120 events, about 1.6 s of an
8.6 s run (cProfile), and a run that changes nothing pays the same per event. This storage keeps one
engine per database file, whose pool holds a connection open, in the same files and layout as Dagster's own
`storage: sqlite`, so switching between the two in dagster.yaml loses nothing. `RosterInstance` (dagster.yaml's
`instance_class`) makes it the default storage of the instance's folder.

A run's own event file (`<run id>.db`, WAL mode) is written with `synchronous=NORMAL`, SQLite's advice for WAL: a
commit no longer waits for the disk (a killed process loses nothing; a power cut may lose a run's last events, never
the file), which took ~0.15 s off a 20,000-student district's run. The index (`index.db`: asset records, pools'
slots) keeps Dagster's full sync.

Two things Dagster's way gave for free are kept:
- The UI follows a running run by watching its event file for changes. Commits through a kept connection land in
  the WAL beside it (`<run id>.db-wal`), so the watcher of this storage also wakes on the WAL. (Checkpointing after
  every transaction instead cost two disk syncs per event.)
- A forked process (multiprocessing) does not use its parent's connections: engines belong to the process that
  made them.
"""

from __future__ import annotations

import os
import threading
from collections import OrderedDict
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from typing import Any

import yaml
from dagster import DagsterInstance
from dagster._config import StringSource
from dagster._core.instance.ref import InstanceRef
from dagster._core.storage.event_log.base import EventHandlerFn
from dagster._core.storage.event_log.sqlite.sqlite_event_log import (
    INDEX_SHARD_NAME,
    SqliteEventLogStorage,
    SqliteEventLogStorageWatchdog,
)
from dagster._core.storage.runs.sqlite.sqlite_run_storage import SqliteRunStorage
from dagster._core.storage.schedules.sqlite.sqlite_schedule_storage import SqliteScheduleStorage
from dagster._core.storage.sqlite import SQLITE_BUSY_TIMEOUT_SECONDS
from dagster._core.storage.sqlite_storage import (
    DagsterSqliteStorage,
    _event_logs_directory,
    _runs_directory,
    _schedule_directory,
)
from dagster._serdes import ConfigurableClassData
from sqlalchemy import Connection, Engine, create_engine, event
from sqlalchemy.pool import QueuePool
from watchdog.events import FileSystemEvent
from watchdog.observers import Observer

# A run's event file: commits do not wait for the disk (see the module's docstring).
RUN_FILE_PRAGMAS = ("synchronous=NORMAL",)
# Database files whose engine a storage keeps (the most recently used). A run's worker uses two (its own event
# file and the index); the UI and the daemon read many runs' files, so they are bounded.
KEPT_ENGINES = 8


class Engines:
    """One engine per database file for this process, each keeping one connection open; the least recently used
    beyond `keep` are disposed."""

    def __init__(self, keep: int = KEPT_ENGINES) -> None:
        self._keep = keep
        self._lock = threading.Lock()
        self._pid = os.getpid()
        self._engines: OrderedDict[str, Engine] = OrderedDict()

    def get(self, conn_string: str, pragmas: tuple[str, ...] = ()) -> Engine:
        """The file's engine; `pragmas` are run on each new connection of an engine made here."""
        with self._lock:
            if self._pid != os.getpid():  # forked: the parent's connections are not ours to use or close
                self._engines, self._pid = OrderedDict(), os.getpid()
            engine = self._engines.pop(conn_string, None) or _pooled_engine(conn_string, pragmas)
            self._engines[conn_string] = engine
            while len(self._engines) > self._keep:
                self._engines.popitem(last=False)[1].dispose()  # connections checked out close when returned
            return engine

    def dispose(self) -> None:
        with self._lock:
            engines, self._engines = list(self._engines.values()), OrderedDict()
        if self._pid == os.getpid():
            for engine in engines:
                engine.dispose()


def _pooled_engine(conn_string: str, pragmas: tuple[str, ...] = ()) -> Engine:
    # One connection stays open; more are opened (and closed on return) when threads overlap. A pooled connection
    # may be checked out by another thread than the one that opened it, hence check_same_thread=False: the pool
    # hands it to one thread at a time.
    engine = create_engine(
        conn_string,
        poolclass=QueuePool,
        pool_size=1,
        max_overflow=-1,
        connect_args={"timeout": SQLITE_BUSY_TIMEOUT_SECONDS, "check_same_thread": False},
    )
    if pragmas:

        def on_connect(dbapi_connection: Any, record: object) -> None:
            for pragma in pragmas:
                dbapi_connection.execute(f"PRAGMA {pragma}")

        event.listen(engine, "connect", on_connect)
    return engine


class _OneFileKeptOpen:
    """`connect()` through a kept engine, for Dagster's storages of one SQLite file (`_conn_string`): runs and
    schedules. Listed before the storage class it changes."""

    _conn_string: str

    def __init__(self, conn_string: str, inst_data: ConfigurableClassData | None = None) -> None:
        super().__init__(conn_string, inst_data)  # type: ignore[call-arg]
        self._engines = Engines(keep=1)

    @contextmanager
    def connect(self) -> Iterator[Connection]:
        with self._engines.get(self._conn_string).connect() as conn, conn.begin():
            yield conn

    def dispose(self) -> None:
        super().dispose()  # type: ignore[misc]
        self._engines.dispose()


class PooledSqliteRunStorage(_OneFileKeptOpen, SqliteRunStorage):
    """Dagster's SQLite run storage (`history/runs.db`) with its connection kept open."""


class PooledSqliteScheduleStorage(_OneFileKeptOpen, SqliteScheduleStorage):
    """Dagster's SQLite schedule storage (`schedules/schedules.db`) with its connection kept open."""


class PooledSqliteEventLogStorage(SqliteEventLogStorage):
    """Dagster's SQLite event log (a file per run and `index.db`) with the recent files' connections kept open."""

    def __init__(self, base_dir: str, inst_data: ConfigurableClassData | None = None) -> None:
        self._engines = Engines()
        self._tables_found: set[str] = set()
        super().__init__(base_dir, inst_data)

    def has_table(self, table_name: str) -> bool:
        """Whether the index has the table; asked before most asset and partition queries (Dagster's own opens a
        new engine each time). A table once found is not dropped, so that answer is kept."""
        if table_name in self._tables_found:
            return True
        engine = self._engines.get(self.conn_string_for_shard(INDEX_SHARD_NAME))
        with engine.connect() as conn:
            found = bool(engine.dialect.has_table(conn, table_name))
        if found:
            self._tables_found.add(table_name)
        return found

    @contextmanager
    def _connect(self, shard: str) -> Iterator[Connection]:
        with self._db_lock:
            pragmas = () if shard == INDEX_SHARD_NAME else RUN_FILE_PRAGMAS
            engine = self._engines.get(self.conn_string_for_shard(shard), pragmas)
            if shard not in self._initialized_dbs:
                self._initdb(engine)
                self._initialized_dbs.add(shard)
            with engine.connect() as conn, conn.begin():
                yield conn

    def watch(self, run_id: str, cursor: str | None, callback: EventHandlerFn) -> None:
        """Dagster's watch of a running run's events (the UI's), woken by the run's WAL as well as its file."""
        observer: Any = self._obs  # Dagster's attribute, declared as None until the first watch
        if not observer:
            observer = self._obs = Observer()  # type: ignore[assignment]
            observer.start()
        watchdog = RunFileWatchdog(self, run_id, callback, cursor)
        self._watchers[run_id][callback] = (watchdog, observer.schedule(watchdog, self._base_dir, recursive=True))

    def wipe(self) -> None:
        self._engines.dispose()  # the run files are deleted; their connections must not outlive them
        super().wipe()

    def dispose(self) -> None:
        super().dispose()
        self._engines.dispose()


class RunFileWatchdog(SqliteEventLogStorageWatchdog):
    """Dagster's watcher of one run's event file, also woken when the WAL beside it changes: that is where a kept
    connection's commits land until SQLite checkpoints them into the file."""

    @property
    def patterns(self) -> list[str]:
        return [self._log_path, f"{self._log_path}-wal"]

    def on_modified(self, event: FileSystemEvent) -> None:
        self._process_log()


class PooledSqliteStorage(DagsterSqliteStorage):
    """`storage: sqlite` with each database's connection kept open (see the module's docstring). `RosterInstance`
    makes it the default storage; named alone it needs its folder (`storage: custom: {module: ..., class:
    PooledSqliteStorage, config: {base_dir: ...}}`)."""

    def __init__(self, base_dir: str, inst_data: ConfigurableClassData | None = None) -> None:
        self.base_dir = base_dir
        self._run_storage = PooledSqliteRunStorage.from_local(_runs_directory(base_dir))
        self._event_log_storage = PooledSqliteEventLogStorage(_event_logs_directory(base_dir))
        self._schedule_storage = PooledSqliteScheduleStorage.from_local(_schedule_directory(base_dir))
        self._inst_data = inst_data
        super(DagsterSqliteStorage, self).__init__()  # DagsterSqliteStorage's own would open Dagster's storages

    @classmethod
    def config_type(cls) -> dict[str, Any]:
        return {"base_dir": StringSource}

    @classmethod
    def from_config_value(cls, inst_data: ConfigurableClassData, config_value: Any) -> PooledSqliteStorage:
        return cls.from_local(inst_data=inst_data, **config_value)


class RosterInstance(DagsterInstance):
    """Dagster's instance, whose default storage (no `storage` block in dagster.yaml) is `PooledSqliteStorage` in
    the instance's folder, wherever that folder is: `DAGSTER_HOME`, `dagster dev`'s temporary home, or the folder
    given to `DagsterInstance.from_config`. In dagster.yaml:

        instance_class:
          module: roster_pipeline.defs.instance_storage
          class: RosterInstance

    A `storage` block there (PostgreSQL, as deploy/dagster.yaml has) still takes precedence."""

    @classmethod
    def config_schema(cls) -> dict[str, Any]:
        return {}  # no settings of its own beyond Dagster's

    @staticmethod
    def config_defaults(base_dir: str) -> Mapping[str, ConfigurableClassData | None]:
        storage = ConfigurableClassData(__name__, PooledSqliteStorage.__name__, yaml.safe_dump({"base_dir": base_dir}))
        return {**InstanceRef.config_defaults(base_dir), "storage": storage}
