"""`roster-pipeline demo`: the whole pipeline on the bundled demo districts, served by the sandbox.

Full sync of every demo district, a few realistic edits in the sandbox (a new student, a changed guardian, a
withdrawn enrollment, a departed student), a delta sync, and the published row counts.
"""

from __future__ import annotations

import os
from pathlib import Path
from urllib.parse import urlsplit

import duckdb

from roster_pipeline.registry import Registry, RestSource
from roster_pipeline.resources import RosterSettings
from roster_pipeline.sandbox.demo import DEMO_DISTRICTS, build_demo_server, demo_environment
from roster_pipeline.sandbox.generator import SyntheticDistrict
from roster_pipeline.sync import SyncResult, print_summary, sync_district
from roster_pipeline.warehouse import DERIVED_TABLES, ROSTER_TABLES


def run_demo() -> int:
    """Run the demo; returns a process exit code."""
    settings = RosterSettings()
    registry = settings.registry()
    known = {demo.district_id for demo in DEMO_DISTRICTS}
    demo_ids = [d.id for d in registry.enabled if d.id in known]
    if not demo_ids:
        print(f"no demo districts in {registry.source}; expected one of {sorted(known)}")
        return 2
    for env_name, value in demo_environment().items():
        os.environ.setdefault(env_name, value)
    port = _sandbox_port(registry, demo_ids)
    with build_demo_server(port=port).start() as server:
        print(f"sandbox serving {', '.join(demo_ids)} on 127.0.0.1:{port}")
        results = [_sync(district_id, "full sync", full=True) for district_id in demo_ids]
        for district_id in demo_ids:
            edited = describe_edits(server.district(district_id))
            print(f"\n{district_id}: edited in the SIS — {edited}")
        results += [_sync(district_id, "delta sync") for district_id in demo_ids]
    _print_row_counts(settings.data_path / "roster.duckdb", demo_ids)
    return 0 if all(r.success for r in results) else 1


def _sync(district_id: str, label: str, *, full: bool = False) -> SyncResult:
    print(f"\n=== {label}: {district_id} ===")
    result = sync_district(district_id, full=full)
    print_summary(result)
    return result


def describe_edits(district: SyntheticDistrict) -> str:
    """Make the demo's edits in a sandbox district and say what they were."""
    users = district.records("users")
    students = [u for u in users if u["role"] == "student" and u["status"] == "active"]
    guardians = [u for u in users if u["role"] in ("parent", "guardian", "relative") and u["status"] == "active"]
    newcomer = {
        **students[0],
        "sourcedId": f"{district.district_id}-student-new",
        "username": "new.student",
        "givenName": "Nova",
        "familyName": "Newcomer",
        "agents": [{"href": "", "sourcedId": guardians[0]["sourcedId"], "type": "user"}],
    }
    district.upsert("users", newcomer)
    changed = students[1]
    district.upsert(
        "users", {**changed, "agents": [{"href": "", "sourcedId": guardians[-1]["sourcedId"], "type": "user"}]}
    )
    enrollment = next(e for e in district.records("enrollments") if e["status"] == "active")
    district.mark_tobedeleted("enrollments", enrollment["sourcedId"])
    district.mark_tobedeleted("users", students[2]["sourcedId"])
    return (
        f"new student {newcomer['sourcedId']}, guardian of {changed['sourcedId']} changed, "
        f"enrollment {enrollment['sourcedId']} withdrawn, student {students[2]['sourcedId']} left"
    )


def _sandbox_port(registry: Registry, district_ids: list[str]) -> int:
    ports = set()
    for district_id in district_ids:
        source = registry.district(district_id).source
        assert isinstance(source, RestSource)
        ports.add(urlsplit(source.base_url).port or 80)
    if len(ports) != 1:
        raise ValueError(f"demo districts must share one sandbox port, found {sorted(ports)}")
    return ports.pop()


def _print_row_counts(database: Path, district_ids: list[str]) -> None:
    with duckdb.connect(str(database), read_only=True) as con:
        print(f"\nRow counts in {database}")
        print(f"{'table':24}" + "".join(f"{d:>12}" for d in district_ids))
        for table in (*ROSTER_TABLES, *DERIVED_TABLES):
            counts = dict(con.execute(f"SELECT district_id, count(*) FROM {table} GROUP BY ALL").fetchall())
            print(f"{table:24}" + "".join(f"{counts.get(d, 0):>12}" for d in district_ids))
