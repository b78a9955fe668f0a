"""`roster-pipeline dev` (what `make dagster` runs): `dagster dev` with the demo districts served.

`dagster dev` starts the schedules, and their 24-hour catch-up launches a delta run of every enabled district at
the next quarter hour. The demo districts only sync if something serves them, so this launcher starts the demo
sandbox on the port the registry names, hands `dagster dev` the demo credentials in its environment (public
sandbox values, still never printed), adds the registry's partitions so the UI shows them at once, runs
`dagster dev` against DAGSTER_HOME, and stops the sandbox when Dagster stops. A registry without demo
districts gets no sandbox: `dagster dev` alone.
"""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
from collections.abc import Sequence
from pathlib import Path
from types import FrameType

import dagster as dg

from roster_pipeline.app.demo import (
    DEFAULT_SANDBOX_PORT,
    demo_district_ids,
    sandbox_port_of,
    start_demo_sandbox,
    write_demo_registry,
)
from roster_pipeline.config.registry import load_registry
from roster_pipeline.config.settings import ensure_dagster_home, registry_path
from roster_pipeline.defs.partitions import ensure_district_partitions
from roster_pipeline.sandbox.demo_districts import demo_environment

# How long `dagster dev` gets to stop its webserver, daemon and code server before they are killed.
STOP_TIMEOUT_S = 30


def run_dev(dagster_args: Sequence[str] = (), *, sandbox_port: int | None = None) -> int:
    """Serve the demo districts and run `dagster dev` until it exits (Ctrl-C stops both); returns its exit code."""
    home = ensure_dagster_home()
    path = registry_path()
    if write_demo_registry(path, sandbox_port or DEFAULT_SANDBOX_PORT):
        print(f"Wrote the demo districts to {path} (a new registry)")
    registry = load_registry(path)
    demo_ids = demo_district_ids(registry)
    with contextlib.ExitStack() as stack:
        if demo_ids:
            for name, value in demo_environment().items():
                os.environ.setdefault(name, value)
            try:
                server = stack.enter_context(start_demo_sandbox(sandbox_port_of(registry, demo_ids)))
            except OSError as error:
                print(error.strerror or error, file=sys.stderr)
                return 2
            names = ", ".join(f"${name}" for name in demo_environment())
            print(
                f"Sandbox serving {', '.join(demo_ids)} on {server.url}; their credentials go to dagster dev as {names}"
            )
        with dg.DagsterInstance.get() as instance:
            ensure_district_partitions(instance, registry.enabled)
        print(f"dagster dev with DAGSTER_HOME={home}", flush=True)
        code = run_until_stopped([sys.executable, "-m", "dagster", "dev", *_workspace_args(), *dagster_args])
    if demo_ids:
        print("Sandbox stopped")
    return code


def _workspace_args() -> list[str]:
    """The repository's workspace.yaml where there is one (`make dagster`), else the installed package."""
    return ["-w", "workspace.yaml"] if Path("workspace.yaml").is_file() else ["-m", "roster_pipeline.definitions"]


def run_until_stopped(command: list[str]) -> int:
    """Run `command` in its own process group until it exits; SIGINT or SIGTERM here asks it to stop, once.

    Its own group, because a Ctrl-C at the terminal would otherwise reach `dagster dev` and its webserver and
    daemon all at once, and a second interrupt cuts Dagster's orderly shutdown short.
    """
    process = subprocess.Popen(command, start_new_session=True)
    stopping = False

    def stop(signum: int, frame: FrameType | None) -> None:
        nonlocal stopping
        if not stopping:
            stopping = True
            with contextlib.suppress(ProcessLookupError):
                process.send_signal(signal.SIGTERM)  # dagster dev treats it as its Ctrl-C

    previous = {sig: signal.signal(sig, stop) for sig in (signal.SIGINT, signal.SIGTERM)}
    try:
        code = process.wait()
    finally:
        if process.poll() is None:  # left by an exception, not a signal: stop it all the same
            stop(signal.SIGTERM, None)
            with contextlib.suppress(subprocess.TimeoutExpired):
                process.wait(timeout=STOP_TIMEOUT_S)
        # Whatever of its group outlived it (a webserver that did not stop in time) goes with it.
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(process.pid, signal.SIGKILL)
        for sig, handler in previous.items():
            signal.signal(sig, handler)
    return 0 if stopping else code
