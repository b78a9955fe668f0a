"""`roster-pipeline demo`: the whole pipeline on the bundled demo districts, served by the sandbox.

Full sync of every demo district, a few realistic edits in the sandbox (a new student, a changed guardian, a
withdrawn enrollment, a departed student), a delta sync, and the published row counts. Progress shows live, one
row per district and one column per endpoint; Dagster's own event lines only with `--verbose`.

The demo brings its own districts: where the data folder has no registry yet, it writes one holding the demo
districts (rather than reading a copy bundled in the package), so that `roster-pipeline dev`, `status` and the
Dagster UI pointed at the same data folder see the districts the demo published, and an engineer can read
and edit the file the pipeline runs from.
"""

from __future__ import annotations

import errno
import os
import sys
from pathlib import Path
from urllib.parse import urlsplit

from rich.console import Console
from rich.table import Table

from roster_pipeline.app.progress import findings, terminal
from roster_pipeline.app.sync import sync_with_progress
from roster_pipeline.config.registry import Registry, RestSource, load_registry
from roster_pipeline.config.settings import Settings, registry_path
from roster_pipeline.defs.resources import RosterSettings
from roster_pipeline.sandbox.demo_districts import DEMO_DISTRICTS, build_demo_server, demo_environment
from roster_pipeline.sandbox.generator import SyntheticDistrict
from roster_pipeline.sandbox.server import SandboxServer
from roster_pipeline.store.lakehouse import connect, roster_exists
from roster_pipeline.store.roster_export import export_roster

DEFAULT_SANDBOX_PORT = 8765
# The analyst tables the closing summary counts (all of them are in the file).
SUMMARY_TABLES = {
    "students": "students",
    "teachers": "teachers",
    "guardians": "guardians",
    "classes": "classes",
    "enrollments": "enrollments",
    "guardian_student_links": "guardian links",
    "student_contacts": "contact cards",
}


def run_demo(*, verbose: bool = False, sandbox_port: int | None = None) -> int:
    """Run the demo; returns a process exit code (0 also when checks only warn)."""
    console = terminal()
    path = registry_path()
    if write_demo_registry(path, sandbox_port or DEFAULT_SANDBOX_PORT):
        console.print(f"Wrote the demo districts to {path} (a new registry)")
    registry = load_registry(path)
    demo_ids = demo_district_ids(registry)
    if not demo_ids:
        expected = ", ".join(demo.district_id for demo in DEMO_DISTRICTS)
        print(
            f"no enabled demo district ({expected}) in {registry.source}: point ROSTER_DATA_DIR at a new folder "
            "and the demo writes its own registry there",
            file=sys.stderr,
        )
        return 2
    port = sandbox_port_of(registry, demo_ids)
    if sandbox_port and sandbox_port != port:
        console.print(f"--sandbox-port {sandbox_port} ignored: {path} serves the demo districts on port {port}")
    for env_name, value in demo_environment().items():
        os.environ.setdefault(env_name, value)
    try:
        server = start_demo_sandbox(port)
    except OSError as error:
        print(error.strerror or error, file=sys.stderr)
        return 2
    with server:
        console.print(f"Sandbox serving {', '.join(demo_ids)} on {server.url} (OneRoster 1.1)\n")
        results = sync_with_progress(demo_ids, title="Full sync", full=True, verbose=verbose, console=console)
        console.print()
        _print_edits(console, {district_id: make_edits(server.district(district_id)) for district_id in demo_ids})
        title = "Delta sync: only what changed"
        results += sync_with_progress(demo_ids, title=title, verbose=verbose, console=console)
        console.print()
    paths = RosterSettings().paths
    if roster_exists(paths):
        _print_row_counts(console, paths, demo_ids)
        export_roster(paths)
    if found := findings(results):
        console.print(found)
        console.print()
    if paths.roster_path.exists():
        console.print(f"Exported:  {_shown(paths.roster_path)}, a DuckDB copy of the roster")
    console.print("Query it:  roster-pipeline sql, or roster_pipeline.connect() in Python")
    console.print("Watch it:  make dagster (roster-pipeline dev), then http://127.0.0.1:3000")
    ok = all(r.success and not r.failed_checks for r in results)
    return 0 if ok else 1


def demo_registry_yaml(port: int) -> str:
    """A district registry holding the demo districts, served by the sandbox on 127.0.0.1:`port`."""
    server = build_demo_server(port)
    lines = [
        "# The district registry, written by `roster-pipeline demo` with the bundled demo districts.",
        "# They are served by the sandbox: `roster-pipeline demo` and `roster-pipeline dev` start it and set their",
        "# (non-secret, demo-only) credentials; secrets are never written here, only the variables that hold them.",
        "timezone: UTC",
        "",
        "districts:",
    ]
    for demo in DEMO_DISTRICTS:
        district_id = demo.district_id
        lines += [
            f"  - id: {district_id}",
            f"    name: {demo.name} (demo)",
            "    provider: generic",
            "    source:",
            "      kind: rest",
            '      version: "1.1"',
            f"      base_url: {server.base_url(district_id)}",
            "      auth:",
            f"        type: {demo.auth_kind}",
        ]
        if demo.auth_kind == "oauth2":
            lines.append(f"        token_url: {server.token_url(district_id)}")
        lines += [
            f"        client_id_env: {demo.client_id_env}",
            f"        client_secret_env: {demo.client_secret_env}",
            "      page_size: 100",
            "    enabled: true",
            "",
        ]
    return "\n".join(lines)


def write_demo_registry(path: Path, port: int = DEFAULT_SANDBOX_PORT) -> bool:
    """Write the demo registry to `path` unless a registry is there already; returns whether it wrote one."""
    if path.exists():
        return False
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(demo_registry_yaml(port), encoding="utf-8")
    return True


def demo_district_ids(registry: Registry) -> list[str]:
    """The registry's enabled districts that the demo sandbox serves."""
    known = {demo.district_id for demo in DEMO_DISTRICTS}
    return [d.id for d in registry.enabled if d.id in known]


def sandbox_port_of(registry: Registry, district_ids: list[str]) -> int:
    """The one port the registry reaches the demo districts on."""
    ports = set()
    for district_id in district_ids:
        source = registry.district(district_id).source
        assert isinstance(source, RestSource)
        ports.add(urlsplit(source.base_url).port or 80)
    if len(ports) != 1:
        raise ValueError(f"demo districts must share one sandbox port, found {sorted(ports)}")
    return ports.pop()


def start_demo_sandbox(port: int) -> SandboxServer:
    """The demo sandbox serving on 127.0.0.1:`port`; an OSError saying what to do when the port is taken."""
    try:
        return build_demo_server(port).start()
    except OSError as error:
        if error.errno != errno.EADDRINUSE:
            raise
        raise OSError(
            error.errno,
            f"port {port} is in use, so the demo sandbox cannot serve there: stop what holds it (another "
            "`roster-pipeline demo`, `dev` or `sandbox`?), or use a new data folder with `--sandbox-port N`",
        ) from None


def make_edits(district: SyntheticDistrict) -> dict[str, str]:
    """Make the demo's edits in a sandbox district; returns what changed, by the sourcedId concerned."""
    users = district.records("users")
    students = [u for u in users if u["role"] == "student" and u["status"] == "active"]
    guardians = [u for u in users if u["role"] in ("parent", "guardian", "relative") and u["status"] == "active"]
    newcomer = {
        **students[0],
        "sourcedId": f"{district.district_id}-student-new",
        "username": "new.student",
        "givenName": "Nova",
        "familyName": "Newcomer",
        "agents": [{"href": "", "sourcedId": guardians[0]["sourcedId"], "type": "user"}],
    }
    district.upsert("users", newcomer)
    changed = students[1]
    district.upsert(
        "users", {**changed, "agents": [{"href": "", "sourcedId": guardians[-1]["sourcedId"], "type": "user"}]}
    )
    enrollment = next(e for e in district.records("enrollments") if e["status"] == "active")
    district.mark_tobedeleted("enrollments", enrollment["sourcedId"])
    district.mark_tobedeleted("users", students[2]["sourcedId"])
    return {
        "new student": newcomer["sourcedId"],
        "guardian changed for": changed["sourcedId"],
        "enrollment withdrawn": enrollment["sourcedId"],
        "student left": students[2]["sourcedId"],
    }


def _print_edits(console: Console, edits: dict[str, dict[str, str]]) -> None:
    table = Table(
        title="Edits in the SIS (the sandbox), for the delta sync to pick up",
        title_justify="left",
        title_style="bold",
        box=None,
        pad_edge=False,
    )
    table.add_column("district", style="bold")
    for heading in next(iter(edits.values())):
        table.add_column(heading)
    for district_id, changes in edits.items():
        table.add_row(district_id, *(_short(sourced_id) for sourced_id in changes.values()))
    console.print(table)
    console.print()


def _shown(path: Path) -> str:
    """A path as short as it can be said: relative to the working directory when it is inside it."""
    return os.path.relpath(path) if path.is_relative_to(Path.cwd()) else str(path)


def _short(sourced_id: str) -> str:
    """A UUID's first 8 characters, enough to find it in the tables with LIKE."""
    return sourced_id if len(sourced_id) <= 20 else f"{sourced_id[:8]}…"


def _print_row_counts(console: Console, paths: Settings, district_ids: list[str]) -> None:
    title = f"Published in {paths.roster_dir}"
    table = Table(title=title, title_justify="left", title_style="bold", box=None, pad_edge=False)
    table.add_column("district", style="bold")
    for heading in SUMMARY_TABLES.values():
        table.add_column(heading, justify="right")
    with connect(paths) as con:
        counts = {
            name: dict(con.execute(f"SELECT district_id, count(*) FROM {name} GROUP BY ALL").fetchall())
            for name in SUMMARY_TABLES
        }
    for district_id in district_ids:
        table.add_row(district_id, *(f"{counts[name].get(district_id, 0):,}" for name in SUMMARY_TABLES))
    console.print(table)
    console.print()
