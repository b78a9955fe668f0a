"""Whole syncs against a misbehaving provider: what lands, what fails, and what the error says."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import yaml

from roster_pipeline.sandbox.generator import SyntheticDistrict
from roster_pipeline_tests.pipeline_fixtures import PipelineWorld

DISTRICT = "fault-usd"


def _serve(world: PipelineWorld, district: SyntheticDistrict, **entry: Any) -> None:
    world.add_rest_district(district, registry_entry=entry or None)
    world.entries[-1]["source"]["page_size"] = 25
    (world.data_dir / "districts.yaml").write_text(yaml.safe_dump({"districts": world.entries}))


def test_records_served_twice_across_pages_land_once_and_are_counted(
    world: PipelineWorld, small_district: Callable[..., SyntheticDistrict]
) -> None:
    district = small_district(DISTRICT)
    _serve(world, district)
    first = district.records("users")[0]

    def insert_before_the_offset() -> None:  # later pages shift forward: their first records were served already
        for n in range(5):
            district.upsert("users", {**first, "sourcedId": f"0000-new-{n}", "username": f"new{n}"})

    world.server.faults(DISTRICT).change_while_paging("users", 100, insert_before_the_offset)

    result = world.sync(DISTRICT)

    assert result.success, result.error
    with world.roster() as con:
        duplicates = con.execute("SELECT duplicates FROM ops.applied_batches WHERE endpoint = 'users'").fetchone()
        counts = con.execute(
            "SELECT count(*), count(DISTINCT sourced_id) FROM users_all WHERE district_id = ?", [DISTRICT]
        ).fetchone()
    assert duplicates is not None and duplicates[0] >= 5
    assert counts is not None and counts[0] == counts[1]
    # The inserted users sort first and were not on page 0 when it was served: a delta picks them up next.
    assert world.sync(DISTRICT).success
    with world.roster() as con:
        row = con.execute("SELECT count(*) FROM users WHERE sourced_id LIKE '0000-new-%'").fetchone()
    assert row == (5,)


def test_the_registry_read_timeout_and_retry_budget_govern_a_hanging_provider(
    world: PipelineWorld, small_district: Callable[..., SyntheticDistrict]
) -> None:
    _serve(world, small_district(DISTRICT), network={"read_timeout": 0.3, "max_attempts": 2})
    world.server.faults(DISTRICT).slow(1.0)  # every API response comes after the read timeout

    result = world.sync(DISTRICT)

    assert not result.success
    assert result.error is not None
    assert "0.3 s read timeout" in result.error and "after 2 attempts" in result.error
    assert f"district '{DISTRICT}'" in result.error
    assert not world.published.exists()  # nothing half-read was published

    world.server.faults(DISTRICT).clear()
    assert world.sync(DISTRICT).success  # the provider is back: the next run lands everything
