"""A step that turns pages of records into frames does not spend its time in Python's cycle collector."""

from __future__ import annotations

import gc
from collections.abc import Iterator
from contextlib import contextmanager

from roster_pipeline.defs.gc_tuning import RELAXED_THRESHOLD, relaxed_gc
from roster_pipeline.sandbox.generator import DistrictSpec, generate_district
from roster_pipeline_tests.pipeline_fixtures import PipelineWorld


@contextmanager
def counted_collections() -> Iterator[dict[int, int]]:
    """How many collections of each generation CPython runs in the block (from any thread)."""
    counts = {0: 0, 1: 0, 2: 0}

    def count(phase: str, info: dict[str, int]) -> None:
        if phase == "start":
            counts[info["generation"]] += 1

    gc.callbacks.append(count)
    try:
        yield counts
    finally:
        gc.callbacks.remove(count)


def test_relaxed_gc_hides_older_objects_and_restores_the_collector_after() -> None:
    before = gc.get_threshold()
    with relaxed_gc():
        assert gc.get_threshold()[0] == RELAXED_THRESHOLD
        assert gc.get_freeze_count() > 0  # what was alive on entry is not walked again
    assert gc.get_threshold() == before
    assert gc.get_freeze_count() == 0


def test_a_district_sync_collects_rarely(world: PipelineWorld) -> None:
    district = generate_district(DistrictSpec("oak", seed=4, schools=4, students_per_school=1000))
    world.add_rest_district(district)

    with counted_collections() as counts:
        result = world.sync("oak")

    assert result.success, result.error
    # With CPython's default threshold this sync (4,000 students, served by the same process) ran ~270
    # collections; with the steps' relaxed collector ~55, nearly all of them outside the steps.
    assert sum(counts.values()) < 120, counts
