"""A pipeline world (sandbox server, data folder, Dagster instance) for the provider and check tests."""

from __future__ import annotations

from collections.abc import Iterator

import dagster as dg
import pytest

from roster_pipeline.sandbox.server import SandboxServer
from roster_pipeline_tests.assets_tests.pipeline_fixtures import PipelineWorld


@pytest.fixture
def world(tmp_path, monkeypatch) -> Iterator[PipelineWorld]:
    with SandboxServer() as server, dg.instance_for_test() as instance:
        data_dir = tmp_path / "data"
        data_dir.mkdir()
        yield PipelineWorld(server, data_dir, instance, monkeypatch, [])
