"""Fixtures for the sandbox's own tests."""

from __future__ import annotations

from collections.abc import Callable, Iterator

import httpx
import pytest

from roster_pipeline_tests.conftest import ServedDistrict
from roster_pipeline_tests.sandbox_tests.raw_http import bearer_client


@pytest.fixture
def oak(served_district: Callable[..., ServedDistrict]) -> ServedDistrict:
    """A small OAuth 2.0 district "oak" served with both paging headers."""
    return served_district("oak", seed=3)


@pytest.fixture
def oak_api(oak: ServedDistrict) -> Iterator[httpx.Client]:
    """An authenticated httpx client for "oak", with its OneRoster base URL as base_url."""
    with bearer_client(oak) as client:
        yield client
