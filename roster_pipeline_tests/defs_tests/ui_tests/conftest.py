"""A real `dagster-webserver` on 127.0.0.1 serving workspace.yaml, with a throwaway instance and data folder."""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import dagster as dg
import httpx
import pytest
import yaml

from roster_pipeline.config.registry import load_registry
from roster_pipeline.config.settings import PROJECT_DAGSTER_YAML
from roster_pipeline.defs.partitions import ensure_district_partitions

REPO_ROOT = Path(__file__).resolve().parents[3]
# Loading the code location takes a while on a small CI machine (2 cores).
STARTUP_TIMEOUT_S = 90


@dataclass(frozen=True)
class DagsterUI:
    """A running webserver: its base URL and a GraphQL client."""

    base_url: str

    def graphql(self, query: str, variables: dict[str, Any] | None = None) -> dict[str, Any]:
        """POST a query to /graphql and return its `data`; fails the test on GraphQL errors."""
        request = {"query": query, "variables": variables or {}}
        response = httpx.post(f"{self.base_url}/graphql", json=request, timeout=30)
        response.raise_for_status()
        body = response.json()
        assert not body.get("errors"), f"GraphQL errors: {body['errors']}"
        return body["data"]


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def write_instance_config(home: Path) -> None:
    """The project's dagster.yaml without the first-visit community dialog (it would cover the screenshot)."""
    config = yaml.safe_load(PROJECT_DAGSTER_YAML.read_text(encoding="utf-8"))
    config["nux"] = {"enabled": False}
    (home / "dagster.yaml").write_text(yaml.safe_dump(config), encoding="utf-8")


def write_instance(home: Path, data_dir: Path) -> None:
    """`write_instance_config`, and the district partitions added as the registry sensor's first tick would (the
    webserver runs no daemon)."""
    write_instance_config(home)
    with dg.DagsterInstance.from_config(str(home)) as instance:
        ensure_district_partitions(instance, load_registry(data_dir / "districts.yaml").enabled)


def wait_until_loaded(process: subprocess.Popen, base_url: str, log_path: Path) -> None:
    """Wait for /server_info and then for the code location to finish loading; fail with the server's log."""
    query = "{ locationStatusesOrError { ... on WorkspaceLocationStatusEntries { entries { name loadStatus } } } }"
    deadline = time.monotonic() + STARTUP_TIMEOUT_S
    while time.monotonic() < deadline:
        if process.poll() is not None:
            pytest.fail(f"dagster-webserver exited with {process.returncode}:\n{log_path.read_text()[-4000:]}")
        try:
            httpx.get(f"{base_url}/server_info", timeout=5).raise_for_status()
            entries = httpx.post(f"{base_url}/graphql", json={"query": query}, timeout=10).json()["data"][
                "locationStatusesOrError"
            ]["entries"]
            if entries and all(entry["loadStatus"] == "LOADED" for entry in entries):
                return
        except httpx.HTTPError:
            pass
        time.sleep(0.5)
    pytest.fail(f"dagster-webserver not ready within {STARTUP_TIMEOUT_S}s:\n{log_path.read_text()[-4000:]}")


@pytest.fixture(scope="session")
def dagster_ui(tmp_path_factory: pytest.TempPathFactory) -> Iterator[DagsterUI]:
    """`dagster-webserver -w workspace.yaml` on a free loopback port, stopped (with its code server) afterwards."""
    root = tmp_path_factory.mktemp("dagster_ui")
    home, data_dir = root / "dagster_home", root / "data"
    home.mkdir()
    data_dir.mkdir()
    shutil.copyfile(REPO_ROOT / "data" / "districts.yaml", data_dir / "districts.yaml")
    write_instance(home, data_dir)

    port = free_port()
    env = {**os.environ, "DAGSTER_HOME": str(home), "ROSTER_DATA_DIR": str(data_dir)}
    env.pop("ROSTER_DISTRICTS_FILE", None)
    log_path = root / "webserver.log"
    command = [sys.executable, "-m", "dagster_webserver", "-w", "workspace.yaml", "-h", "127.0.0.1", "-p", str(port)]
    with log_path.open("wb") as log:
        # Its own process group, so stopping it also stops the code server it spawns.
        process = subprocess.Popen(
            command, cwd=REPO_ROOT, env=env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True
        )
    try:
        base_url = f"http://127.0.0.1:{port}"
        wait_until_loaded(process, base_url, log_path)
        yield DagsterUI(base_url)
    finally:
        stop(process)


def stop(process: subprocess.Popen) -> None:
    """SIGTERM the server's process group, then SIGKILL whatever of the group is left after 15 s."""
    with contextlib.suppress(ProcessLookupError):
        os.killpg(process.pid, signal.SIGTERM)
    with contextlib.suppress(subprocess.TimeoutExpired):
        process.wait(timeout=15)
    with contextlib.suppress(ProcessLookupError):
        os.killpg(process.pid, signal.SIGKILL)
    process.wait(timeout=15)
