"""One large district against its raw-download floor: is a full sync within 2x of just downloading it, in < 400 MB?

Serves one synthetic district (by default 20,000 students in 20 schools, as bench/fleet.py shapes its large
districts) from the sandbox in a process of its own, every API response `--latency` seconds late as a provider
across the internet answers, and measures side by side in one run:

  floor     raw httpx: every page of every endpoint (page size 1000) fetched with 8 requests in flight across the
            district, the JSON parsed and thrown away; no paging logic, no files, no Dagster (what the issue calls
            the raw-download floor)
  sync      roster_pipeline.app.sync.sync_district, the first (full) sync of the district in-process in a child
            process against a temporary Dagster instance: fetch all endpoints, land Parquet, merge, publish;
            the run's own seconds (Dagster's start to end), the whole call's, and the child's peak resident memory
            (a spawned child: a new interpreter, as `roster-pipeline sync` or a Dagster run worker is)

Each figure is the median of `--repeat` runs (a fresh data folder each time). Prints a table and writes it to
bench/results/large_district.md.

    .venv/bin/python bench/large_district.py [--students 20000] [--latency 0.05] [--repeat 3]
"""

from __future__ import annotations

import argparse
import multiprocessing
import os
import platform
import resource
import statistics
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from multiprocessing import Event, Process, Queue
from pathlib import Path
from typing import Any

import httpx

sys.path.insert(0, str(Path(__file__).parent))
from fleet import district_spec
from run_concurrency import SECRET, write_registry

from roster_pipeline.oneroster import ENDPOINT_NAMES
from roster_pipeline.sandbox.generator import generate_district
from roster_pipeline.sandbox.server import DistrictAuth, SandboxServer

RESULTS = Path(__file__).parent / "results" / "large_district.md"
DISTRICT = "bench"
PAGE = 1000
IN_FLIGHT = 8


def serve(students: int, latency: float, ready: Any, stop: Any) -> None:
    """Child process: serve the district, every API response `latency` seconds late, until `stop` is set."""
    district = generate_district(district_spec(DISTRICT, students, seed=1))
    with SandboxServer() as server:
        server.add_district(district, auth=DistrictAuth("oauth2", "bench-id", SECRET))
        if latency:
            server.faults(DISTRICT).slow(latency)
        sizes = {endpoint: district.size(endpoint) for endpoint in district.counts()}
        ready.put((server.base_url(DISTRICT), server.token_url(DISTRICT), sizes))
        stop.wait()


def floor(base_url: str, token_url: str, sizes: dict[str, int]) -> tuple[float, int]:
    """Seconds to download every page with IN_FLIGHT requests at once, and the records parsed."""
    started = time.perf_counter()
    with httpx.Client(timeout=60, limits=httpx.Limits(max_connections=IN_FLIGHT)) as http:
        token = http.post(token_url, data={"grant_type": "client_credentials"}, auth=("bench-id", SECRET))
        headers = {"Authorization": f"Bearer {token.json()['access_token']}"}
        pages = [
            (endpoint, offset)
            for endpoint in ENDPOINT_NAMES
            if endpoint in sizes
            for offset in range(0, max(sizes[endpoint], 1), PAGE)
        ]

        def get(page: tuple[str, int]) -> int:
            answer = http.get(f"{base_url}/{page[0]}", params={"limit": PAGE, "offset": page[1]}, headers=headers)
            answer.raise_for_status()
            return sum(len(value) for value in answer.json().values() if isinstance(value, list))

        with ThreadPoolExecutor(IN_FLIGHT) as pool:
            records = sum(pool.map(get, pages))
    return time.perf_counter() - started, records


def sync_child(folder: str, base_url: str, token_url: str, out: Any) -> None:
    """Child process: the district's first sync into a fresh data folder and Dagster instance."""
    os.environ["DAGSTER_HOME"] = str(Path(folder) / "dagster_home")
    settings = write_registry(Path(folder), base_url, token_url)
    os.environ.update(ROSTER_DATA_DIR=folder, ROSTER_DISTRICTS_FILE=str(Path(folder) / "districts.yaml"))
    from dagster import DagsterInstance

    from roster_pipeline.app.sync import sync_district
    from roster_pipeline.config.settings import ensure_dagster_home

    ensure_dagster_home()
    result = sync_district(DISTRICT, settings=settings, say=lambda _: None, log_level="WARNING")
    stats = DagsterInstance.get().get_run_stats(result.run_id)
    assert stats.start_time is not None and stats.end_time is not None
    run_s = stats.end_time - stats.start_time
    out.put((result.success, result.seconds, run_s, resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024))


def sync(base_url: str, token_url: str, tmp: Path) -> tuple[float, float, float]:
    """The sync call's seconds, the run's own seconds, and the child's peak RSS in MB."""
    # A new interpreter, as `roster-pipeline sync` or a Dagster run worker is: a forked child would start with this
    # process's heap (the floor's parsed pages) resident and count it in its peak.
    spawn = multiprocessing.get_context("spawn")
    out: Any = spawn.Queue()
    child = spawn.Process(target=sync_child, args=(tempfile.mkdtemp(dir=tmp), base_url, token_url, out))
    child.start()
    success, seconds, run_s, peak_mb = out.get(timeout=900)
    child.join()
    if not success:
        raise RuntimeError("the bench district's sync failed")
    return seconds, run_s, peak_mb


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--students", type=int, default=20_000)
    parser.add_argument("--latency", type=float, default=0.05, help="seconds added to every API response")
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args()

    ready: Any = Queue()
    stop = Event()
    server = Process(target=serve, args=(args.students, args.latency, ready, stop))
    server.start()
    floors, syncs, runs, peaks = [], [], [], []
    try:
        base_url, token_url, sizes = ready.get(timeout=900)
        with tempfile.TemporaryDirectory() as tmp:
            for _ in range(args.repeat):
                seconds, records = floor(base_url, token_url, sizes)
                floors.append(seconds)
                seconds, run_s, peak = sync(base_url, token_url, Path(tmp))
                syncs.append(seconds)
                runs.append(run_s)
                peaks.append(peak)
    finally:
        stop.set()
        server.join()
    medians = statistics.median(floors), statistics.median(syncs), statistics.median(runs)
    table = render(args, records, *medians, max(peaks))
    print(table)
    RESULTS.write_text(table, encoding="utf-8")
    return 0


def render(args: argparse.Namespace, records: int, floor_s: float, sync_s: float, run_s: float, peak_mb: float) -> str:
    load = ", ".join(f"{value:.1f}" for value in os.getloadavg())
    return (
        "# One large district against its raw-download floor\n\n"
        f"{args.students:,} students; {records:,} records in all endpoints; page size {PAGE}; "
        f"{args.latency * 1000:.0f} ms per API response; median of {args.repeat} runs each.\n"
        f"Python {platform.python_version()}, {os.cpu_count()} cores, {platform.machine()}, load average {load} "
        "at the end.\n\n"
        "| path | seconds | ratio vs floor | peak RSS MB |\n| --- | ---: | ---: | ---: |\n"
        f"| floor: raw httpx, {IN_FLIGHT} requests in flight | {floor_s:.2f} | 1.00 | |\n"
        f"| full sync: the run (fetch, Parquet, merge, publish, checks) | {run_s:.2f} | {run_s / floor_s:.2f} | "
        f"{peak_mb:,.0f} |\n"
        f"| full sync: the whole call (also opening the instance, recovery, the run's set-up) | {sync_s:.2f} | "
        f"{sync_s / floor_s:.2f} | |\n\n"
        "The run is what Dagster records from its start to its end (as bench/sync.py reports); the whole call is "
        "`sync_district` in a fresh process, so it also pays for loading Dagster's storage (~0.5 s of imports).\n"
    )


if __name__ == "__main__":
    sys.exit(main())
