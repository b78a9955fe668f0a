"""How many commits a second does the roster's DuckLake catalog take, in SQLite and in PostgreSQL?

Each district's publish is one DuckLake commit, so the catalog's commit rate bounds how many districts publish a
second, whatever the cores. Measured side by side in one run, for each catalog (the SQLite file in the data folder,
and a real PostgreSQL on loopback from the `pgserver` wheel, as the deployment test starts it) and for 1 and 4
writer processes at once: every writer replaces its own district's 20 rows of one table (delete, insert: a small
publish's shape) in one transaction, again and again for `--seconds`, retrying conflicts as the store does
(`lakehouse.retry_conflicts`). Each writer keeps the roster attached, so the figure is the commit alone: a real
publish also attaches the roster (~0.05 s) and writes more data files. The data files are in a folder.

Prints commits per second (all writers together), the conflicts the store retried, the median and the longest
commit and the fewest commits one writer made (how fairly the catalog serves writers), and writes the table to
bench/results/catalog_commits.md.

    .venv/bin/python bench/catalog_commits.py [--seconds 10]
"""

from __future__ import annotations

import argparse
import multiprocessing
import os
import platform
import statistics
import sys
import tempfile
import time
from contextlib import ExitStack
from pathlib import Path
from typing import Any

import duckdb

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from roster_pipeline.config.settings import Settings
from roster_pipeline.store.lakehouse import CATALOG, attach, is_conflict, open_duckdb, retry_conflicts
from roster_pipeline_tests.deploy_tests.postgres_server import running_postgres

RESULTS = Path(__file__).parent / "results" / "catalog_commits.md"
ROWS = 20
WRITERS = (1, 4)


def prepare(data_dir: Path, env: dict[str, str]) -> None:
    """Create the roster and the bench's table (one writer, before the timed ones start)."""
    saved = dict(os.environ)
    os.environ.update(env)
    try:
        with open_duckdb() as con:
            attach(con, Settings.from_env(data_dir), read_only=False)
            con.execute(f"CREATE TABLE IF NOT EXISTS {CATALOG}.main.commit_bench (district_id VARCHAR, n INTEGER)")
    finally:
        os.environ.clear()
        os.environ.update(saved)


def writer(data_dir: str, env: dict[str, str], district: str, start_at: float, seconds: float, out: Any) -> None:
    """Child process: publish `district`'s rows again and again from `start_at` for `seconds`."""
    os.environ.update(env)
    con = open_duckdb()
    attach(con, Settings.from_env(Path(data_dir)), read_only=False)
    conflicts = 0

    def commit(n: int) -> None:
        nonlocal conflicts
        con.execute("BEGIN TRANSACTION")
        try:
            con.execute(f"DELETE FROM {CATALOG}.main.commit_bench WHERE district_id = ?", [district])
            rows = [[district, n * ROWS + i] for i in range(ROWS)]
            con.execute(f"INSERT INTO {CATALOG}.main.commit_bench SELECT * FROM (VALUES {values(rows)})")
            con.execute("COMMIT")
        except duckdb.Error as error:
            con.execute("ROLLBACK")
            conflicts += is_conflict(error)
            raise

    durations = []
    time.sleep(max(0.0, start_at - time.time()))
    while time.time() < start_at + seconds:
        started = time.perf_counter()
        retry_conflicts(lambda: commit(len(durations)))
        durations.append(time.perf_counter() - started)
    out.put((len(durations), conflicts, durations))


def values(rows: list[list[Any]]) -> str:
    return ", ".join(f"('{district}', {n})" for district, n in rows)


def measure(data_dir: Path, env: dict[str, str], writers: int, seconds: float) -> tuple[float, int, float, float, int]:
    """Commits a second over all writers, the conflicts retried, the median and the longest commit (its retries
    and waits for the catalog included), and the fewest commits any one writer made."""
    spawn = multiprocessing.get_context("spawn")
    out: Any = spawn.Queue()
    start_at = time.time() + 8  # every writer has attached before the clock starts
    children = [
        spawn.Process(target=writer, args=(str(data_dir), env, f"d{writers}-{i}", start_at, seconds, out))
        for i in range(writers)
    ]
    for child in children:
        child.start()
    results = [out.get(timeout=seconds + 120) for _ in children]
    for child in children:
        child.join()
    commits = sum(count for count, _, _ in results)
    durations = [d for _, _, each in results for d in each]
    fewest = min(count for count, _, _ in results)
    return commits / seconds, sum(c for _, c, _ in results), statistics.median(durations), max(durations), fewest


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--seconds", type=float, default=10.0, help="how long each measurement commits")
    args = parser.parse_args()
    rows = []
    with ExitStack() as stack:
        folder = Path(stack.enter_context(tempfile.TemporaryDirectory()))
        postgres = stack.enter_context(running_postgres(("roster",)))
        catalogs = {
            "SQLite (the data folder)": {},
            "PostgreSQL (loopback)": {
                "ROSTER_CATALOG_URL": f"postgres:{postgres.dsn('roster')}",
                "PGPASSWORD": postgres.passwords["roster"],
            },
        }
        for name, env in catalogs.items():
            data_dir = folder / name.split()[0].lower()
            data_dir.mkdir()
            env = {"ROSTER_DATA_DIR": str(data_dir), **env}
            prepare(data_dir, env)
            for writers in WRITERS:
                rate, conflicts, median, longest, fewest = measure(data_dir, env, writers, args.seconds)
                rows.append((name, writers, rate, conflicts, median, longest, fewest))
                print(f"{name}: {writers} writer(s) {rate:.1f} commits/s", flush=True)
    table = render(args, rows)
    print(table)
    RESULTS.write_text(table, encoding="utf-8")
    return 0


def render(args: argparse.Namespace, rows: list[tuple[str, int, float, int, float, float, int]]) -> str:
    lines = [
        "# DuckLake catalog commits per second\n",
        f"Every writer replaces its district's {ROWS} rows of one table per commit, for {args.seconds:g} s; data "
        "files in a folder.",
        f"Python {platform.python_version()}, DuckDB {duckdb.__version__}, {os.cpu_count()} cores, "
        f"{platform.machine()}, load average {', '.join(f'{v:.1f}' for v in os.getloadavg())} at the end.\n",
        "| catalog | writers at once | commits/s (all writers) | conflicts retried here | median commit s | "
        "longest commit s | fewest commits of one writer |",
        "| --- | ---: | ---: | ---: | ---: | ---: | ---: |",
    ]
    lines += [
        f"| {name} | {w} | {rate:.1f} | {c} | {m:.3f} | {longest:.2f} | {fewest} |"
        for name, w, rate, c, m, longest, fewest in rows
    ]
    lines.append(
        '\n"Conflicts retried here" counts only what reached the store\'s retry (`lakehouse.retry_conflicts`); '
        "DuckLake retries some conflicts itself, inside a commit, and those show in the commit's time."
    )
    return "\n".join(lines) + "\n"


if __name__ == "__main__":
    sys.exit(main())
