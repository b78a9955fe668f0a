"""Which process owns something (a run, a half-written batch), and whether that process still exists.

After a kill, what the dead process held must be recognisable as abandoned without waiting for a release it
can never make; a live owner's work must never be touched. A process is named by host, pid and its start time,
so a pid the kernel has since given to another process does not pass for the owner.
"""

from __future__ import annotations

import os
import socket
from dataclasses import dataclass
from pathlib import Path
from typing import Any


@dataclass(frozen=True)
class RunProcess:
    host: str
    pid: int
    started: str | None  # the kernel's start time of the process (None: unknown)

    def alive(self) -> bool:
        """Whether this process still exists on this machine (and is the same process, not a reused pid)."""
        try:
            os.kill(self.pid, 0)
        except ProcessLookupError:
            return False
        except PermissionError:  # exists, owned by someone else
            return True
        fields = _stat_fields(self.pid)
        if fields and fields[0] == "Z":  # killed, not yet reaped by its parent: it holds nothing any more
            return False
        return self.started is None or (fields is not None and fields[19] == self.started)


def process_start_time(pid: int) -> str | None:
    """The process's start time in clock ticks since boot (Linux ``/proc/<pid>/stat`` field 22), or None."""
    fields = _stat_fields(pid)
    return fields[19] if fields else None


def _stat_fields(pid: int) -> list[str] | None:
    """``/proc/<pid>/stat`` after the command name (state first), or None where there is no such file."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    return stat.rsplit(")", 1)[1].split()


def machine() -> str:
    """Where pids mean the same thing: the host name, its boot and its pid namespace. Containers sharing a host
    name (`network_mode: host`) have their own pids, and a reboot reuses them all."""
    parts = [socket.gethostname()]
    for source in (Path("/proc/sys/kernel/random/boot_id"), Path("/proc/self/ns/pid")):
        try:
            parts.append(source.read_text().strip() if source.is_file() else os.readlink(source))
        except OSError:
            continue
    return "/".join(parts)


def current_process() -> RunProcess:
    pid = os.getpid()
    return RunProcess(machine(), pid, process_start_time(pid))


def owner_record() -> dict[str, Any]:
    """What to write beside a temporary file or folder so a later run can tell whether its writer is alive."""
    process = current_process()
    return {"host": process.host, "pid": process.pid, "started": process.started}


def owner_gone(record: dict[str, Any]) -> bool:
    """Whether the process an ``owner_record`` names has exited (only decidable on its own host)."""
    if record.get("host") != machine() or not isinstance(record.get("pid"), int):
        return False
    return not RunProcess(record["host"], record["pid"], record.get("started")).alive()
