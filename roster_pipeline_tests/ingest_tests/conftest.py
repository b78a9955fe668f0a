"""Fixtures for CSV bundle tests: hand-written bundles, CSV districts, and a real SFTP server on loopback."""

from __future__ import annotations

import asyncio
import os
import threading
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import asyncssh
import pytest

from roster_pipeline.config.registry import DistrictConfig, parse_registry
from roster_pipeline.store.lake import Lake

MANIFEST_11 = {
    "manifest.version": "1.0",
    "oneroster.version": "1.1",
    "file.academicSessions": "absent",
    "file.orgs": "absent",
    "file.users": "absent",
    "file.classes": "absent",
    "file.enrollments": "absent",
    "file.courses": "absent",
    "file.demographics": "absent",
}


def write_bundle(
    folder: Path,
    files: dict[str, str],
    *,
    modes: dict[str, str] | None = None,
    mtime: float | None = None,
    manifest: str | None = None,
) -> Path:
    """A bundle folder: ``files`` maps a stem to the CSV text, written byte for byte; the manifest lists them.

    ``modes`` gives each file's manifest mode (default bulk); ``manifest`` replaces the manifest text entirely.
    """
    folder.mkdir(parents=True)
    if manifest is None:
        properties = dict(MANIFEST_11)
        for stem in files:
            properties[f"file.{stem}"] = (modes or {}).get(stem, "bulk")
        manifest = "propertyName,value\r\n" + "".join(f"{k},{v}\r\n" for k, v in properties.items())
    (folder / "manifest.csv").write_bytes(manifest.encode())
    for stem, text in files.items():
        (folder / f"{stem}.csv").write_bytes(text.encode())
    if mtime is not None:
        set_mtime(folder, mtime)
    return folder


def set_mtime(path: Path, mtime: float) -> None:
    """Give a bundle (every file of a folder) a modification time, so tests control 'oldest first'."""
    for item in [path, *path.iterdir()] if path.is_dir() else [path]:
        os.utime(item, (mtime, mtime))


def csv_district(district_id: str, source: dict[str, Any]) -> DistrictConfig:
    """A registered CSV district, validated by the real registry parser."""
    document = {"districts": [{"id": district_id, "provider": "generic", "source": {"kind": "csv", **source}}]}
    return parse_registry(document).district(district_id)


@pytest.fixture
def lake(tmp_path: Path) -> Lake:
    return Lake(tmp_path / "data" / "lake")


@dataclass
class SftpServer:
    """A running asyncssh SFTP server rooted at ``root``; users log in with ``password`` or ``client_key``."""

    host: str
    port: int
    root: Path
    username: str
    password: str
    host_key: asyncssh.SSHKey
    client_key_path: Path

    @property
    def fingerprint(self) -> str:
        return self.host_key.get_fingerprint("sha256")

    def known_hosts_line(self) -> str:
        return f"[{self.host}]:{self.port} {self.host_key.export_public_key().decode().strip()}"


@pytest.fixture
def sftp_server(tmp_path: Path) -> Iterator[SftpServer]:
    """An SFTP server on 127.0.0.1 (random port), with a host key and a client key generated for the test."""
    root = tmp_path / "sftp-root"
    root.mkdir()
    host_key = asyncssh.generate_private_key("ssh-ed25519")
    client_key = asyncssh.generate_private_key("ssh-ed25519")
    client_key_path = tmp_path / "client_key"
    client_key.write_private_key(str(client_key_path))
    username, password = "district-sftp", "s3cret-pass"
    authorized = asyncssh.import_authorized_keys(client_key.export_public_key().decode())

    class Server(asyncssh.SSHServer):
        def begin_auth(self, user: str) -> bool:
            return True

        def password_auth_supported(self) -> bool:
            return True

        def validate_password(self, user: str, given: str) -> bool:
            return user == username and given == password

    loop = asyncio.new_event_loop()
    started = threading.Event()
    state: dict[str, Any] = {}

    async def start() -> None:
        state["server"] = await asyncssh.listen(
            "127.0.0.1",
            0,
            server_factory=Server,
            server_host_keys=[host_key],
            authorized_client_keys=authorized,
            sftp_factory=lambda chan: asyncssh.SFTPServer(chan, chroot=str(root).encode()),
            allow_scp=False,
        )
        state["port"] = state["server"].sockets[0].getsockname()[1]
        started.set()

    def run() -> None:
        asyncio.set_event_loop(loop)
        loop.run_until_complete(start())
        loop.run_forever()

    thread = threading.Thread(target=run, daemon=True)
    thread.start()
    assert started.wait(10), "the SFTP server did not start"
    yield SftpServer("127.0.0.1", state["port"], root, username, password, host_key, client_key_path)

    async def stop() -> None:
        state["server"].close()
        await state["server"].wait_closed()

    asyncio.run_coroutine_threadsafe(stop(), loop).result(10)
    loop.call_soon_threadsafe(loop.stop)
    thread.join(10)
    loop.close()


def read_lake(lake: Lake, endpoint: str, district_id: str) -> list[dict[str, Any]]:
    """Every landed row of an endpoint, batch by batch, as dicts (with the batch's mode under ``_mode``)."""
    import polars as pl

    rows = []
    for batch in lake.batches(endpoint, district_id):
        for row in pl.read_parquet(batch.files).to_dicts():
            rows.append({**row, "_mode": batch.mode, "_batch": batch.batch_id})
    return rows
