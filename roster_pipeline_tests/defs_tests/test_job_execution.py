"""The district_sync job as the daemon runs it: a real instance, the job's own executor (in-process: one process)."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import dagster as dg
import pytest

from roster_pipeline.defs.endpoint_assets import FETCH_STEP
from roster_pipeline.defs.partitions import ensure_district_partitions
from roster_pipeline.sandbox.generator import DistrictSpec, generate_district
from roster_pipeline_tests.pipeline_fixtures import expected_counts

pytestmark = pytest.mark.e2e  # the job in a subprocess on a real instance

REPO = Path(__file__).resolve().parents[2]


def test_district_sync_job_runs_in_one_process_against_a_real_instance(world, tmp_path):
    district = generate_district(DistrictSpec("oak", seed=2, students_per_school=15))
    world.add_rest_district(district, "oauth2")
    home = tmp_path / "dagster_home"
    home.mkdir()
    shutil.copyfile(REPO / "dagster.yaml", home / "dagster.yaml")
    with dg.DagsterInstance.from_config(str(home)) as instance:  # what the registry sensor's first tick does
        assert ensure_district_partitions(instance, world.settings.registry().enabled) == ["oak"]
    env = {**os.environ, "DAGSTER_HOME": str(home), "ROSTER_DATA_DIR": str(world.data_dir)}
    completed = subprocess.run(
        [
            sys.executable,
            "-m",
            "dagster",
            "job",
            "execute",
            "-m",
            "roster_pipeline.definitions",
            "-j",
            "district_sync",
            "--tags",
            json.dumps({"dagster/partition": "oak", "roster/full_sync": "true"}),
        ],
        cwd=REPO,
        env=env,
        capture_output=True,
        text=True,
        timeout=240,
    )
    output = completed.stdout + completed.stderr
    assert completed.returncode == 0, output[-3000:]
    assert "oak-secret" not in output
    with dg.DagsterInstance.from_config(str(home)) as instance:  # the run's own event log, not console text
        (run,) = instance.get_runs()
        assert run.status == dg.DagsterRunStatus.SUCCESS
        steps = instance.all_logs(run.run_id, of_type=dg.DagsterEventType.STEP_SUCCESS)
        # One process: the step fetching every endpoint side by side, then the publish, then the checks after it.
        assert [e.step_key for e in steps][:2] == [FETCH_STEP, "roster_tables"]
        assert len({e.dagster_event.pid for e in steps if e.dagster_event}) == 1
        users = instance.get_latest_materialization_event(dg.AssetKey(["oneroster", "users"]))
        assert users is not None and users.asset_materialization is not None
        shown = users.asset_materialization.metadata  # what the UI shows beside the materialization
        assert shown["provider"].value == "Generic OneRoster provider (generic)"
        assert "OAuth 2 client credentials" in str(shown["provider_notes"].value)
        assert shown["records"].value == expected_counts(district)["users"] and shown["malformed"].value == 0
    with world.roster() as con:
        students = con.execute("SELECT count(*) FROM students WHERE district_id = 'oak'").fetchone()
    assert students == (expected_counts(district)["students"],)
