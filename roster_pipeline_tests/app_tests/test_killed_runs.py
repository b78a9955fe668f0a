"""A sync killed mid-publish never wedges later syncs; a sync that waits for a live one says so and gives up."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager, contextmanager
from pathlib import Path

import dagster as dg
import orjson
import pytest
import yaml

from roster_pipeline.app import sync as sync_module
from roster_pipeline.app.sync import sync_district
from roster_pipeline.config.settings import PROJECT_DAGSTER_YAML
from roster_pipeline.defs.automation import abandoned_runs_sensor
from roster_pipeline.defs.roster_assets import ROSTER_POOL
from roster_pipeline.sandbox.generator import SyntheticDistrict
from roster_pipeline.store.process_owners import machine, process_start_time
from roster_pipeline_tests.pipeline_fixtures import PipelineWorld, add_abandoned_run

DISTRICT = "kill-usd"


@pytest.fixture
def home_instance(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[dg.DagsterInstance]:
    """A real DAGSTER_HOME with the project's dagster.yaml, its roster_duckdb pool cut to one slot."""
    home = tmp_path / "dagster_home"
    home.mkdir()
    config = yaml.safe_load(PROJECT_DAGSTER_YAML.read_text(encoding="utf-8"))
    config["concurrency"]["pools"]["default_limit"] = 1  # one slot, so a second sync has to wait for it
    (home / "dagster.yaml").write_text(yaml.safe_dump(config), encoding="utf-8")
    monkeypatch.setenv("DAGSTER_HOME", str(home))
    with dg.DagsterInstance.get() as instance:
        yield instance


def publish_lock_held(world: PipelineWorld) -> AbstractContextManager[None]:
    """Hold the district's publish lock, so a sync in another process stops inside its publish."""
    return world.settings.warehouse().publish_lock(DISTRICT)


def start_sync_process(world: PipelineWorld) -> subprocess.Popen[bytes]:
    env = {
        **os.environ,
        "ROSTER_DATA_DIR": str(world.data_dir),
        "ROSTER_DISTRICTS_FILE": str(world.data_dir / "districts.yaml"),
    }
    command = [sys.executable, "-m", "roster_pipeline.app.cli", "sync", DISTRICT]
    return subprocess.Popen(command, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)


def wait_until_publishing(instance: dg.DagsterInstance, process: subprocess.Popen[bytes]) -> str:
    """The run id of the other process's sync once it holds the roster store's pool slot."""
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        assert process.poll() is None, "the sync process exited before it reached the publish"
        holders = instance.event_log_storage.get_concurrency_info(ROSTER_POOL).active_run_ids
        if holders:
            time.sleep(0.5)  # into publish_district, waiting on the lock
            return next(iter(holders))
        time.sleep(0.2)
    raise AssertionError("the sync process never claimed the roster_duckdb slot")


@contextmanager
def another_sync_publishing(world: PipelineWorld, instance: dg.DagsterInstance) -> Iterator[str]:
    """For the block, a live sync of the district in another process holds the pool slot, stopped inside its
    publish; yields its run id. Afterwards it must finish its publish: it was left alone."""
    with publish_lock_held(world):
        process = start_sync_process(world)
        try:
            yield wait_until_publishing(instance, process)
        except BaseException:
            process.kill()
            raise
    assert process.wait(timeout=120) == 0


@pytest.mark.e2e
def test_sync_killed_during_publish_is_recovered_by_the_next_sync(
    world: PipelineWorld,
    home_instance: dg.DagsterInstance,
    small_district: Callable[..., SyntheticDistrict],
) -> None:
    world.add_rest_district(small_district(DISTRICT))
    with publish_lock_held(world):
        process = start_sync_process(world)
        killed_run = wait_until_publishing(home_instance, process)
        killed_pid, killed_started = process.pid, process_start_time(process.pid)
        process.send_signal(signal.SIGKILL)
        process.wait()
    # What a process killed while landing a batch leaves behind. (One killed inside its DuckLake commit leaves
    # nothing half-published: the commit is one catalog transaction; files it wrote are orphans the roster's
    # maintenance removes.)
    half_landed = world.data_dir / "lake" / "users" / f"district={DISTRICT}" / ".tmp-half"
    half_landed.mkdir(parents=True)
    owner = {"host": machine(), "pid": killed_pid, "started": killed_started}
    (half_landed / "_owner.json").write_bytes(orjson.dumps(owner))
    assert home_instance.get_run_by_id(killed_run).status == dg.DagsterRunStatus.STARTED  # as the kill left it

    said: list[str] = []
    result = sync_district(DISTRICT, instance=home_instance, settings=world.settings, slot_timeout=60, say=said.append)

    assert result.success, result.error
    assert home_instance.get_run_by_id(killed_run).status == dg.DagsterRunStatus.FAILURE
    assert any(killed_run in line and "no longer exists" in line for line in said), said
    assert any(".tmp-half" in line for line in said), said
    assert not half_landed.exists()
    assert not home_instance.event_log_storage.get_concurrency_info(ROSTER_POOL).active_run_ids


@pytest.mark.e2e
def test_sync_waiting_for_a_live_publish_names_it_and_gives_up_after_the_bound(
    world: PipelineWorld,
    home_instance: dg.DagsterInstance,
    small_district: Callable[..., SyntheticDistrict],
) -> None:
    world.add_rest_district(small_district(DISTRICT))
    with another_sync_publishing(world, home_instance) as holder:
        said: list[str] = []

        result = sync_district(
            DISTRICT, instance=home_instance, settings=world.settings, slot_timeout=3, say=said.append
        )

        assert not result.success
        assert result.error is not None
        assert "gave up after waiting" in result.error and holder[:8] in result.error
        assert f"district '{DISTRICT}'" in result.error
        assert any("waiting for a 'roster_duckdb' pool slot held by run " + holder[:8] in line for line in said)
    assert home_instance.get_run_by_id(holder).status == dg.DagsterRunStatus.SUCCESS


@pytest.mark.e2e
def test_a_sync_that_loses_the_race_for_the_slot_still_gives_up_after_the_bound(
    world: PipelineWorld,
    home_instance: dg.DagsterInstance,
    small_district: Callable[..., SyntheticDistrict],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    world.add_rest_district(small_district(DISTRICT))
    with another_sync_publishing(world, home_instance) as holder:
        # As if the other run claimed the slot just after this sync saw the pool free.
        monkeypatch.setattr(sync_module, "wait_for_room", lambda *args, **kwargs: None)
        said: list[str] = []

        result = sync_district(
            DISTRICT, instance=home_instance, settings=world.settings, slot_timeout=3, say=said.append
        )

        assert not result.success
        assert result.error is not None and "gave up after waiting" in result.error
        assert holder[:8] in result.error
        stopped = home_instance.get_run_by_id(result.run_id)
        assert stopped is not None and stopped.status == dg.DagsterRunStatus.FAILURE
        pool = home_instance.event_log_storage.get_concurrency_info(ROSTER_POOL)
        assert result.run_id not in {step.run_id for step in pool.pending_steps}


def test_the_sensor_fails_a_daemon_run_whose_process_died_and_frees_its_slot(
    world: PipelineWorld, home_instance: dg.DagsterInstance
) -> None:
    run = add_abandoned_run(home_instance, "district_sync", **{"roster/district": DISTRICT})
    storage = home_instance.event_log_storage
    storage.set_concurrency_slots(ROSTER_POOL, 1)
    assert storage.claim_concurrency_slot(ROSTER_POOL, run.run_id, "roster_tables").is_claimed

    context = dg.build_sensor_context(instance=home_instance, resources={"settings": world.settings})
    outcome = abandoned_runs_sensor(context)

    assert isinstance(outcome, dg.SkipReason)
    assert "recovered 1 abandoned run" in (outcome.skip_message or "")
    recovered = home_instance.get_run_by_id(run.run_id)
    assert recovered is not None and recovered.status == dg.DagsterRunStatus.FAILURE
    assert not storage.get_concurrency_info(ROSTER_POOL).active_run_ids
