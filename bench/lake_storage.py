"""What does the lake on a bucket (`ROSTER_LAKE_URL`) cost against the lake in a folder?

One 1,000-student district (fleet.district_spec), landed and published through the store as a sync would, side by
side in one run with the lake (and the roster's files) in a folder and on an S3-compatible bucket: moto's server on
127.0.0.1, so each request costs a loopback round trip and moto's own handling, not a real object store's latency.

  land full       every endpoint's records as one full batch each (flattened, written as Parquet)
  publish full    the district's first publish
  land no change  an empty delta batch per endpoint (the common night)
  publish         the no-change publish, median of 3
  other worker    (bucket only) a no-change publish by a worker with an empty data folder: it copies the district's
                  rows back from the roster first

Prints a table (bucket / folder ratios) and writes it to bench/results/lake_storage.md.

    .venv/bin/python bench/lake_storage.py [--students N]
"""

from __future__ import annotations

import argparse
import logging
import os
import platform
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import boto3
from moto.server import ThreadedMotoServer

sys.path.insert(0, str(Path(__file__).parent))
from fleet import district_spec

from roster_pipeline.oneroster.flatten import flatten_records
from roster_pipeline.oneroster.normalize import normalize_record
from roster_pipeline.sandbox.generator import SyntheticDistrict, generate_district
from roster_pipeline.store.lake import Lake
from roster_pipeline.store.warehouse import RosterWarehouse

ENDPOINTS = ("academicSessions", "orgs", "users", "courses", "classes", "enrollments", "demographics")
RESULTS = Path(__file__).parent / "results" / "lake_storage.md"
WATERMARK = "2026-12-01T00:00:00Z"


def timed(action: Callable[[], object]) -> float:
    started = time.perf_counter()
    action()
    return time.perf_counter() - started


def land(lake: Lake, district: SyntheticDistrict, mode: str) -> None:
    for endpoint in ENDPOINTS:
        writer = lake.new_batch(endpoint, district.district_id)
        if mode == "full":
            records = [normalize_record(endpoint, record) for record in district.records(endpoint)]
            writer.append(flatten_records(endpoint, district.district_id, records))
        writer.commit(mode, WATERMARK if mode == "delta" else None, WATERMARK)


def measure(data: Path, district: SyntheticDistrict, *, other_worker: bool) -> dict[str, float]:
    warehouse = RosterWarehouse(data / "worker-a")
    figures = {
        "land full": timed(lambda: land(warehouse.lake, district, "full")),
        "publish full": timed(lambda: warehouse.publish_district(district.district_id)),
    }
    lands, publishes = [], []
    for _ in range(3):
        lands.append(timed(lambda: land(warehouse.lake, district, "delta")))
        publishes.append(timed(lambda: warehouse.publish_district(district.district_id)))
    figures["land no change"] = statistics.median(lands)
    figures["publish no change"] = statistics.median(publishes)
    if other_worker:
        other = RosterWarehouse(data / "worker-b")
        land(other.lake, district, "delta")
        figures["other worker's publish"] = timed(lambda: other.publish_district(district.district_id))
    return figures


def bucket_environment(endpoint: str, data: Path) -> None:
    boto3.client(
        "s3", endpoint_url=endpoint, region_name="us-east-1", aws_access_key_id="bench", aws_secret_access_key="bench"
    ).create_bucket(Bucket="bench")
    os.environ.update(
        {
            "AWS_ACCESS_KEY_ID": "bench",
            "AWS_SECRET_ACCESS_KEY": "bench",
            "AWS_REGION": "us-east-1",
            "AWS_ENDPOINT_URL": endpoint,
            "ROSTER_LAKE_URL": "s3://bench/lake/",
            "ROSTER_FILES_URL": "s3://bench/roster/",
            "ROSTER_CATALOG_URL": f"sqlite:{data / 'catalog.sqlite'}",  # shared by both workers
        }
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--students", type=int, default=1000)
    args = parser.parse_args()
    for name in ("ROSTER_LAKE_URL", "ROSTER_FILES_URL", "ROSTER_CATALOG_URL"):
        os.environ.pop(name, None)
    logging.getLogger("werkzeug").setLevel(logging.ERROR)  # moto's server logs every request
    district = generate_district(district_spec("bench-district", args.students, seed=7))
    with tempfile.TemporaryDirectory() as warm_up:  # the process's first publish loads and checks the extensions
        measure(Path(warm_up), district, other_worker=False)
    with tempfile.TemporaryDirectory() as folder_run:
        folder = measure(Path(folder_run), district, other_worker=False)
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    try:
        host, port = server.get_host_and_port()
        with tempfile.TemporaryDirectory() as bucket_run:
            bucket_environment(f"http://{host}:{port}", Path(bucket_run))
            bucket = measure(Path(bucket_run), district, other_worker=True)
    finally:
        server.stop()
    lines = [
        f"# Lake in a folder vs on a bucket ({args.students:,} students, {district.size('users'):,} users)",
        "",
        f"{platform.node()}, {os.cpu_count()} cores, Python {platform.python_version()}, "
        f"{time.strftime('%Y-%m-%d')}. Bucket: moto's S3 server on 127.0.0.1 (no real object-store latency).",
        "",
        "| step | folder (s) | bucket (s) | bucket / folder |",
        "| --- | ---: | ---: | ---: |",
    ]
    for step, seconds in bucket.items():
        base = folder.get(step)
        ratio = f"{seconds / base:.2f}" if base else "—"
        lines.append(
            f"| {step} | {base:.2f} | {seconds:.2f} | {ratio} |" if base else f"| {step} | — | {seconds:.2f} | — |"
        )
    table = "\n".join(lines) + "\n"
    print(table)
    RESULTS.write_text(table, encoding="utf-8")


if __name__ == "__main__":
    main()
