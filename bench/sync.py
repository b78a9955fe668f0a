"""Whole-pipeline benchmark: what does landing and publishing cost on top of fetching?

Serves one synthetic district from the sandbox on 127.0.0.1 and measures, side by side in one run:

  generate      building the synthetic district (the sandbox's own cost, for scale tests)
  fetch only    OneRosterClient paging every endpoint, records discarded (the peer: the download floor
                of the pipeline, see bench/paging.py for the client against raw httpx)
  full sync     roster_pipeline.app.sync.sync_district: every fetch asset (flatten → Parquet) and the DuckDB
                publish, in-process against a temporary Dagster instance
  delta sync    the same after editing 1% of users: only changed records travel
  no change     delta syncs that find nothing changed (the common night), of this district and of a 1,000-student
                one: the run's own time as Dagster records it (start to end) and its two steps, median of 3; the
                1,000-student one twice, side by side: on the instance storage of the project's dagster.yaml, and
                on Dagster's default SQLite storage (its peer)

Every instance is a temporary one with the project's storage unless a row says otherwise.

Prints a table (ratios against "fetch only") and writes it to bench/results/sync.md.

    .venv/bin/python bench/sync.py [--users N]
"""

from __future__ import annotations

import argparse
import os
import platform
import statistics
import sys
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import dagster as dg
import yaml

sys.path.insert(0, str(Path(__file__).parent))
from fleet import district_spec

from roster_pipeline.app.sync import sync_district
from roster_pipeline.config.settings import instance_class
from roster_pipeline.defs.resources import RosterSettings
from roster_pipeline.oneroster import ENDPOINTS_V1P1, OAuth2ClientCredentials, OneRosterClient
from roster_pipeline.sandbox.generator import DistrictSpec, generate_district
from roster_pipeline.sandbox.server import DistrictAuth, SandboxServer

RESULTS = Path(__file__).parent / "results" / "sync.md"
DISTRICT = "bench"
SECRET = "bench-secret"


PROJECT_STORAGE = "the project's dagster.yaml"
DAGSTER_STORAGE = "Dagster's default SQLite storage"


@contextmanager
def bench_instance(storage: str = PROJECT_STORAGE) -> Iterator[dg.DagsterInstance]:
    """A temporary Dagster instance with the project's `storage` block (or Dagster's default)."""
    with tempfile.TemporaryDirectory() as home:
        overrides = instance_class() if storage == PROJECT_STORAGE else None
        with dg.instance_for_test(temp_dir=home, overrides=overrides) as instance:
            yield instance


def timed(action):  # type: ignore[no-untyped-def]
    started = time.perf_counter()
    value = action()
    return value, time.perf_counter() - started


def fetch_only(server: SandboxServer) -> int:
    auth = OAuth2ClientCredentials(server.token_url(DISTRICT), "bench-id", SECRET)
    records = 0
    with OneRosterClient(server.base_url(DISTRICT), auth, page_size=1000, max_concurrency=4) as client:
        for spec in ENDPOINTS_V1P1:
            for page in client.iter_pages(spec):
                records += len(page.records)
    return records


def write_registry(folder: Path, server: SandboxServer) -> RosterSettings:
    entry = {
        "id": DISTRICT,
        "provider": "generic",
        "source": {
            "kind": "rest",
            "base_url": server.base_url(DISTRICT),
            "page_size": 1000,
            "auth": {
                "type": "oauth2",
                "token_url": server.token_url(DISTRICT),
                "client_id_env": "BENCH_ID",
                "client_secret_env": "BENCH_SECRET",
            },
        },
        # The benchmark edits 1% of users; keep the guard out of the measurement.
        "guard": {"max_removed_share": 1.0},
    }
    (folder / "districts.yaml").write_text(yaml.safe_dump({"districts": [entry]}))
    os.environ.update(BENCH_ID="bench-id", BENCH_SECRET=SECRET)
    return RosterSettings(data_dir=str(folder), districts_file=str(folder / "districts.yaml"))


def edit_users(district, share: float) -> int:  # type: ignore[no-untyped-def]
    users = district.records("users")
    step = max(1, int(1 / share))
    edited = 0
    for record in users[::step]:
        district.upsert("users", {**record, "givenName": record.get("givenName", "") + "-edited"})
        edited += 1
    return edited


def no_change_deltas(instance: dg.DagsterInstance, settings: RosterSettings, repeat: int = 3) -> list[float]:
    """Median run, fetch-step and roster-step seconds of `repeat` delta syncs that find nothing changed."""
    figures = []
    for _ in range(repeat):
        result = sync_district(DISTRICT, instance=instance, settings=settings, log_level="ERROR", say=lambda _: None)
        assert result.success, result.error
        stats = instance.get_run_stats(result.run_id)
        assert stats.start_time is not None and stats.end_time is not None
        steps = {s.step_key: s.end_time - s.start_time for s in instance.get_run_step_stats(result.run_id)}
        figures.append((stats.end_time - stats.start_time, steps["oneroster_endpoints"], steps["roster_tables"]))
    return [statistics.median(column) for column in zip(*figures, strict=True)]


def small_district_no_change(storage: str) -> tuple[int, list[float]]:
    """Users of a 1,000-student district, and its no-change delta figures (after its first, full sync)."""
    district = generate_district(district_spec(DISTRICT, 1000, seed=2))  # shaped as the fleet bench's districts
    with SandboxServer() as server, tempfile.TemporaryDirectory() as tmp, bench_instance(storage) as instance:
        server.add_district(district, auth=DistrictAuth("oauth2", "bench-id", SECRET))
        settings = write_registry(Path(tmp), server)
        full = sync_district(DISTRICT, instance=instance, settings=settings, log_level="ERROR", say=lambda _: None)
        assert full.success, full.error
        return district.size("users"), no_change_deltas(instance, settings)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--users", type=int, default=50_000)
    args = parser.parse_args()

    district, generate_s = timed(lambda: generate_district(DistrictSpec.for_users(DISTRICT, args.users, seed=1)))
    total_records = sum(district.size(name) for name in district.counts())
    rows = []
    with SandboxServer() as server, tempfile.TemporaryDirectory() as tmp, bench_instance() as instance:
        server.add_district(district, auth=DistrictAuth("oauth2", "bench-id", SECRET))
        settings = write_registry(Path(tmp), server)
        fetched, fetch_s = timed(lambda: fetch_only(server))
        full, full_s = timed(lambda: sync_district(DISTRICT, instance=instance, settings=settings, log_level="ERROR"))
        assert full.success, full.error
        edited = edit_users(district, 0.01)
        delta, delta_s = timed(lambda: sync_district(DISTRICT, instance=instance, settings=settings, log_level="ERROR"))
        assert delta.success, delta.error
        unchanged = no_change_deltas(instance, settings)
        roster = settings.paths.roster_dir  # the DuckLake catalog and its Parquet files
        database_mb = sum(f.stat().st_size for f in roster.rglob("*") if f.is_file()) / 1e6
        delta_records = sum(int(v.get("records", 0)) for v in delta.endpoints.values())
    rows = [
        ("generate district", total_records, generate_s),
        ("fetch only (client, 4 concurrent)", fetched, fetch_s),
        ("full sync (fetch + Parquet + DuckDB publish)", total_records, full_s),
        (f"delta sync after editing {edited} users", delta_records, delta_s),
    ]
    header = (
        f"# Sync benchmark\n\n{args.users:,} users requested; {total_records:,} records in all endpoints; "
        f"published roster (DuckLake catalog and files) {database_mb:.1f} MB.\nPython {platform.python_version()}, "
        f"{os.cpu_count()} cores, {platform.machine()}.\n\n"
        "| step | records | seconds | records/s | ratio vs fetch only |\n| --- | ---: | ---: | ---: | ---: |\n"
    )
    lines = [
        f"| {name} | {records:,} | {seconds:.2f} | {records / seconds:,.0f} | {seconds / fetch_s:.2f} |"
        for name, records, seconds in rows
    ]
    small = [(storage, *small_district_no_change(storage)) for storage in (PROJECT_STORAGE, DAGSTER_STORAGE)]
    rows_unchanged = [(PROJECT_STORAGE, args.users, unchanged), *small]
    table = header + "\n".join(lines) + "\n" + no_change_table(rows_unchanged)
    print(table)
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    RESULTS.write_text(table, encoding="utf-8")
    return 0


def no_change_table(rows: list[tuple[str, int, list[float]]]) -> str:
    lines = [
        "\n## Delta syncs that find nothing changed\n",
        "The run's own seconds as Dagster records them (start to end) and its two steps; median of 3.\n",
        "| district | Dagster instance storage | run s | fetch step s | roster step s |",
        "| --- | --- | ---: | ---: | ---: |",
    ]
    lines += [
        f"| {users:,} users | {storage} | {run:.2f} | {fetch:.2f} | {roster:.2f} |"
        for storage, users, (run, fetch, roster) in rows
    ]
    return "\n".join(lines) + "\n"


if __name__ == "__main__":
    sys.exit(main())
