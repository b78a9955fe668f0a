"""Mirroring a district's SFTP drop folder into its local inbox ``<data>/inbox/<district>/``.

Bundles are downloaded newest first under a dot-name and renamed into place when complete (the drop-folder
scan ignores dot-names), keeping the server's modification time, until every endpoint of the district has a bulk
bundle: anything older is superseded and never needed. The host key is always checked — against a known_hosts
entry or a pinned SHA256 fingerprint from the registry — and an unknown key is refused, never accepted.
"""

from __future__ import annotations

import asyncio
import fcntl
import os
import posixpath
import shutil
import stat
import uuid
from collections.abc import Callable, Coroutine, Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

import asyncssh

from roster_pipeline.config.registry import DistrictConfig, SftpConfig
from roster_pipeline.oneroster.csv_bundle import open_bundle
from roster_pipeline.oneroster.csv_manifest import MANIFEST_NAME, BundleError

T = TypeVar("T")


class SftpError(RuntimeError):
    """An SFTP source that cannot be used; the message names the district, the server and what to check."""


@dataclass(frozen=True)
class RemoteBundle:
    name: str
    path: str
    is_folder: bool
    mtime: int
    size: int


def mirror_sftp_bundles(
    district: DistrictConfig, config: SftpConfig, inbox: Path, *, log: Callable[[str], None] = lambda m: None
) -> None:
    """Download the bundles of the district's remote folder that its endpoints may still need into ``inbox``.

    Parallel endpoint fetches of one district share the inbox; a file lock makes one of them download while
    the others wait and then find the bundles in place.
    """
    inbox.mkdir(parents=True, exist_ok=True)
    with _locked(inbox / ".lock"):
        _run(_mirror(district, config, inbox, log))


async def _mirror(district: DistrictConfig, config: SftpConfig, inbox: Path, log: Callable[[str], None]) -> None:
    async with _connect(district, config) as connection, connection.start_sftp_client() as sftp:
        try:
            remote = await _remote_bundles(sftp, config.remote_path)
        except asyncssh.SFTPError as error:
            raise SftpError(
                f"district '{district.id}': cannot list remote_path {config.remote_path} on "
                f"{config.host}:{config.port} ({error.reason})"
            ) from None
        needing_bulk = set(district.endpoints)
        for bundle in sorted(remote, key=lambda b: (b.mtime, b.name), reverse=True):
            local = inbox / bundle.name
            if not _have(local, bundle):
                log(f"{district.id}: downloading {bundle.name} from {config.host}")
                await _download(sftp, bundle, inbox)
            try:
                with open_bundle(local) as opened:
                    needing_bulk -= {e for e in district.endpoints if opened.manifest.mode(e) == "bulk"}
            except BundleError:
                continue  # reported when the bundle is planned; an older good bulk may still be needed
            if not needing_bulk:
                break


@contextmanager
def _locked(path: Path) -> Iterator[None]:
    with open(path, "w") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


def _run(coroutine: Coroutine[Any, Any, T]) -> T:
    """Run a coroutine from synchronous code, also when the calling thread already runs an event loop."""
    try:
        asyncio.get_running_loop()
    except RuntimeError:
        return asyncio.run(coroutine)
    with ThreadPoolExecutor(max_workers=1) as pool:
        return pool.submit(asyncio.run, coroutine).result()


def _normalise_fingerprint(value: str) -> str:
    return value.strip().removeprefix("SHA256:").rstrip("=")


class _HostKeyCheck(asyncssh.SSHClient):
    """Accepts only the pinned fingerprint (when one is given) and remembers the key the server showed."""

    def __init__(self, pinned: str | None) -> None:
        self.pinned = _normalise_fingerprint(pinned) if pinned else None
        self.presented: str | None = None

    def validate_host_public_key(self, host: str, addr: str, port: int, key: asyncssh.SSHKey) -> bool:
        self.presented = key.get_fingerprint("sha256")
        return self.pinned is not None and _normalise_fingerprint(self.presented) == self.pinned


@contextmanager
def _refused(district: DistrictConfig, config: SftpConfig, checker: _HostKeyCheck) -> Iterator[None]:
    where = f"district '{district.id}': SFTP server {config.host}:{config.port}"
    try:
        yield
    except asyncssh.HostKeyNotVerifiable:
        expected = (
            f"the pinned host_key_fingerprint {config.host_key_fingerprint}"
            if config.host_key_fingerprint and not config.known_hosts
            else "the registry's known_hosts entry"
        )
        raise SftpError(
            f"{where} presented host key {checker.presented or '(unknown)'}, which does not match {expected}; "
            "refusing to connect. If the server's key really changed, confirm the new fingerprint with its "
            "operator before updating the registry."
        ) from None
    except asyncssh.PermissionDenied:
        credential = f"password_env {config.password_env}" if config.password_env else f"key_path {config.key_path}"
        raise SftpError(f"{where}: user {config.username} was refused; check {credential}") from None
    except (OSError, asyncssh.Error) as error:
        raise SftpError(f"{where}: cannot connect ({error})") from None


class _Connection:
    """``async with _connect(...) as connection``: an authenticated, host-key-checked SSH connection."""

    def __init__(self, district: DistrictConfig, config: SftpConfig) -> None:
        self.district, self.config = district, config
        self.connection: asyncssh.SSHClientConnection | None = None

    async def __aenter__(self) -> asyncssh.SSHClientConnection:
        district, config = self.district, self.config
        if not config.known_hosts and not config.host_key_fingerprint:
            raise SftpError(
                f"district '{district.id}': sftp needs known_hosts or host_key_fingerprint in the registry; host "
                f"keys are never accepted unchecked (get it with: ssh-keyscan -p {config.port} {config.host} "
                "| ssh-keygen -lf -)"
            )
        checker = _HostKeyCheck(config.host_key_fingerprint)
        options: dict[str, Any] = {
            "port": config.port,
            "username": config.username,
            # Only what the registry says counts: no ~/.ssh/config, default keys, agent or user known_hosts.
            "config": [],
            "agent_path": None,
            "known_hosts": _known_hosts(config),
            "connect_timeout": 30,
        }
        if config.password_env:
            options.update(password=district.secret(config.password_env), client_keys=None, public_key_auth=False)
        else:
            options.update(client_keys=[os.path.expanduser(str(config.key_path))], password_auth=False)
        with _refused(district, config, checker):
            self.connection = await asyncssh.connect(config.host, client_factory=lambda: checker, **options)
        presented = self.connection.get_server_host_key()
        if checker.pinned and presented is not None:
            checker.presented = presented.get_fingerprint("sha256")
            if _normalise_fingerprint(checker.presented) != checker.pinned:
                self.connection.close()
                with _refused(district, config, checker):
                    raise asyncssh.HostKeyNotVerifiable("pinned fingerprint mismatch")
        return self.connection

    async def __aexit__(self, *exc_info: object) -> None:
        if self.connection is not None:
            self.connection.close()
            await self.connection.wait_closed()


def _connect(district: DistrictConfig, config: SftpConfig) -> _Connection:
    return _Connection(district, config)


def _known_hosts(config: SftpConfig) -> Any:
    """A known_hosts file path, an entry's text, or (fingerprint only) an empty trust list.

    The empty list makes asyncssh ask `_HostKeyCheck` about every key; an empty value would instead make it
    fall back to ``~/.ssh/known_hosts``, which the registry never vouched for.
    """
    if not config.known_hosts:
        return ([], [], [])
    path = Path(config.known_hosts).expanduser()
    if "\n" not in config.known_hosts and " " not in config.known_hosts.strip() and path.is_file():
        return str(path)
    return asyncssh.import_known_hosts(config.known_hosts)


async def _remote_bundles(sftp: asyncssh.SFTPClient, folder: str) -> list[RemoteBundle]:
    """Zips and manifest-holding folders in ``folder``; a ``folder`` that is a bundle is the only one."""
    if await _holds_manifest(sftp, folder):
        return [await _remote_folder(sftp, posixpath.basename(folder.rstrip("/")) or "bundle", folder)]
    found = []
    for entry in await sftp.readdir(folder):
        name, attrs = str(entry.filename), entry.attrs
        if name.startswith("."):
            continue
        path = posixpath.join(folder, name)
        mode = attrs.permissions or 0
        if stat.S_ISREG(mode) and name.lower().endswith(".zip"):
            found.append(RemoteBundle(name, path, False, int(attrs.mtime or 0), int(attrs.size or 0)))
        elif stat.S_ISDIR(mode) and await _holds_manifest(sftp, path):
            found.append(await _remote_folder(sftp, name, path))
    return found


async def _holds_manifest(sftp: asyncssh.SFTPClient, folder: str) -> bool:
    """Whether a remote folder holds ``manifest.csv``, in any case (real exports write `Manifest.csv`)."""
    return any(str(entry.filename).lower() == MANIFEST_NAME for entry in await sftp.readdir(folder))


async def _remote_folder(sftp: asyncssh.SFTPClient, name: str, path: str) -> RemoteBundle:
    entries = [e for e in await sftp.readdir(path) if stat.S_ISREG(e.attrs.permissions or 0)]
    mtime = max((int(e.attrs.mtime or 0) for e in entries), default=0)
    return RemoteBundle(name, path, True, mtime, sum(int(e.attrs.size or 0) for e in entries))


def _have(local: Path, remote: RemoteBundle) -> bool:
    """Whether the inbox already holds this delivery of the bundle (same modification time and size)."""
    if remote.is_folder:
        if not local.is_dir():
            return False
        files = [p.stat() for p in local.iterdir() if p.is_file()]
        return (
            int(max((f.st_mtime for f in files), default=0)) == remote.mtime
            and sum(f.st_size for f in files) == remote.size
        )
    return local.is_file() and int(local.stat().st_mtime) == remote.mtime and local.stat().st_size == remote.size


async def _download(sftp: asyncssh.SFTPClient, remote: RemoteBundle, inbox: Path) -> None:
    """Download under a dot-name, keeping the server's times, then rename into place in one step."""
    final = inbox / remote.name
    partial = inbox / f".{remote.name}.{uuid.uuid4().hex[:8]}.part"
    try:
        await sftp.get(remote.path, partial, preserve=True, recurse=remote.is_folder)
        if final.is_dir():
            old = inbox / f".{remote.name}.{uuid.uuid4().hex[:8]}.old"
            os.replace(final, old)
            os.replace(partial, final)
            shutil.rmtree(old, ignore_errors=True)
        else:
            os.replace(partial, final)
    finally:
        if partial.is_dir():
            shutil.rmtree(partial, ignore_errors=True)
        else:
            partial.unlink(missing_ok=True)
