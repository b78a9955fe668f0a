"""A district whose merge outgrows the work memory limit still publishes, and the run says so."""

from __future__ import annotations

import pytest

from roster_pipeline_tests.defs_tests.test_pipeline import small
from roster_pipeline_tests.pipeline_fixtures import PipelineWorld


def test_a_sync_whose_merge_outgrows_the_memory_limit_publishes_and_warns(
    world: PipelineWorld, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("ROSTER_WORK_MEMORY_LIMIT", "16MB")  # too little for the merge and publish; 64 MB is enough
    world.add_rest_district(small("oak"), "oauth2")

    result = world.sync("oak")

    assert result.success, result.error
    assert result.tables["students"] > 0
    warnings = [
        entry.user_message
        for entry in world.instance.all_logs(result.run_id)
        if entry.level == 30 and "ROSTER_WORK_MEMORY_LIMIT" in entry.user_message
    ]
    assert warnings == [
        "oak: the merge or publish outgrew ROSTER_WORK_MEMORY_LIMIT=16MB and ran again under 64MB; raise the limit "
        "if this district does it every night"
    ]
