"""What fetching a district's endpoints side by side buys: one district, before and after, in one run.

Serves one synthetic district from the sandbox on 127.0.0.1, in a process of its own (served from this one, the
server's JSON work would share this process's GIL with the fetches, which a real provider's does not), and lands
all seven endpoints into a fresh lake (full fetches), side by side in one run:

  before    ingest.endpoint_fetch.fetch_endpoint for each endpoint in turn (what seven fetch steps executed
            one at a time in-process did)
  after     defs.endpoint_assets.fetch_concurrently, as the `oneroster_endpoints` step runs it: `endpoint_budget`
            endpoints at once (4 for the generic provider), each still paging with its own page concurrency

once as the sandbox answers (loopback, no latency) and once with every API response delayed (the sandbox's
`slow` fault), as a provider across the internet answers. Each figure is the median of `--repeat` runs, the two
paths alternating. Prints a table and writes it to bench/results/run_concurrency.md.

    .venv/bin/python bench/run_concurrency.py [--users N] [--latency SECONDS] [--repeat N]
"""

from __future__ import annotations

import argparse
import os
import platform
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from multiprocessing import Event, Process, Queue
from pathlib import Path
from typing import Any

import yaml

from roster_pipeline.config.registry import DistrictConfig
from roster_pipeline.defs.endpoint_assets import OpenClients, endpoint_budget, fetch_concurrently
from roster_pipeline.defs.resources import RosterSettings
from roster_pipeline.ingest.endpoint_fetch import fetch_endpoint
from roster_pipeline.ingest.fetch_runs import FetchOutcome
from roster_pipeline.oneroster import ENDPOINT_NAMES
from roster_pipeline.sandbox.generator import DistrictSpec, generate_district
from roster_pipeline.sandbox.server import DistrictAuth, SandboxServer

RESULTS = Path(__file__).parent / "results" / "run_concurrency.md"
DISTRICT = "bench"
SECRET = "bench-secret"


def serve(users: int, latency: float, ready: Any, stop: Any) -> None:
    """Child process: serve the district, every API response `latency` seconds late, until `stop` is set."""
    district = generate_district(DistrictSpec.for_users(DISTRICT, users, seed=1))
    with SandboxServer() as server:
        server.add_district(district, auth=DistrictAuth("oauth2", "bench-id", SECRET))
        if latency:
            server.faults(DISTRICT).slow(latency)
        ready.put((server.base_url(DISTRICT), server.token_url(DISTRICT), sum(map(district.size, district.counts()))))
        stop.wait()


def write_registry(folder: Path, base_url: str, token_url: str) -> RosterSettings:
    entry = {
        "id": DISTRICT,
        "provider": "generic",
        "source": {
            "kind": "rest",
            "base_url": base_url,
            "page_size": 1000,
            "auth": {
                "type": "oauth2",
                "token_url": token_url,
                "client_id_env": "BENCH_ID",
                "client_secret_env": "BENCH_SECRET",
            },
        },
    }
    (folder / "districts.yaml").write_text(yaml.safe_dump({"districts": [entry]}))
    os.environ.update(BENCH_ID="bench-id", BENCH_SECRET=SECRET)
    return RosterSettings(data_dir=str(folder), districts_file=str(folder / "districts.yaml"))


def one_at_a_time(district: DistrictConfig, settings: RosterSettings, run_id: str) -> int:
    lake = settings.lake()
    return sum(fetch_endpoint(district, e, lake, run_id=run_id, full=True).records for e in ENDPOINT_NAMES)


def side_by_side(district: DistrictConfig, settings: RosterSettings, run_id: str) -> int:
    lake, clients = settings.lake(), OpenClients()

    def fetch(endpoint: str, log: Callable[[str], None]) -> FetchOutcome:
        return fetch_endpoint(district, endpoint, lake, run_id=run_id, full=True, client_factory=clients, log=log)

    records = 0
    for endpoint, landed in fetch_concurrently(ENDPOINT_NAMES, fetch, endpoint_budget(district), lambda _: None):
        if isinstance(landed, Exception):
            raise RuntimeError(f"endpoint {endpoint} failed") from landed
        records += landed.records
    return records


def measure(urls: tuple[str, str], tmp: Path, repeat: int) -> tuple[dict[str, list[float]], int]:
    """Seconds per run of each path (a fresh lake each time), and the records landed."""
    seconds: dict[str, list[float]] = {"before": [], "after": []}
    records = 0
    paths = {"before": one_at_a_time, "after": side_by_side}
    for attempt in range(repeat):
        for name in ("before", "after") if attempt % 2 == 0 else ("after", "before"):
            folder = Path(tempfile.mkdtemp(dir=tmp))
            settings = write_registry(folder, *urls)
            district = settings.registry().district(DISTRICT)
            started = time.perf_counter()
            records = paths[name](district, settings, f"bench-{name}-{attempt}")
            seconds[name].append(time.perf_counter() - started)
    return seconds, records


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--users", type=int, default=5_000)
    parser.add_argument("--latency", type=float, default=0.05, help="seconds added to every API response")
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args()

    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        for latency in (0.0, args.latency):
            ready: Any = Queue()
            stop = Event()
            server = Process(target=serve, args=(args.users, latency, ready, stop))
            server.start()
            try:
                base_url, token_url, total_records = ready.get(timeout=600)
                budget = endpoint_budget(write_registry(Path(tmp), base_url, token_url).registry().district(DISTRICT))
                seconds, records = measure((base_url, token_url), Path(tmp), args.repeat)
            finally:
                stop.set()
                server.join()
            before, after = statistics.median(seconds["before"]), statistics.median(seconds["after"])
            label = f"{latency * 1000:.0f} ms per response" if latency else "loopback, no added latency"
            rows.append((label, records, before, after))
    load = ", ".join(f"{value:.1f}" for value in os.getloadavg())
    header = (
        f"# Run concurrency: one district's endpoints one at a time vs side by side\n\n"
        f"{args.users:,} users requested; {total_records:,} records in all endpoints; page size 1000; full fetches "
        f"into a fresh lake; median of {args.repeat} runs each.\nAfter: {budget} endpoints at once (generic "
        f"provider), each paging with up to 4 requests. Python {platform.python_version()}, {os.cpu_count()} "
        f"cores, {platform.machine()}, load average {load} at the end.\n\n"
        "Before, each endpoint's fetch made its own client and asked for its own token (7 token requests); side by "
        "side, a run's endpoints share one token.\n\n"
        "| provider answers | records | before: one at a time (s) | after: side by side (s) | before / after |\n"
        "| --- | ---: | ---: | ---: | ---: |\n"
    )
    lines = [
        f"| {label} | {records:,} | {before:.2f} | {after:.2f} | {before / after:.2f} |"
        for label, records, before, after in rows
    ]
    table = header + "\n".join(lines) + "\n"
    print(table)
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    RESULTS.write_text(table, encoding="utf-8")
    return 0


if __name__ == "__main__":
    sys.exit(main())
