"""The production instance on a real PostgreSQL (issue 14): Dagster's storage and the roster's DuckLake catalog in
one server, the lake and the roster's files on an S3-compatible bucket (moto's server on loopback), three districts
synced at once through the queued run coordinator and `dagster-daemon`, as deploy/helm/values.yaml configures them;
then a delta sync by a second "worker" whose data folder is new, as a run pod on another node would have.

The server is PostgreSQL from the pgserver wheel, started by the test in a temporary folder (postgres_server.py).
The instance is deploy/dagster.yaml itself (storage from the DAGSTER_PG_* variables, the repository's run limits,
run monitoring); only its compute-log folder is moved into the test's folder. The three districts have different
providers, so the limit of two runs per provider lets all three run at once, and they are queued before the daemon
starts, so it dequeues them together. The sandbox serves them over HTTP on 127.0.0.1 while an analyst reads the
roster in a thread.
"""

from __future__ import annotations

import datetime as dt
import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from contextlib import closing, contextmanager
from dataclasses import dataclass
from pathlib import Path

import dagster as dg
import duckdb
import pytest
import yaml

from roster_pipeline.config.registry import load_registry
from roster_pipeline.config.settings import Settings
from roster_pipeline.defs.roster_assets import ROSTER_POOL
from roster_pipeline.defs.run_queue import queue_district_syncs
from roster_pipeline.sandbox.generator import DistrictSpec, SyntheticDistrict, generate_district
from roster_pipeline.sandbox.server import DistrictAuth, SandboxServer
from roster_pipeline.store.lakehouse import connect
from roster_pipeline_tests.deploy_tests.postgres_server import PostgresServer
from roster_pipeline_tests.pipeline_fixtures import expected_counts
from roster_pipeline_tests.s3_server import BUCKET, Bucket

pytestmark = pytest.mark.e2e

ROOT = Path(__file__).resolve().parents[2]
DEPLOY_INSTANCE = ROOT / "deploy" / "dagster.yaml"
WORKSPACE = ROOT / "workspace.yaml"
BIN = Path(sys.executable).parent
PUBLISH_STEP = "roster_tables"
# Three providers: the repository's limit of two runs per provider must not hold the third district back.
DISTRICTS = {"north-usd": "generic", "east-usd": "synergy", "west-usd": "skool"}
CLIENT_ID, CLIENT_SECRET = "deploy-client", "deploy-not-a-secret"
RUNS_TIMEOUT_S = 150
# The event types as the event log stores them (a run's start and end keep Dagster's older PIPELINE_ names).
STEP_START, STEP_SUCCESS = dg.DagsterEventType.STEP_START.value, dg.DagsterEventType.STEP_SUCCESS.value
RUN_EVENTS = {
    dg.DagsterEventType.RUN_START.value,
    dg.DagsterEventType.RUN_SUCCESS.value,
    STEP_START,
    STEP_SUCCESS,
    dg.DagsterEventType.ASSET_MATERIALIZATION.value,
}
FINISHED = {dg.DagsterRunStatus.SUCCESS, dg.DagsterRunStatus.FAILURE, dg.DagsterRunStatus.CANCELED}


def district(district_id: str, seed: int) -> SyntheticDistrict:
    """Two schools of 200 students (about 900 users), large enough that a publish takes a while."""
    spec = DistrictSpec(district_id, seed=seed, schools=2, students_per_school=200, classes_per_school=32)
    return generate_district(spec)


def expected_links(synthetic: SyntheticDistrict) -> int:
    """Guardian-student links the roster must hold: distinct pairs declared on either side between an active
    student and an active parent, guardian or relative (the sandbox's generator declares nothing else)."""
    users = {u["sourcedId"]: u for u in synthetic.records("users") if u["status"] == "active"}
    guardians = {i for i, u in users.items() if u["role"] in ("parent", "guardian", "relative")}
    students = {i for i, u in users.items() if u["role"] == "student"}
    pairs = set()
    for user_id, user in users.items():
        for agent in user.get("agents") or []:
            pair = (user_id, agent["sourcedId"]) if user_id in students else (agent["sourcedId"], user_id)
            if pair[0] in students and pair[1] in guardians:
                pairs.add(pair)
    return len(pairs)


# -- the deployment ----------------------------------------------------------------------------------------------


def write_instance(home: Path, logs: Path) -> None:
    """deploy/dagster.yaml as the production instance, its compute logs moved from /opt/dagster/logs to `logs`."""
    config = yaml.safe_load(DEPLOY_INSTANCE.read_text(encoding="utf-8"))
    config["compute_logs"]["config"]["base_dir"] = str(logs)
    home.mkdir(parents=True)
    (home / "dagster.yaml").write_text(yaml.safe_dump(config, sort_keys=False), encoding="utf-8")


def write_registry(path: Path, server: SandboxServer) -> None:
    """The three districts on the sandbox; the schedules paused for these dates, so only the test's runs sync."""
    today = dt.datetime.now(dt.UTC).date()
    pause = {"from": str(today - dt.timedelta(days=1)), "to": str(today + dt.timedelta(days=2)), "reason": "test"}
    districts = [
        {
            "id": district_id,
            "provider": provider,
            "source": {
                "kind": "rest",
                "version": "1.1",
                "base_url": server.base_url(district_id),
                "page_size": 200,
                "auth": {
                    "type": "oauth2",
                    "token_url": server.token_url(district_id),
                    "client_id_env": "DEPLOY_CLIENT_ID",
                    "client_secret_env": "DEPLOY_CLIENT_SECRET",
                },
            },
        }
        for district_id, provider in DISTRICTS.items()
    ]
    path.write_text(yaml.safe_dump({"timezone": "UTC", "pauses": [pause], "districts": districts}), encoding="utf-8")


def deployment_environment(
    monkeypatch: pytest.MonkeyPatch, postgres: PostgresServer, home: Path, data: Path, bucket: Bucket
) -> dict[str, str]:
    """The variables deploy/docker-compose.yaml gives Dagster's processes and the user code, set in this process
    (the code server and daemon it starts inherit them, and the analyst reads the same roster)."""
    for key in [key for key in os.environ if key.startswith(("ROSTER_", "DAGSTER_", "PG"))]:
        monkeypatch.delenv(key)
    values = {
        "DAGSTER_HOME": str(home),
        "DAGSTER_PG_USERNAME": "dagster",
        "DAGSTER_PG_PASSWORD": postgres.passwords["dagster"],
        "DAGSTER_PG_HOST": postgres.host,
        "DAGSTER_PG_DB": "dagster",
        "DAGSTER_PG_PORT": str(postgres.port),
        "ROSTER_DATA_DIR": str(data),
        "ROSTER_DISTRICTS_FILE": str(data / "districts.yaml"),
        "ROSTER_CATALOG_URL": f"postgres:{postgres.dsn('roster')}",
        "PGPASSWORD": postgres.passwords["roster"],
        "ROSTER_FILES_URL": f"s3://{BUCKET}/roster/",
        "ROSTER_LAKE_URL": f"s3://{BUCKET}/lake/",
        "DEPLOY_CLIENT_ID": CLIENT_ID,
        "DEPLOY_CLIENT_SECRET": CLIENT_SECRET,
    }
    for key, value in values.items():
        monkeypatch.setenv(key, value)
    return dict(os.environ)


@contextmanager
def daemon(env: dict[str, str], log: Path) -> Iterator[subprocess.Popen[bytes]]:
    """`dagster-daemon run` in its own process group, stopped with its code server and runs however the block ends."""
    with log.open("wb") as out:
        process = subprocess.Popen(
            [str(BIN / "dagster-daemon"), "run", "-w", str(WORKSPACE)],
            cwd=ROOT,
            env=env,
            stdout=out,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        try:
            yield process
        finally:
            for sig, grace in ((signal.SIGTERM, 20.0), (signal.SIGKILL, 5.0)):
                try:
                    os.killpg(process.pid, sig)
                except ProcessLookupError:
                    break
                deadline = time.monotonic() + grace
                while time.monotonic() < deadline and process.poll() is None:
                    time.sleep(0.2)
                if process.poll() is not None:
                    break
            process.wait(timeout=5)


def wait_for_runs(instance: dg.DagsterInstance, run_ids: list[str], process: subprocess.Popen[bytes], log: Path):
    """The runs' records once all have finished; fails with their states and the daemon's log otherwise."""
    deadline = time.monotonic() + RUNS_TIMEOUT_S
    while True:
        records = instance.get_run_records(dg.RunsFilter(run_ids=run_ids))
        if len(records) == len(run_ids) and all(r.dagster_run.status in FINISHED for r in records):
            return records
        states = {r.dagster_run.tags.get("roster/district"): r.dagster_run.status.value for r in records}
        if process.poll() is not None or time.monotonic() > deadline:
            tail = log.read_text(errors="replace")[-4000:]
            why = f"exited with {process.returncode}" if process.poll() is not None else f"{RUNS_TIMEOUT_S} s passed"
            pytest.fail(f"runs not finished ({states}): dagster-daemon {why}; its log ends:\n{tail}")
        time.sleep(0.5)


# -- the second worker ---------------------------------------------------------------------------------------------

SECOND_WORKER_DISTRICT = "north-usd"


def rename_a_student(synthetic: SyntheticDistrict) -> dict:
    """Change one student at the source (stamped with a newer dateLastModified), for the delta sync to find."""
    student = next(u for u in synthetic.records("users") if u["role"] == "student" and u["status"] == "active")
    return synthetic.upsert("users", {**student, "givenName": "Renamed"})


def second_worker_sync(instance: dg.DagsterInstance, env: dict[str, str], tmp_path: Path) -> dg.RunRecord:
    """One district's delta sync through the daemon, its runs in processes whose data folder is new and empty."""
    data = tmp_path / "data-2"
    data.mkdir()
    env = {**env, "ROSTER_DATA_DIR": str(data)}
    registry = load_registry(Path(env["ROSTER_DISTRICTS_FILE"]))
    [run_id] = queue_district_syncs(instance, WORKSPACE, registry, [SECOND_WORKER_DISTRICT])
    log = tmp_path / "daemon-2.log"
    with daemon(env, log) as process:
        [record] = wait_for_runs(instance, [run_id], process, log)
    return record


def files_holding(folder: Path, text: str) -> list[Path]:
    return [path for path in folder.rglob("*") if path.is_file() and text.encode() in path.read_bytes()]


# -- the analyst ---------------------------------------------------------------------------------------------------


@dataclass
class Observation:
    at: float
    districts: dict[str, tuple[int, int, int]]  # district -> (students, guardian links, publishes)


class Analyst(threading.Thread):
    """Opens the roster read-only, again and again until stopped, and reads each district's students, guardian
    links and publish records in one query, so each observation comes from one snapshot."""

    def __init__(self, settings: Settings) -> None:
        super().__init__(daemon=True, name="analyst")
        self.settings = settings
        self.observations: list[Observation] = []
        self.before_first_publish: list[str] = []  # why the roster could not be read yet
        self.error: BaseException | None = None
        self.done = threading.Event()

    def run(self) -> None:
        while not self.done.is_set():
            try:
                with connect(self.settings) as con:
                    seen = districts_seen(con)
            except (FileNotFoundError, duckdb.Error) as error:
                # No roster yet (no catalog, or one whose first commit has not landed): only before the first read.
                if self.observations:
                    self.error = error
                    return
                self.before_first_publish.append(f"{type(error).__name__}: {str(error).splitlines()[0]}")
                self.done.wait(0.2)
                continue
            except BaseException as error:
                self.error = error
                return
            self.observations.append(Observation(time.time(), seen))
            self.done.wait(0.05)


def districts_seen(con: duckdb.DuckDBPyConnection) -> dict[str, tuple[int, int, int]]:
    """Each district's students, guardian links and publish records, in one query (so from one snapshot)."""
    names = ", ".join(f"('{district_id}')" for district_id in DISTRICTS)
    rows = con.execute(
        "SELECT d.id, "
        "(SELECT count(*) FROM students s WHERE s.district_id = d.id), "
        "(SELECT count(*) FROM guardian_student_links l WHERE l.district_id = d.id), "
        "(SELECT count(*) FROM ops.publishes p WHERE p.district_id = d.id) "
        f"FROM (VALUES {names}) d(id)"
    ).fetchall()
    return {row[0]: tuple(row[1:]) for row in rows}


@dataclass
class HeldRead:
    inside_first: dict[str, tuple[int, int, int]]
    inside_second: dict[str, tuple[int, int, int]]
    outside: dict[str, tuple[int, int, int]]  # a fresh connection's read, between the two


class SnapshotHolder(threading.Thread):
    """An analyst who keeps one connection open for the whole night and reads twice in each transaction. Between
    the two it holds the transaction open until a fresh connection reads something else (or it is stopped): the
    publish that committed meanwhile shows outside the transaction and must not show inside it."""

    def __init__(self, settings: Settings) -> None:
        super().__init__(daemon=True, name="snapshot-holder")
        self.settings = settings
        self.reads: list[HeldRead] = []
        self.error: BaseException | None = None
        self.done = threading.Event()

    def run(self) -> None:
        con: duckdb.DuckDBPyConnection | None = None
        try:
            while not self.done.is_set():
                try:
                    con = con or connect(self.settings)
                    con.execute("BEGIN TRANSACTION")
                    first = outside = districts_seen(con)
                    while outside == first and not self.done.wait(0.2):
                        with connect(self.settings) as fresh:
                            outside = districts_seen(fresh)
                    second = districts_seen(con)
                    con.execute("COMMIT")
                except (FileNotFoundError, duckdb.Error) as error:
                    if self.reads:  # the roster existed: a read must not fail now
                        self.error = error
                        return
                    if con is not None:  # no roster yet: open again once it is there
                        con.close()
                        con = None
                    self.done.wait(0.2)
                    continue
                self.reads.append(HeldRead(first, second, outside))
        except BaseException as error:
            self.error = error
        finally:
            if con is not None:
                con.close()


# -- the test ------------------------------------------------------------------------------------------------------


def test_three_districts_sync_at_once_through_the_daemon_on_postgresql(
    postgres: PostgresServer, bucket: Bucket, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    home, data = tmp_path / "dagster_home", tmp_path / "data"
    data.mkdir()
    write_instance(home, tmp_path / "compute_logs")
    synthetic = {district_id: district(district_id, seed) for seed, district_id in enumerate(DISTRICTS, 1)}
    expected = {
        district_id: {**expected_counts(d), "guardian_student_links": expected_links(d)}
        for district_id, d in synthetic.items()
    }

    with SandboxServer() as server:
        for d in synthetic.values():
            server.add_district(d, auth=DistrictAuth("oauth2", CLIENT_ID, CLIENT_SECRET))
        write_registry(data / "districts.yaml", server)
        env = deployment_environment(monkeypatch, postgres, home, data, bucket)
        settings = Settings.from_env(data)
        with dg.DagsterInstance.from_config(str(home)) as instance:
            run_ids = queue_district_syncs(instance, WORKSPACE, load_registry(data / "districts.yaml"), list(DISTRICTS))
            # The pool has its limit before any run starts: runs starting together on PostgreSQL must not race for it.
            assert ROSTER_POOL in {limit.name for limit in instance.event_log_storage.get_pool_limits()}
            assert {r.dagster_run.status for r in instance.get_run_records(dg.RunsFilter(run_ids=run_ids))} == {
                dg.DagsterRunStatus.QUEUED
            }
            analyst, holder = Analyst(settings), SnapshotHolder(settings)
            analyst.start()
            holder.start()
            log = tmp_path / "daemon.log"
            try:
                try:
                    with daemon(env, log) as process:
                        records = wait_for_runs(instance, run_ids, process, log)
                finally:
                    analyst.done.set()
                    analyst.join(timeout=30)
                renamed = rename_a_student(server.district(SECOND_WORKER_DISTRICT))
                # The holder reads on: the second worker's publish commits after all it has seen so far.
                second = second_worker_sync(instance, env, tmp_path)
            finally:
                holder.done.set()
                holder.join(timeout=30)

    failed = {r.dagster_run.tags["roster/district"]: r.dagster_run.status.value for r in records}
    assert set(failed.values()) == {"SUCCESS"}, f"runs: {failed}; daemon log in {log}"
    runs = {r.dagster_run.tags["roster/district"]: r for r in records}
    starts = [r.start_time for r in records]
    ends = [r.end_time for r in records]
    assert all(starts) and all(ends)
    assert max(starts) < min(ends), "the queued coordinator let the three runs run at once"

    # (1) Every run's events are in PostgreSQL, and Dagster kept nothing in SQLite under DAGSTER_HOME.
    with closing(postgres.connect("dagster")) as pg, pg.cursor() as cursor:
        events = {}
        for district_id, record in runs.items():
            cursor.execute(
                "SELECT dagster_event_type, step_key, timestamp FROM event_logs WHERE run_id = %s ORDER BY id",
                [record.dagster_run.run_id],
            )
            events[district_id] = cursor.fetchall()
        cursor.execute("SELECT run_id, status FROM runs")
        stored_runs = dict(cursor.fetchall())
    assert {run_id: stored_runs.get(run_id) for run_id in run_ids} == dict.fromkeys(run_ids, "SUCCESS")
    for district_id, rows in events.items():
        kinds = {kind for kind, _, _ in rows}
        assert kinds >= RUN_EVENTS, f"{district_id}: {sorted(kinds)}"
        assert (STEP_SUCCESS, PUBLISH_STEP) in {(kind, step) for kind, step, _ in rows}, district_id
    sqlite_files = [p for p in home.rglob("*") if p.suffix in (".db", ".sqlite") or p.name.endswith("-wal")]
    assert sqlite_files == [], "Dagster's storage must be PostgreSQL only"

    # (2) Each district's roster holds exactly what the sandbox served.
    with connect(settings) as con:
        for district_id, counts in expected.items():
            found = {
                table: con.execute(f"SELECT count(*) FROM {table} WHERE district_id = ?", [district_id]).fetchone()[0]
                for table in counts
            }
            assert found == counts, district_id

    # (3) Publishes overlapped: two districts' roster steps were running at the same time.
    publishes = {}
    for district_id, rows in events.items():
        started = [t for kind, step, t in rows if kind == STEP_START and step == PUBLISH_STEP]
        ended = [t for kind, step, t in rows if kind == STEP_SUCCESS and step == PUBLISH_STEP]
        publishes[district_id] = (min(started), max(ended))
    overlapping = [
        (a, b) for a in publishes for b in publishes if a < b and publishes[a][0] < publishes[b][1]
        and publishes[b][0] < publishes[a][1]
    ]  # fmt: skip
    assert overlapping, f"no two publishes overlapped: {publishes}"

    # (4) Nothing but the bucket holds the lake or the roster's files: the data folder had only work databases.
    assert not (data / "lake").exists() and not (data / "roster").exists()
    for district_id in DISTRICTS:
        assert bucket.keys(f"lake/users/district={district_id}/"), district_id
    assert bucket.parquet_files("roster/")
    assert files_holding(tmp_path, bucket.secret) == []

    # (5) A worker that shares no folder with the first synced a district on from where the roster was.
    assert second.dagster_run.status == dg.DagsterRunStatus.SUCCESS, f"daemon log in {tmp_path / 'daemon-2.log'}"
    with connect(settings) as con:
        query = "SELECT given_name FROM students WHERE district_id = ? AND sourced_id = ?"
        assert con.execute(query, [SECOND_WORKER_DISTRICT, renamed["sourcedId"]]).fetchall() == [("Renamed",)]
        publishes = "SELECT count(*) FROM ops.publishes WHERE district_id = ?"
        assert con.execute(publishes, [SECOND_WORKER_DISTRICT]).fetchone() == (2,)  # the first worker's kept too
        applied = "SELECT mode, records FROM ops.applied_batches WHERE district_id = ? AND endpoint = 'users'"
        modes = sorted(con.execute(applied, [SECOND_WORKER_DISTRICT]).fetchall())
    assert modes[0][0] == "delta" and modes[0][1] >= 1 and modes[1][0].startswith("full"), modes
    assert list((tmp_path / "data-2").glob("work/*.duckdb")) and not (tmp_path / "data-2" / "lake").exists()

    # (6) The analyst, reading while the runs ran, never saw half a district.
    assert analyst.error is None, f"the analyst's read failed after the roster existed: {analyst.error!r}"
    in_flight = [o for o in analyst.observations if min(starts) <= o.at <= max(ends)]
    assert len(in_flight) >= 3, (
        f"{len(analyst.observations)} reads, {len(in_flight)} while runs ran; "
        f"before the first publish: {analyst.before_first_publish[-3:]}"
    )
    for observation in analyst.observations:
        for district_id, seen in observation.districts.items():
            whole = (expected[district_id]["students"], expected[district_id]["guardian_student_links"], 1)
            assert seen in {(0, 0, 0), whole}, f"{district_id} at {observation.at}: {seen}, whole is {whole}"
    published = [sum(seen[2] for seen in o.districts.values()) for o in in_flight]
    assert any(0 < n < len(DISTRICTS) for n in published), f"no read between two districts' commits: {published}"
    # ... and one connection held open all night read the same snapshot throughout each transaction, also while
    # another district's publish committed (seen outside it, between its two reads).
    assert holder.error is None, f"the held connection's read failed after the roster existed: {holder.error!r}"
    assert all(read.inside_first == read.inside_second for read in holder.reads), [
        read for read in holder.reads if read.inside_first != read.inside_second
    ]
    spanning = [read for read in holder.reads if read.outside != read.inside_first]
    assert spanning, f"no commit landed inside any of the {len(holder.reads)} held transactions"

    # (7) The roster's catalog is in PostgreSQL: a DuckLake snapshot per publish at least, no SQLite catalog.
    with closing(postgres.connect("roster")) as pg, pg.cursor() as cursor:
        cursor.execute("SELECT count(*) FROM ducklake_snapshot")
        [snapshots] = cursor.fetchone()
    assert snapshots >= len(DISTRICTS)
    assert list(data.rglob("catalog.sqlite*")) == []
