"""Alerts over real syncs: a sandbox district whose credential is wrong fails run after run, is told once, and is
told resolved once a sync with the right credential publishes it."""

from __future__ import annotations

import dagster as dg
import yaml

from roster_pipeline.defs.alerts import district_alerts_sensor
from roster_pipeline_tests.notify_tests.conftest import WEBHOOK_ENV
from roster_pipeline_tests.pipeline_fixtures import PipelineWorld


def tick(world: PipelineWorld, cursor: str | None) -> str | None:
    context = dg.build_sensor_context(instance=world.instance, cursor=cursor, resources={"settings": world.settings})
    result = district_alerts_sensor(context)
    assert isinstance(result, dg.SensorResult)
    return result.cursor


def test_a_district_with_a_wrong_secret_is_told_failing_and_stale_then_resolved_once_it_publishes(
    world, small_district, webhook, monkeypatch
):
    world.add_rest_district(small_district("pine", schools=1, students_per_school=10))
    registry = {"districts": world.entries, "notifications": {"webhook": {"url_env": WEBHOOK_ENV}}}
    (world.data_dir / "districts.yaml").write_text(yaml.safe_dump(registry))
    monkeypatch.setenv("PINE_SECRET", "not-the-pine-secret")

    cursor = None
    for _ in range(2):
        assert not world.sync("pine").success
    cursor = tick(world, cursor)
    assert [text.splitlines()[0] for text in webhook.texts()] == ["District pine is stale"]

    failed = world.sync("pine")
    cursor = tick(world, cursor)
    failing = webhook.texts()[-1]
    assert failing.splitlines()[0] == "District pine failed 3 runs in a row"
    assert f"latest {failed.run_id})" in failing
    assert "401" in failing and "PINE_SECRET" in failing and "not-the-pine-secret" not in failing
    assert "`roster-pipeline check pine`" in failing

    monkeypatch.setenv("PINE_SECRET", "pine-secret")
    assert world.sync("pine").success
    cursor = tick(world, cursor)
    tick(world, cursor)
    assert sorted(text.splitlines()[0] for text in webhook.texts()[2:]) == [
        "District pine has had a successful run",
        "District pine has published again",
    ]
