"""Fixtures for the deployment tests: a real PostgreSQL server on loopback."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from roster_pipeline_tests.deploy_tests.postgres_server import PostgresServer, running_postgres


@pytest.fixture
def postgres() -> Iterator[PostgresServer]:
    """A PostgreSQL server from the pgserver wheel's binaries, with databases `dagster` and `roster` (each owned by
    a role of its name with a password); stopped and removed after the test, passed or not."""
    with running_postgres(("dagster", "roster")) as server:
        yield server
