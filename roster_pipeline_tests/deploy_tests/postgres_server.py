"""A real PostgreSQL server on 127.0.0.1 for the deployment tests, from the PostgreSQL binaries the `pgserver` wheel
ships (a test dependency), in a temporary folder: no system service, nothing outside that folder.

PostgreSQL refuses to run as root, and CI runs as root; then initdb, pg_ctl and the server run as an unprivileged
system user (`roster-pg`, created when missing) that owns the data folder. The folder is made under the system's
temporary directory (world-traversable), not under pytest's, which is private to root.

`running_postgres()` initialises a cluster, starts it on a free port (TCP on loopback only, its socket in the data
folder), creates one role and one database per client (Dagster's storage and the roster's DuckLake catalog, as
deploy/docker-compose.yaml does) each with a generated password, and stops the server (`pg_ctl stop -m fast`) and
removes the folder however the block ends.
"""

from __future__ import annotations

import contextlib
import importlib.util
import os
import pwd
import secrets
import shutil
import signal
import socket
import subprocess
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import psycopg2
from psycopg2 import sql

SYSTEM_USER = "roster-pg"
SUPERUSER = "postgres"
HOST = "127.0.0.1"
START_ATTEMPTS = 3  # a free port found by binding may be taken by another process before the server binds it


class PostgresUnavailable(RuntimeError):
    """The PostgreSQL binaries are missing, or the server would not initialise or start (the log's tail says why)."""


@dataclass(frozen=True)
class PostgresServer:
    """A running server: where it listens, and each database's owner role with its password."""

    host: str
    port: int
    socket_dir: Path
    passwords: dict[str, str] = field(repr=False)  # role -> password; each role owns the database of its name

    def dsn(self, database: str) -> str:
        """A libpq connection string for `database` as its owner, without the password (PGPASSWORD carries it)."""
        return f"dbname={database} host={self.host} port={self.port} user={database}"

    def connect(self, database: str) -> psycopg2.extensions.connection:
        """A TCP connection to `database` as its owner, authenticated with its password (autocommit)."""
        con = psycopg2.connect(
            host=self.host, port=self.port, dbname=database, user=database, password=self.passwords[database]
        )
        con.autocommit = True
        return con


def postgres_bin() -> Path:
    """The folder holding initdb, pg_ctl and postgres from the `pgserver` wheel (found without importing it: its
    import starts bookkeeping of its own in the user's runtime folder)."""
    spec = importlib.util.find_spec("pgserver")
    folders = list(spec.submodule_search_locations or []) if spec else []
    for folder in folders:
        binaries = Path(folder) / "pginstall" / "bin"
        if (binaries / "pg_ctl").exists():
            return binaries
    raise PostgresUnavailable(
        "PostgreSQL's binaries were not found: the deployment test needs the test extra (pip install -e '.[test]', "
        "which installs pgserver)"
    )


@contextlib.contextmanager
def running_postgres(databases: tuple[str, ...] = ("dagster", "roster")) -> Iterator[PostgresServer]:
    """A PostgreSQL server on loopback with a role and a database for each name in `databases`; stopped and its
    folder removed when the block ends, whatever happened in it."""
    binaries = postgres_bin()
    owner = _server_user()
    folder = Path(tempfile.mkdtemp(prefix="roster-pg-"))
    data, socket_dir = folder / "data", folder / "socket"
    started = False
    try:
        socket_dir.mkdir()
        folder.chmod(0o755)
        if owner:
            _make_reachable(owner, binaries)
            for path in (folder, socket_dir):
                os.chown(path, owner.pw_uid, owner.pw_gid)
        _run(owner, [binaries / "initdb", "-D", data, "-U", SUPERUSER, "--auth-local=trust",
                     "--auth-host=scram-sha-256", "-E", "UTF8", "--no-sync"], folder)  # fmt: skip
        port = _start(owner, binaries, data, socket_dir, folder)
        started = True
        passwords = {name: secrets.token_urlsafe(18) for name in databases}
        _create_databases(socket_dir, port, passwords)
        yield PostgresServer(HOST, port, socket_dir, passwords)
    finally:
        if started:
            _stop(owner, binaries, data, folder)
        shutil.rmtree(folder, ignore_errors=True)


def _server_user() -> pwd.struct_passwd | None:
    """The unprivileged user the server runs as when this process is root (created the first time); None otherwise."""
    if os.geteuid() != 0:
        return None
    try:
        return pwd.getpwnam(SYSTEM_USER)
    except KeyError:
        subprocess.run(
            ["useradd", "--system", "--no-create-home", "--shell", "/usr/sbin/nologin", SYSTEM_USER],
            check=True,
            capture_output=True,
            text=True,
        )
        return pwd.getpwnam(SYSTEM_USER)


def _make_reachable(owner: pwd.struct_passwd, binaries: Path) -> None:
    """Let the server's user run the binaries and read the libraries and share files beside them, when it cannot
    yet (a virtual environment created with a umask of 077): group and others get read, and traverse on folders."""
    probe = ["runuser", "-u", owner.pw_name, "--", str(binaries / "postgres"), "--version"]
    if subprocess.run(probe, capture_output=True, env=_server_env()).returncode == 0:
        return
    path = binaries.parent
    while path != path.parent:
        path.chmod(path.stat().st_mode | 0o055)
        path = path.parent
    for root, folders, files in os.walk(binaries.parent):
        for name in (*folders, *files):
            entry = Path(root) / name
            mode = entry.stat().st_mode
            entry.chmod(mode | 0o044 | (0o011 if entry.is_dir() or mode & 0o100 else 0))


def _run(owner: pwd.struct_passwd | None, command: list[str | Path], cwd: Path) -> None:
    """Run a PostgreSQL command as the server's user; its output goes into the error if it fails."""
    argv = [str(part) for part in command]
    if owner:
        argv = ["runuser", "-u", owner.pw_name, "--", *argv]
    result = subprocess.run(argv, cwd=cwd, capture_output=True, text=True, timeout=120, env=_server_env())
    if result.returncode:
        raise PostgresUnavailable(f"{' '.join(argv)} exited with {result.returncode}:\n{result.stdout}{result.stderr}")


def _server_env() -> dict[str, str]:
    """A plain environment for the server: none of the test's PG* variables (a PGPASSWORD meant for a client)."""
    keep = ("PATH", "LANG", "LC_ALL", "TZ")
    return {key: os.environ[key] for key in keep if key in os.environ}


def _start(owner: pwd.struct_passwd | None, binaries: Path, data: Path, socket_dir: Path, folder: Path) -> int:
    """Start the server on a free loopback port and return the port; a port lost to a race is tried again."""
    log = folder / "server.log"
    for attempt in range(1, START_ATTEMPTS + 1):
        port = _free_port()
        # Durability is not what this server is for: fsync off keeps three districts' commits fast on a small CI.
        options = (
            f"-c listen_addresses={HOST} -p {port} -k {socket_dir} -c fsync=off -c synchronous_commit=off "
            "-c full_page_writes=off -c max_connections=200"
        )
        try:
            _run(owner, [binaries / "pg_ctl", "start", "-D", data, "-l", log, "-w", "-t", "60", "-o", options], folder)
            return port
        except PostgresUnavailable as error:
            if attempt == START_ATTEMPTS:
                tail = log.read_text(errors="replace")[-3000:] if log.exists() else "(no server log)"
                raise PostgresUnavailable(f"{error}\nserver log:\n{tail}") from None
    raise AssertionError("unreachable")


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.bind((HOST, 0))
        return int(probe.getsockname()[1])


def _create_databases(socket_dir: Path, port: int, passwords: dict[str, str]) -> None:
    """Each role with its password, owning the database of its name (over the local socket, as the superuser)."""
    con = psycopg2.connect(host=str(socket_dir), port=port, dbname="postgres", user=SUPERUSER)
    con.autocommit = True
    try:
        with con.cursor() as cursor:
            for name, password in passwords.items():
                cursor.execute(sql.SQL("CREATE ROLE {} LOGIN PASSWORD %s").format(sql.Identifier(name)), [password])
                cursor.execute(sql.SQL("CREATE DATABASE {0} OWNER {0}").format(sql.Identifier(name)))
    finally:
        con.close()


def _stop(owner: pwd.struct_passwd | None, binaries: Path, data: Path, folder: Path) -> None:
    """`pg_ctl stop -m fast`; if that fails, the postmaster (named in postmaster.pid) is killed outright."""
    try:
        _run(owner, [binaries / "pg_ctl", "stop", "-D", data, "-m", "fast", "-w", "-t", "30"], folder)
        return
    except (PostgresUnavailable, subprocess.TimeoutExpired):
        pass
    with contextlib.suppress(OSError, ValueError, IndexError):
        pid = int((data / "postmaster.pid").read_text().split()[0])
        os.kill(pid, signal.SIGKILL)
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline and Path(f"/proc/{pid}").exists():
            time.sleep(0.1)
