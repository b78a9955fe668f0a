"""A district's endpoints are fetched side by side, within a budget, in one step of one process."""

from __future__ import annotations

import threading
import time

import dagster as dg
from dagster._core.storage.defs_state.base import set_defs_state_storage

from roster_pipeline.definitions import defs
from roster_pipeline.defs.asset_keys import fetch_asset_key
from roster_pipeline.defs.automation import district_sync_job
from roster_pipeline.defs.endpoint_assets import (
    FETCH_STEP,
    LARGEST_FIRST,
    MAX_CONCURRENT_ENDPOINTS,
    endpoint_budget,
    oneroster_endpoints,
)
from roster_pipeline.defs.roster_assets import ROSTER_POOL, roster_tables
from roster_pipeline.oneroster import ENDPOINT_NAMES
from roster_pipeline.sandbox.faults import Faults
from roster_pipeline.sandbox.generator import DistrictSpec, generate_district
from roster_pipeline_tests.pipeline_fixtures import PipelineWorld

DISTRICT = "oak"


class FirstPages:
    """Holds the first page request of each endpoint in the sandbox's handler thread, counting how many
    endpoints are held at once. A request is held until more than `budget` are, or `hold` seconds pass: the
    endpoints a client fetches side by side are all held together, and a client exceeding the budget is seen."""

    def __init__(self, faults: Faults, budget: int, hold: float = 1.5) -> None:
        self.budget, self.hold = budget, hold
        self.held, self.most_at_once = 0, 0
        self.condition = threading.Condition()
        for endpoint in ENDPOINT_NAMES:
            faults.change_while_paging(endpoint, 0, self.first_page)

    def first_page(self) -> None:
        with self.condition:
            self.held += 1
            self.most_at_once = max(self.most_at_once, self.held)
            self.condition.notify_all()
            self.condition.wait_for(lambda: self.held > self.budget, timeout=self.hold)
            self.held -= 1


def serve(world: PipelineWorld, **entry: object) -> None:
    district = generate_district(DistrictSpec(DISTRICT, seed=4, schools=2, students_per_school=20))
    world.add_rest_district(district, registry_entry=dict(entry) or None)


def test_a_districts_endpoints_are_in_flight_at_the_same_time(world: PipelineWorld) -> None:
    serve(world)
    pages = FirstPages(world.server.faults(DISTRICT), budget=len(ENDPOINT_NAMES))

    result = world.sync(DISTRICT)

    assert result.success, result.error
    assert set(result.endpoints) == set(ENDPOINT_NAMES)
    # One at a time would hold one first page at most; side by side, the whole budget is held together.
    assert pages.most_at_once == MAX_CONCURRENT_ENDPOINTS


def test_never_more_endpoints_at_once_than_the_budget(world: PipelineWorld) -> None:
    serve(world)
    budget = endpoint_budget(world.settings.registry().district(DISTRICT))
    assert budget == MAX_CONCURRENT_ENDPOINTS < len(ENDPOINT_NAMES)  # the budget, not the endpoints, is the limit
    pages = FirstPages(world.server.faults(DISTRICT), budget=budget)

    result = world.sync(DISTRICT)

    assert result.success, result.error
    assert pages.most_at_once == budget


def test_a_provider_tolerating_fewer_parallel_requests_gets_fewer_endpoints_at_once(world: PipelineWorld) -> None:
    serve(world, provider="skyward")  # its profile keeps it to two parallel requests
    budget = endpoint_budget(world.settings.registry().district(DISTRICT))
    assert budget == 2
    pages = FirstPages(world.server.faults(DISTRICT), budget=budget)

    result = world.sync(DISTRICT)

    assert result.success, result.error
    assert pages.most_at_once == 2


def test_the_endpoints_of_a_run_share_one_token(world: PipelineWorld) -> None:
    serve(world)

    result = world.sync(DISTRICT)

    assert result.success, result.error
    requests = world.server.request_log(DISTRICT)
    tokens = [record for record in requests if record.path.endswith("/oauth/token")]
    fetched = {record.path.rsplit("/", 1)[-1] for record in requests} & set(ENDPOINT_NAMES)
    assert fetched == set(ENDPOINT_NAMES) and len(tokens) == 1  # it was one per endpoint


def test_a_failing_endpoint_fails_the_run_naming_it_while_the_others_land(world: PipelineWorld) -> None:
    serve(world, network={"max_attempts": 1})
    world.server.faults(DISTRICT).fail_endpoint("classes", status=500, after_offset=0)

    result = world.sync(DISTRICT)

    assert not result.success
    assert result.error is not None and "district 'oak', endpoint classes" in result.error
    assert list(result.step_errors) == ["oneroster__classes"]
    others = [endpoint for endpoint in ENDPOINT_NAMES if endpoint != "classes"]
    assert sorted(result.endpoints) == sorted(others)  # each landed endpoint is materialised, the failed one not
    lake = world.settings.lake()
    assert all(len(lake.batches(endpoint, DISTRICT)) == 1 for endpoint in others)
    assert lake.batches("classes", DISTRICT) == []
    assert not result.tables  # nothing is published from a district that did not land whole
    assert world.instance.get_latest_materialization_event(fetch_asset_key("classes")) is None
    (failure,) = world.instance.all_logs(result.run_id, of_type=dg.DagsterEventType.STEP_FAILURE)
    assert failure.step_key == FETCH_STEP

    world.server.faults(DISTRICT).clear()
    assert world.sync(DISTRICT).success  # the next run lands classes and publishes everything


def test_a_lone_selected_endpoint_is_fetched_and_materialised_alone(world: PipelineWorld) -> None:
    serve(world)
    world.instance.add_dynamic_partitions("district", [DISTRICT])

    result = dg.materialize(
        [oneroster_endpoints],
        selection=[fetch_asset_key("orgs")],
        instance=world.instance,
        partition_key=DISTRICT,
        resources={"settings": world.settings},
    )

    assert result.success
    assert [event.asset_key for event in result.get_asset_materialization_events()] == [fetch_asset_key("orgs")]
    requested = {record.path.rsplit("/", 1)[-1] for record in world.server.request_log(DISTRICT)}
    assert requested & set(ENDPOINT_NAMES) == {"orgs"}


def test_the_district_sync_job_runs_in_one_process_fetching_before_it_publishes() -> None:
    job = defs.resolve_job_def("district_sync")

    assert job.executor_def is dg.in_process_executor
    # Two steps: every endpoint, then the publish (the one holding the roster_duckdb pool slot) once they landed.
    upstream = job.graph.dependency_structure.all_upstream_outputs_from_node("roster_tables")
    assert {output.node_name for output in upstream} == {FETCH_STEP}


def test_the_district_sync_run_lands_every_endpoint_then_waits_for_the_roster_pool_slot(world: PipelineWorld) -> None:
    serve(world)
    definitions = dg.Definitions(
        assets=[oneroster_endpoints, roster_tables], jobs=[district_sync_job], resources={"settings": world.settings}
    )
    job = definitions.resolve_job_def("district_sync")
    with dg.instance_for_test(overrides={"concurrency": {"pools": {"default_limit": 1}}}) as instance:
        instance.add_dynamic_partitions("district", [DISTRICT])
        storage = instance.event_log_storage
        storage.set_concurrency_slots(ROSTER_POOL, 1)  # as dagster.yaml's default_limit sets it on first use
        assert storage.claim_concurrency_slot(ROSTER_POOL, "another-run", "roster_tables").is_claimed
        outcome: list[dg.ExecuteInProcessResult] = []
        # The in-process executor `district_sync` runs with (and `execute_in_process` always uses).
        run = threading.Thread(
            target=lambda: outcome.append(
                job.execute_in_process(instance=instance, partition_key=DISTRICT, raise_on_error=False)
            )
        )
        with set_defs_state_storage(instance.defs_state_storage):
            run.start()
            blocked = wait_for_event(instance, "Step blocked by limit for pool roster_duckdb")
            assert blocked.step_key == "roster_tables"
            landed = instance.all_logs(blocked.run_id, of_type=dg.DagsterEventType.ASSET_MATERIALIZATION)
            assert {e.dagster_event.asset_key for e in landed if e.dagster_event} == {
                fetch_asset_key(endpoint) for endpoint in ENDPOINT_NAMES
            }
            storage.free_concurrency_slots_for_run("another-run")
            run.join(timeout=300)

    assert outcome and outcome[0].success
    steps = [e.step_key for e in outcome[0].all_events if e.event_type == dg.DagsterEventType.STEP_START]
    assert steps == [FETCH_STEP, "roster_tables"]


def wait_for_event(instance: dg.DagsterInstance, message: str, deadline_s: float = 120) -> dg.EventLogEntry:
    """The first event of the instance's (only) run with this message, once it is logged."""
    give_up = time.monotonic() + deadline_s
    while time.monotonic() < give_up:
        for run in instance.get_runs():
            for entry in instance.all_logs(run.run_id):
                if entry.message == message:
                    return entry
        time.sleep(0.1)
    raise AssertionError(f"no event {message!r} within {deadline_s} s")


def test_the_usually_largest_endpoints_start_first(world: PipelineWorld) -> None:
    serve(world)
    FirstPages(world.server.faults(DISTRICT), budget=MAX_CONCURRENT_ENDPOINTS)

    result = world.sync(DISTRICT)

    assert result.success, result.error
    paths = [record.path.rsplit("/", 1)[-1] for record in world.server.request_log(DISTRICT)]
    first = list(dict.fromkeys(path for path in paths if path in ENDPOINT_NAMES))[:MAX_CONCURRENT_ENDPOINTS]
    # Started in table order, enrollments (the largest) waited for a slot and then paged alone at the end.
    assert set(first) == set(LARGEST_FIRST[:MAX_CONCURRENT_ENDPOINTS])
    assert set(first) == {"enrollments", "users", "demographics", "classes"}
