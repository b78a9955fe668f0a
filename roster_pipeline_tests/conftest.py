"""Shared fixtures: a live OneRoster sandbox server on 127.0.0.1, small synthetic districts, a pipeline world."""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import dagster as dg
import pytest
from dagster._core.storage.defs_state.base import set_defs_state_storage

from roster_pipeline.config.settings import instance_class
from roster_pipeline.sandbox.faults import Faults
from roster_pipeline.sandbox.generator import DistrictSpec, SyntheticDistrict, generate_district
from roster_pipeline.sandbox.server import DistrictAuth, SandboxServer
from roster_pipeline_tests.pipeline_fixtures import PipelineWorld

pytest_plugins = ["roster_pipeline_tests.s3_server"]  # the `s3_endpoint` and `bucket` fixtures


@pytest.fixture(autouse=True)
def no_leftover_dagster_instance() -> Iterator[None]:
    """Each test starts with no "current" Dagster instance: Dagster remembers the last one entered in a context
    variable, and one a finished test disposed made a later test's definitions fail to load ("Attempted to resolve
    undefined DagsterInstance weakref")."""
    with set_defs_state_storage(None):
        yield


@pytest.fixture(autouse=True)
def environment_restored() -> Iterator[None]:
    """Each test starts from the same environment: commands under test set `DAGSTER_HOME` for their own process
    (`ensure_dagster_home`), which must not point a later test at a temporary folder that is gone."""
    saved = dict(os.environ)
    yield
    os.environ.clear()
    os.environ.update(saved)


@pytest.fixture
def sandbox_server() -> Iterator[SandboxServer]:
    """A running sandbox server with no districts yet; stopped after the test."""
    with SandboxServer() as server:
        yield server


@pytest.fixture
def small_district() -> Callable[..., SyntheticDistrict]:
    """Factory: `small_district(district_id="test-district", seed=1, **spec_fields)` builds a district.

    The default is 2 schools of 40 students (~180 users); pass DistrictSpec fields to change its shape.
    """

    def build(district_id: str = "test-district", seed: int = 1, **spec_fields: Any) -> SyntheticDistrict:
        return generate_district(DistrictSpec(district_id=district_id, seed=seed, **spec_fields))

    return build


@dataclass(frozen=True)
class ServedDistrict:
    """A district being served, with everything a client needs to reach it."""

    district: SyntheticDistrict
    server: SandboxServer
    auth: DistrictAuth
    base_url: str
    token_url: str

    @property
    def faults(self) -> Faults:
        """The district's fault injector."""
        return self.server.faults(self.district.district_id)


@pytest.fixture
def served_district(
    sandbox_server: SandboxServer, small_district: Callable[..., SyntheticDistrict]
) -> Callable[..., ServedDistrict]:
    """Factory: build a small district and serve it on `sandbox_server`.

    `served_district(district_id="test-district", seed=1, auth_kind="oauth2", header_mode="both",
    max_page_size=None, offered=None, wrap_errors=False, **spec_fields)`; the credentials are
    `<district_id>-client` / `<district_id>-secret`.
    """

    def serve(
        district_id: str = "test-district",
        seed: int = 1,
        auth_kind: str = "oauth2",
        header_mode: str = "both",
        max_page_size: int | None = None,
        offered: set[str] | None = None,
        wrap_errors: bool = False,
        **spec_fields: Any,
    ) -> ServedDistrict:
        district = small_district(district_id, seed, **spec_fields)
        auth = DistrictAuth(auth_kind, f"{district_id}-client", f"{district_id}-secret")  # type: ignore[arg-type]
        sandbox_server.add_district(
            district,
            auth=auth,
            header_mode=header_mode,  # type: ignore[arg-type]
            max_page_size=max_page_size,
            offered=offered,
            wrap_errors=wrap_errors,
        )
        return ServedDistrict(
            district,
            sandbox_server,
            auth,
            sandbox_server.base_url(district_id),
            sandbox_server.token_url(district_id),
        )

    return serve


@pytest.fixture
def world(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[PipelineWorld]:
    """A pipeline world for end-to-end syncs: a sandbox server, an empty data folder and a Dagster instance with
    the project's instance storage."""
    with SandboxServer() as server, dg.instance_for_test(overrides=instance_class()) as instance:
        data_dir = tmp_path / "data"
        data_dir.mkdir()
        yield PipelineWorld(server, data_dir, instance, monkeypatch, [])
