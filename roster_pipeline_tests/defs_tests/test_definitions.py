"""The Dagster definitions load, and their shape matches the reviewed snapshot.

An accidental change to the asset graph (a lost dependency, a renamed asset, a check gone missing, a schedule
that no longer starts running) shows up here as a diff. After an intended change, regenerate the snapshot with
`UPDATE_SNAPSHOTS=1 .venv/bin/pytest roster_pipeline_tests/defs_tests/test_definitions.py` and review it in the commit.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

import dagster as dg

from roster_pipeline.definitions import defs

SNAPSHOT = Path(__file__).parent / "snapshots" / "definitions.json"


def describe(definitions: dg.Definitions) -> dict:
    graph = definitions.resolve_asset_graph()
    assets = {}
    for key in sorted(graph.get_all_asset_keys(), key=lambda k: k.to_user_string()):
        node = graph.get(key)
        assets[key.to_user_string()] = {
            "group": node.group_name,
            "kinds": sorted(node.kinds),
            "deps": sorted(parent.to_user_string() for parent in node.parent_keys),
            "partitions": getattr(node.partitions_def, "name", None),
            "pool": sorted(node.pools or []),
            "freshness": type(node.freshness_policy).__name__ if node.freshness_policy else None,
            "checks": sorted(check.name for check in node.check_keys),
        }
    repository = definitions.get_repository_def()
    return {
        "assets": assets,
        "schedules": {
            s.name: {"cron": s.cron_schedule, "status": s.default_status.value} for s in repository.schedule_defs
        },
        "sensors": {s.name: {"status": s.default_status.value} for s in repository.sensor_defs},
        "jobs": sorted(job.name for job in repository.get_all_jobs() if not job.name.startswith("__")),
    }


def test_definitions_match_the_reviewed_snapshot():
    current = describe(defs)
    if os.environ.get("UPDATE_SNAPSHOTS"):
        SNAPSHOT.write_text(json.dumps(current, indent=2, sort_keys=True) + "\n")
    assert current == json.loads(SNAPSHOT.read_text())


def test_every_roster_asset_has_a_freshness_policy_and_writes_only_through_the_pool():
    assets = describe(defs)["assets"]
    roster = {key: spec for key, spec in assets.items() if key.startswith("roster/")}
    assert roster and all(spec["freshness"] for spec in roster.values())
    assert all(spec["pool"] == ["roster_duckdb"] for spec in roster.values())
    assert not any(spec["pool"] for key, spec in assets.items() if key.startswith("oneroster/"))
