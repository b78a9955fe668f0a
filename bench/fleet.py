"""Fleet benchmark: how many districts an hour does a night get through, and does publishing slow as the roster grows?

Generates a fleet of synthetic districts (by default 200 of 1,000 students and 20 of 20,000, the large ones spread
evenly through the registry), serves them all from one SandboxServer on 127.0.0.1, and syncs the whole fleet two
ways in one run, each into its own empty data folder, so the figures sit side by side:

  daemon   the nightly path: a temporary DAGSTER_HOME with the project's dagster.yaml (queued runs, at most two
           per provider, six in all, four roster_duckdb writers), one queued run of the `district_sync` job per district
           partition with the tags the schedules give it, then `dagster-daemon run` dequeues and launches them (one
           process per run) until all have finished. The code location is served by one long-lived
           `dagster code-server start` (on a socket), as `dagster dev` and deploy/ serve it; a daemon given
           workspace.yaml itself would instead replace its own code server every minute (Dagster's workspace reload),
           importing the project again each time
  sync     `roster-pipeline sync DISTRICT`, one process per district, one after another

The registry pauses the schedules for the bench's dates, so only the bench's own runs sync districts. Every
sync is a district's first, hence a full sync. Figures come from each path's Dagster instance:

  districts/hour   successful runs ÷ (last run end - first run start)
  median run s     a run's start to its end
  publish … s      the roster step's duration (step stats of the step writing roster tables), the median of the
                   first and of the last tenth of the standard-size districts in the order they published
  peak RSS MB      the largest sum of resident memory over the process trees (the code server and its run
                   processes, and the daemon; or the sync process), sampled every 0.25 s

The sandbox runs in this process and shares the machine's cores with the pipeline, as in bench/sync.py.
Prints a table and writes it to bench/results/fleet.md.

A path that has not finished within --timeout seconds stops with the runs' states and the pools' (a run waiting
for a roster_duckdb slot nobody holds is stuck); its logs and data folders are kept, as with --keep.

    .venv/bin/python bench/fleet.py [--districts 200] [--students 1000] [--large 20] [--large-students 20000]
                                    [--paths daemon,sync] [--latency-ms 0] [--providers generic] [--timeout 14400]
                                    [--keep]
"""

from __future__ import annotations

import argparse
import datetime as dt
import math
import os
import platform
import shlex
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import dagster as dg
import yaml
from dagster._core.errors import DagsterUserCodeUnreachableError
from dagster._grpc.client import DagsterGrpcClient

from roster_pipeline.config.registry import load_registry
from roster_pipeline.defs.run_queue import JOB, queue_district_syncs
from roster_pipeline.defs.run_tags import DISTRICT_TAG
from roster_pipeline.sandbox.generator import DistrictSpec, generate_district
from roster_pipeline.sandbox.server import DistrictAuth, SandboxServer

REPO = Path(__file__).resolve().parents[1]
LOCATION = "roster_pipeline.definitions"  # the code location, named as workspace.yaml names it
RESULTS = Path(__file__).parent / "results" / "fleet.md"
BIN = Path(sys.executable).parent
CLIENT_ID, CLIENT_SECRET = "fleet-client", "fleet-not-a-secret"
FINISHED = {dg.DagsterRunStatus.SUCCESS, dg.DagsterRunStatus.FAILURE, dg.DagsterRunStatus.CANCELED}


class FleetTimeout(Exception):
    """A path did not finish its fleet within --timeout seconds."""


@dataclass(frozen=True)
class Fleet:
    """The districts in registry order, and which of them are the standard size."""

    specs: list[DistrictSpec]
    standard: frozenset[str]

    @property
    def ids(self) -> list[str]:
        return [spec.district_id for spec in self.specs]


def district_spec(district_id: str, students: int, seed: int) -> DistrictSpec:
    """A district of `students` students in schools of about 1,000, shaped as DistrictSpec.for_users shapes them."""
    schools = max(1, round(students / 1000))
    per_school = max(1, round(students / schools))
    return DistrictSpec(
        district_id,
        seed=seed,
        schools=schools,
        students_per_school=per_school,
        classes_per_school=max(2, per_school * 4 // 25),
        teachers_per_school=max(1, per_school // 20),
    )


def plan_fleet(districts: int, students: int, large: int, large_students: int) -> Fleet:
    """Standard districts with the large ones spread evenly among them, so every tenth of the fleet holds its share."""
    standard = iter(district_spec(f"fleet-{i:04d}", students, seed=i) for i in range(1, districts + 1))
    bigger = iter(district_spec(f"fleet-large-{j:03d}", large_students, seed=10_000 + j) for j in range(1, large + 1))
    total = districts + large
    large_at = {int((j + 0.5) * total / large) for j in range(large)}  # the middle of each large-th of the fleet
    specs = [next(bigger) if position in large_at else next(standard) for position in range(total)]
    return Fleet(specs, frozenset(spec.district_id for spec in specs if not spec.district_id.startswith("fleet-large")))


def write_registry(path: Path, fleet: Fleet, server: SandboxServer, providers: list[str]) -> None:
    """The fleet's registry: every district on the sandbox with the same credentials variables; the schedules paused
    for the bench's dates (only the bench's runs sync), the guard out of the way of first syncs."""
    today = dt.datetime.now(dt.UTC).date()
    districts = [
        {
            "id": district_id,
            "provider": providers[i % len(providers)],
            "source": {
                "kind": "rest",
                "version": "1.1",
                "base_url": server.base_url(district_id),
                "page_size": 1000,
                "auth": {
                    "type": "oauth2",
                    "token_url": server.token_url(district_id),
                    "client_id_env": "FLEET_CLIENT_ID",
                    "client_secret_env": "FLEET_CLIENT_SECRET",
                },
            },
        }
        for i, district_id in enumerate(fleet.ids)
    ]
    pause = {"from": str(today - dt.timedelta(days=1)), "to": str(today + dt.timedelta(days=2)), "reason": "bench"}
    document = {"timezone": "UTC", "pauses": [pause], "districts": districts}
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(yaml.safe_dump(document, sort_keys=False), encoding="utf-8")


def path_environment(data_dir: Path) -> dict[str, str]:
    """The environment a path's processes run with: its own data folder, registry, instance and credentials."""
    env = {key: value for key, value in os.environ.items() if not key.startswith(("ROSTER_", "DAGSTER_"))}
    env.update(
        ROSTER_DATA_DIR=str(data_dir),
        ROSTER_DISTRICTS_FILE=str(data_dir / "districts.yaml"),
        DAGSTER_HOME=str(data_dir / "dagster_home"),
        FLEET_CLIENT_ID=CLIENT_ID,
        FLEET_CLIENT_SECRET=CLIENT_SECRET,
    )
    return env


# -- memory ----------------------------------------------------------------------------------------------------


class PeakRss(threading.Thread):
    """Samples the resident memory of a process and all its descendants; keeps the largest sum seen."""

    def __init__(self, interval: float = 0.25) -> None:
        super().__init__(daemon=True)
        self.interval = interval
        self.roots: list[int] = []
        self.peak_bytes = 0
        self._stop_event = threading.Event()

    def run(self) -> None:
        while not self._stop_event.wait(self.interval):
            if self.roots:
                self.peak_bytes = max(self.peak_bytes, sum(tree_rss(root) for root in self.roots))

    def stop(self) -> None:
        self._stop_event.set()
        self.join()


def tree_rss(root: int) -> int:
    """Resident bytes of `root` and every process descended from it (read from /proc)."""
    children: dict[int, list[int]] = {}
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
        except OSError:
            continue
        parent = int(stat.rsplit(")", 1)[1].split()[1])
        children.setdefault(parent, []).append(int(entry.name))
    page = os.sysconf("SC_PAGE_SIZE")
    total, todo = 0, [root]
    while todo:
        pid = todo.pop()
        todo += children.get(pid, [])
        try:
            total += int(Path(f"/proc/{pid}/statm").read_text().split()[1]) * page
        except (OSError, IndexError, ValueError):
            continue
    return total


# -- the two paths ---------------------------------------------------------------------------------------------


@contextmanager
def running(command: list[str], env: dict[str, str], log: Path) -> Iterator[subprocess.Popen[bytes]]:
    """A subprocess in its own process group, stopped with everything it started however the block ends."""
    with log.open("wb") as out:
        process = subprocess.Popen(
            command, cwd=REPO, env=env, stdout=out, stderr=subprocess.STDOUT, start_new_session=True
        )
        try:
            yield process
        finally:
            stop_group(process)


def stop_group(process: subprocess.Popen[bytes]) -> None:
    """SIGTERM the process group (the daemon, its code server and runs), then SIGKILL whatever is left."""
    for sig, grace in ((signal.SIGTERM, 20.0), (signal.SIGKILL, 5.0)):
        try:
            os.killpg(process.pid, sig)
        except ProcessLookupError:
            return
        deadline = time.monotonic() + grace
        while time.monotonic() < deadline:
            process.poll()  # reap the leader, so only live members keep the group
            try:
                os.killpg(process.pid, 0)
            except ProcessLookupError:
                return
            time.sleep(0.2)


def queue_runs(
    instance: dg.DagsterInstance, env: dict[str, str], workspace: Path, registry_file: Path, ids: list[str]
) -> list[str]:
    """One queued run of `district_sync` per district, with the path's environment for the code server the queueing
    starts (it loads the definitions with the path's settings): the queue holds the night's runs before the daemon
    starts. Returns the run ids."""
    saved = dict(os.environ)
    os.environ.update(env)
    try:
        return queue_district_syncs(instance, workspace, load_registry(registry_file), ids)
    finally:
        os.environ.clear()
        os.environ.update(saved)


def run_daemon_path(folder: Path, fleet: Fleet, server: SandboxServer, args: argparse.Namespace) -> PathResult:
    """Start the code server, queue a run per district, start dagster-daemon, wait until every run has finished."""
    data = folder / "daemon"
    write_registry(data / "districts.yaml", fleet, server, args.provider_list)
    env = path_environment(data)
    home = Path(env["DAGSTER_HOME"])
    home.mkdir(parents=True)
    (home / "dagster.yaml").write_text((REPO / "dagster.yaml").read_text(encoding="utf-8"), encoding="utf-8")
    socket, workspace = folder / "code.sock", data / "workspace.yaml"
    workspace.write_text(
        yaml.safe_dump({"load_from": [{"grpc_server": {"socket": str(socket), "location_name": LOCATION}}]})
    )
    sampler = PeakRss()
    sampler.start()
    with (
        dg.DagsterInstance.from_config(str(home)) as instance,
        code_server(env, socket, folder / "code-server.log") as code,
    ):
        print(f"daemon: queueing {len(fleet.ids)} runs of {JOB}", flush=True)
        run_ids = queue_runs(instance, env, workspace, data / "districts.yaml", fleet.ids)
        log = folder / "daemon.log"
        command = [str(BIN / "dagster-daemon"), "run", "-w", str(workspace)]
        try:
            with running(command, env, log) as daemon:
                sampler.roots = [code.pid, daemon.pid]
                print(f"daemon: dagster-daemon started (pid {daemon.pid}, log {log})", flush=True)
                wait_for_runs(instance, run_ids, args.timeout, lambda: daemon.poll(), "daemon")
        finally:
            sampler.stop()
        return measure("daemon", instance, run_ids, fleet, sampler.peak_bytes)


@contextmanager
def code_server(env: dict[str, str], socket: Path, log: Path) -> Iterator[subprocess.Popen[bytes]]:
    """`dagster code-server start` serving the project's code location on `socket`, once it answers."""
    command = [str(BIN / "dagster"), "code-server", "start", "-m", LOCATION, "-d", str(REPO), "--socket", str(socket),
               "--location-name", LOCATION]  # fmt: skip
    with running(command, env, log) as process:
        deadline = time.monotonic() + 120
        while not answers(socket):
            if process.poll() is not None or time.monotonic() > deadline:
                raise FleetTimeout(f"daemon: the code server did not start (see {log})")
            time.sleep(0.5)
        yield process


def answers(socket: Path) -> bool:
    """Whether a code server answers a ping on `socket` yet."""
    if not socket.exists():
        return False
    try:
        return DagsterGrpcClient(socket=str(socket)).ping("ready").get("echo") == "ready"
    except DagsterUserCodeUnreachableError:
        return False


def wait_for_runs(
    instance: dg.DagsterInstance, run_ids: list[str], timeout: float, exited: Callable[[], int | None], name: str
) -> None:
    """Poll the runs until all have finished; raise FleetTimeout past `timeout` or if the daemon exits early.

    Each poll only counts finished runs (one COUNT query); the runs themselves are read for the progress line
    every 30 s: reading (and deserialising) every run of the fleet each poll took CPU from the runs being
    measured."""
    deadline, last_report = time.monotonic() + timeout, 0.0
    finished = dg.RunsFilter(run_ids=run_ids, statuses=list(FINISHED))
    while True:
        if instance.get_runs_count(finished) == len(run_ids):
            return
        if time.monotonic() - last_report > 30:
            print(f"{name}: {run_summary(instance, run_ids)}", flush=True)
            last_report = time.monotonic()
        if (code := exited()) is not None:
            summary = run_summary(instance, run_ids)
            raise FleetTimeout(f"{name}: dagster-daemon exited with {code} before the fleet finished ({summary})")
        if time.monotonic() > deadline:
            summary = run_summary(instance, run_ids)
            raise FleetTimeout(
                f"{name}: fleet not finished after {timeout:.0f} s ({summary}){pool_state(instance)}; raise --timeout"
            )
        time.sleep(2)


def run_summary(instance: dg.DagsterInstance, run_ids: list[str]) -> str:
    """How many of the runs are in each state, e.g. "12 queued, 2 started, 6 success"."""
    by_status: dict[str, int] = {}
    for record in instance.get_run_records(dg.RunsFilter(run_ids=run_ids)):
        by_status[record.dagster_run.status.value] = by_status.get(record.dagster_run.status.value, 0) + 1
    return ", ".join(f"{count} {status.lower()}" for status, count in sorted(by_status.items()))


def pool_state(instance: dg.DagsterInstance) -> str:
    """Each pool's claimed slots and waiting steps: a step waiting while its pool has a free slot is stuck."""
    storage = instance.event_log_storage
    if not storage.supports_global_concurrency_limits:
        return ""
    states = []
    for key in sorted(storage.get_concurrency_keys()):
        info = storage.get_concurrency_info(key)
        waiting = [step for step in info.pending_steps if step.assigned_timestamp is None]
        states.append(f"pool {key}: {len(info.claimed_slots)}/{info.slot_count} slots claimed, {len(waiting)} waiting")
    return "; " + "; ".join(states) if states else ""


def run_sync_path(folder: Path, fleet: Fleet, server: SandboxServer, args: argparse.Namespace) -> PathResult:
    """`roster-pipeline sync DISTRICT` for each district in registry order, each in a new process."""
    data = folder / "sync"
    write_registry(data / "districts.yaml", fleet, server, args.provider_list)
    env = path_environment(data)
    deadline = time.monotonic() + args.timeout
    sampler = PeakRss()
    sampler.start()
    failed: list[str] = []
    try:
        for n, district_id in enumerate(fleet.ids, 1):
            left = deadline - time.monotonic()
            if left <= 0:
                raise FleetTimeout(f"sync: fleet not finished after {args.timeout:.0f} s ({n - 1} synced)")
            log = folder / "sync-logs" / f"{district_id}.log"
            log.parent.mkdir(exist_ok=True)
            with running([str(BIN / "roster-pipeline"), "sync", district_id], env, log) as process:
                sampler.roots = [process.pid]
                try:
                    code = process.wait(timeout=left)
                except subprocess.TimeoutExpired:
                    raise FleetTimeout(f"sync: {district_id} still syncing after {args.timeout:.0f} s") from None
            if code:
                failed.append(district_id)
                print(f"sync: {district_id} exited with {code} (see {log})", flush=True)
            if n % 10 == 0 or n == len(fleet.ids):
                print(f"sync: {n}/{len(fleet.ids)} districts", flush=True)
    finally:
        sampler.stop()
    with dg.DagsterInstance.from_config(env["DAGSTER_HOME"]) as instance:
        records = instance.get_run_records(dg.RunsFilter(tags={DISTRICT_TAG: fleet.ids}))
        return measure("sync", instance, [r.dagster_run.run_id for r in records], fleet, sampler.peak_bytes)


# -- figures ---------------------------------------------------------------------------------------------------


@dataclass
class PathResult:
    name: str
    districts: int
    succeeded: int
    per_hour: float
    median_run_s: float
    publish_first_s: float
    publish_last_s: float
    peak_rss_mb: float


def roster_step_seconds(instance: dg.DagsterInstance, run_id: str) -> tuple[float, float] | None:
    """(start, seconds) of the run's step writing the roster tables: `roster_tables`, else the first step whose key
    starts with `roster` (should the multi-asset be renamed)."""
    steps = sorted(
        (s for s in instance.get_run_step_stats(run_id) if s.start_time and s.end_time),
        key=lambda s: (s.step_key != "roster_tables", s.start_time),
    )
    for stats in steps:
        if stats.step_key.startswith("roster"):
            assert stats.start_time is not None and stats.end_time is not None
            return stats.start_time, stats.end_time - stats.start_time
    return None


def failure(instance: dg.DagsterInstance, run_id: str) -> str:
    """The first failure message of a run (a step's, else the run's)."""
    for kind in (dg.DagsterEventType.STEP_FAILURE, dg.DagsterEventType.RUN_FAILURE):
        for entry in instance.all_logs(run_id, of_type=kind):
            event = entry.dagster_event
            error = getattr(event.event_specific_data, "error", None) if event else None
            return (error.message if error else entry.message).strip().splitlines()[0]
    return "no failure event"


def measure(name: str, instance: dg.DagsterInstance, run_ids: list[str], fleet: Fleet, peak: int) -> PathResult:
    records = instance.get_run_records(dg.RunsFilter(run_ids=run_ids))
    ok = [r for r in records if r.dagster_run.status == dg.DagsterRunStatus.SUCCESS and r.start_time and r.end_time]
    for record in records:
        if record.dagster_run.status != dg.DagsterRunStatus.SUCCESS:
            run = record.dagster_run
            print(
                f"{name}: run {run.run_id[:8]} of {run.tags.get(DISTRICT_TAG)} ended {run.status.value}: "
                f"{failure(instance, run.run_id)}",
                flush=True,
            )
    nan = float("nan")
    if not ok:
        return PathResult(name, len(fleet.ids), 0, 0.0, nan, nan, nan, peak / 1e6)
    span = max(r.end_time for r in ok) - min(r.start_time for r in ok)  # type: ignore[type-var,operator]
    publishes = []
    for record in ok:
        if record.dagster_run.tags.get(DISTRICT_TAG) in fleet.standard:
            step = roster_step_seconds(instance, record.dagster_run.run_id)
            if step:
                publishes.append(step)
    publishes.sort()
    tenth = max(1, math.ceil(len(publishes) / 10))
    first = statistics.median(s for _, s in publishes[:tenth]) if publishes else nan
    last = statistics.median(s for _, s in publishes[-tenth:]) if publishes else nan
    return PathResult(
        name,
        len(fleet.ids),
        len(ok),
        len(ok) / (span / 3600) if span > 0 else nan,
        statistics.median(r.end_time - r.start_time for r in ok),  # type: ignore[operator]
        first,
        last,
        peak / 1e6,
    )


def machine() -> str:
    mem_kb = next(int(line.split()[1]) for line in Path("/proc/meminfo").read_text().splitlines() if "MemTotal" in line)
    return (
        f"{os.cpu_count()} cores ({platform.machine()}), {mem_kb / 1024**2:.1f} GiB RAM; Python "
        f"{platform.python_version()}, Dagster {dg.__version__}"
    )


def limits() -> str:
    """The run and roster-writer limits of the project's dagster.yaml, which the daemon path runs with."""
    concurrency = yaml.safe_load((REPO / "dagster.yaml").read_text(encoding="utf-8"))["concurrency"]
    per_tag = {limit["key"]: limit["limit"] for limit in concurrency["runs"]["tag_concurrency_limits"]}
    return (
        f"at most {per_tag['roster/provider']} runs at once per provider, {concurrency['runs']['max_concurrent_runs']} "
        f"in all, {concurrency['pools']['default_limit']} roster writers"
    )


def render(results: list[PathResult], args: argparse.Namespace, argv: list[str]) -> str:
    districts = f"{args.districts}" + (f" + {args.large}" if args.large else "")
    students = f"{args.students:,}" + (f" / {args.large_students:,}" if args.large else "")
    header = (
        f"# Fleet benchmark\n\n{dt.date.today().isoformat()}; {machine()}.\n"
        f"Load average {args.load_before} before, {os.getloadavg()[0]:.1f} after (other work on the machine "
        "slows both paths).\n"
        f"`{shlex.join(['bench/fleet.py', *argv])}`; {args.latency_ms:g} ms latency per API request; providers "
        f"{', '.join(args.provider_list)} ({limits()}).\n"
        "Publish: the roster step's median duration over the first and the last tenth of the standard-size "
        "districts, in publish order.\n\n"
        "| path | districts | students each | synced | districts/hour | median run s | publish first-tenth s "
        "| publish last-tenth s | last/first ratio | peak RSS MB |\n"
        "| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |\n"
    )
    rows = [
        f"| {r.name} | {districts} | {students} | {r.succeeded}/{r.districts} | {r.per_hour:,.0f} | "
        f"{r.median_run_s:.1f} | {r.publish_first_s:.2f} | {r.publish_last_s:.2f} | "
        f"{r.publish_last_s / r.publish_first_s:.2f} | {r.peak_rss_mb:,.0f} |"
        for r in results
    ]
    return header + "\n".join(rows) + "\n"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--districts", type=int, default=200, help="standard-size districts (default 200)")
    parser.add_argument("--students", type=int, default=1000, help="students in each (default 1,000)")
    parser.add_argument("--large", type=int, default=20, help="large districts (default 20)")
    parser.add_argument("--large-students", type=int, default=20_000, help="students in each large one")
    parser.add_argument("--paths", default="daemon,sync", help="which paths to run, in order (default daemon,sync)")
    parser.add_argument("--latency-ms", type=float, default=0.0, help="delay every API answer by this much")
    parser.add_argument("--providers", default="generic", help="provider keys given to districts in turn")
    parser.add_argument("--timeout", type=float, default=4 * 3600, help="seconds each path may take (default 4 h)")
    parser.add_argument("--keep", action="store_true", help="keep the data folders and logs (printed at the end)")
    argv = sys.argv[1:] if argv is None else argv
    args = parser.parse_args(argv)
    args.provider_list = [p.strip() for p in args.providers.split(",") if p.strip()]
    paths = [p.strip() for p in args.paths.split(",") if p.strip()]
    runners = {"daemon": run_daemon_path, "sync": run_sync_path}
    if unknown := [p for p in paths if p not in runners]:
        parser.error(f"--paths: unknown {unknown}; choose from {sorted(runners)}")

    # Ctrl-C and SIGTERM unwind the stack, so the daemon, its runs and the sandbox are stopped on the way out.
    signal.signal(signal.SIGINT, signal.default_int_handler)
    signal.signal(signal.SIGTERM, lambda signum, frame: sys.exit(128 + signum))
    args.load_before = f"{os.getloadavg()[0]:.1f}"
    fleet = plan_fleet(args.districts, args.students, args.large, args.large_students)
    started = time.perf_counter()
    results = []
    folder = Path(tempfile.mkdtemp(prefix="fleet-bench-"))
    with SandboxServer() as server:
        for spec in fleet.specs:
            server.add_district(generate_district(spec), auth=DistrictAuth("oauth2", CLIENT_ID, CLIENT_SECRET))
            if args.latency_ms:
                server.faults(spec.district_id).slow(args.latency_ms / 1000)
        print(f"generated {len(fleet.specs)} districts in {time.perf_counter() - started:.1f} s", flush=True)
        for name in paths:
            try:
                results.append(runners[name](folder, fleet, server, args))
            except FleetTimeout as error:
                print(f"{error}\nlogs and data kept in {folder}", file=sys.stderr)
                return 1
            except KeyboardInterrupt:
                print(f"interrupted during the {name} path; logs and data kept in {folder}", file=sys.stderr)
                return 130
            print(f"{name}: done", flush=True)
    if args.keep:
        print(f"data folders and logs kept in {folder}")
    else:
        shutil.rmtree(folder, ignore_errors=True)
    table = render(results, args, argv)
    print(table)
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    RESULTS.write_text(table, encoding="utf-8")
    return 0


if __name__ == "__main__":
    sys.exit(main())
