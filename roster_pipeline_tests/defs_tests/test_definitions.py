"""The Dagster definitions load, and their shape matches the reviewed snapshot.

An accidental change to the asset graph (a lost dependency, a renamed asset, a check gone missing or no longer
blocking, a shorter freshness window, a dropped description or owner, a schedule that no longer starts running)
shows up here as a diff. After an intended change, regenerate the snapshot with
`UPDATE_SNAPSHOTS=1 .venv/bin/pytest roster_pipeline_tests/defs_tests/test_definitions.py` and review it in the commit.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

import dagster as dg

from roster_pipeline.definitions import defs

SNAPSHOT = Path(__file__).parent / "snapshots" / "definitions.json"


def freshness_windows(policy: dg.FreshnessPolicy | None) -> dict[str, str] | None:
    """A time-window policy's fail and warn windows as readable durations (`1 day, 2:00:00`)."""
    # dagster exports only the FreshnessPolicy base; the time-window subclass is the one with these fields.
    windows = {"fail": getattr(policy, "fail_window", None), "warn": getattr(policy, "warn_window", None)}
    return {name: str(window.to_timedelta()) for name, window in windows.items() if window is not None} or None


def describe(definitions: dg.Definitions) -> dict:
    graph = definitions.resolve_asset_graph()
    assets = {}
    for key in sorted(graph.get_all_asset_keys(), key=lambda k: k.to_user_string()):
        node = graph.get(key)
        check_nodes = sorted((graph.get(check) for check in node.check_keys), key=lambda c: c.key.name)
        assets[key.to_user_string()] = {
            "description": node.description,
            "owners": sorted(node.owners),
            "group": node.group_name,
            "kinds": sorted(node.kinds),
            "deps": sorted(parent.to_user_string() for parent in node.parent_keys),
            "partitions": getattr(node.partitions_def, "name", None),
            "pool": sorted(node.pools or []),
            "freshness": type(node.freshness_policy).__name__ if node.freshness_policy else None,
            "freshness_windows": freshness_windows(node.freshness_policy),
            "checks": sorted(check.name for check in node.check_keys),
            "check_specs": {
                check.key.name: {"blocking": check.blocking, "description": check.description} for check in check_nodes
            },
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


def test_every_asset_is_described_and_owned_and_only_the_mass_deletion_guard_blocks():
    assets = describe(defs)["assets"]
    assert all(spec["description"] and spec["owners"] for spec in assets.values())
    blocking = {
        (key, name) for key, spec in assets.items() for name, check in spec["check_specs"].items() if check["blocking"]
    }
    assert blocking == {("roster/students", "mass_deletion_guard")}
