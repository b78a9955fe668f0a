"""The `roster-pipeline` command: sync a district, run the demo, serve the sandbox, validate the registry (and
export its JSON Schema), probe a district's connection, open or export the roster."""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import duckdb

from roster_pipeline.config.registry import DistrictConfig, RegistryError, load_registry, registry_json_schema
from roster_pipeline.config.settings import Settings, ensure_dagster_home

if TYPE_CHECKING:
    from roster_pipeline.defs.resources import RosterSettings


def cmd_sync(args: argparse.Namespace) -> int:
    import dagster as dg

    from roster_pipeline.app.sync import compact_if_due, print_details, sync_with_progress
    from roster_pipeline.defs.resources import RosterSettings

    if _registered(args.district) is None:
        return 2
    ensure_dagster_home()
    title = f"{'Full sync' if args.full else 'Sync'} of {args.district}"
    (result,) = sync_with_progress(
        [args.district], title=title, full=args.full, verbose=args.verbose, slot_timeout=args.slot_timeout
    )
    print_details(result)
    if result.success:
        try:
            compact_if_due(dg.DagsterInstance.get(), RosterSettings(), log_level="INFO" if args.verbose else "CRITICAL")
        except Exception as error:  # the district is published; the next sync asks again
            print(f"the roster's compaction could not run: {error}", file=sys.stderr)
    return 0 if result.success else 1


def cmd_demo(args: argparse.Namespace) -> int:
    from roster_pipeline.app.demo import run_demo

    ensure_dagster_home()
    return run_demo(verbose=args.verbose, sandbox_port=args.sandbox_port)


def cmd_sandbox(args: argparse.Namespace) -> int:
    from roster_pipeline.sandbox.demo_districts import run_demo_server

    run_demo_server(args.port)
    return 0


def cmd_dev(args: argparse.Namespace) -> int:
    from roster_pipeline.app.dev import run_dev

    extra = args.dagster_args[1:] if args.dagster_args[:1] == ["--"] else args.dagster_args
    return run_dev(extra, sandbox_port=args.sandbox_port)


def cmd_status(args: argparse.Namespace) -> int:
    from roster_pipeline.app.status import print_status
    from roster_pipeline.store.freshness import district_status

    rows = district_status(load_registry())
    print_status(rows)
    return 1 if any(row.stale or row.quarantine for row in rows if row.enabled) else 0


def cmd_release(args: argparse.Namespace) -> int:
    from roster_pipeline.store.guard import describe_quarantine, request_release

    if _registered(args.district) is None:
        return 2
    settings, state = _quarantined(args.district)
    if state is None:
        return 1
    print(describe_quarantine(state))
    if not _confirmed(args, "Let the next sync publish this change?"):
        return 2
    request_release(settings.lake(), args.district)
    print(f"district '{args.district}': the next sync may publish past the mass-deletion guard, once")
    return 0


def cmd_discard(args: argparse.Namespace) -> int:
    from roster_pipeline.store.guard import describe_quarantine, discard_quarantined

    if _registered(args.district) is None:
        return 2
    settings, state = _quarantined(args.district)
    if state is None:
        return 1
    print(describe_quarantine(state, subject="the refused change"))
    if not _confirmed(args, "Drop the refused batches and rebuild from the source at the next sync?"):
        return 2
    with settings.warehouse().publish_lock(args.district):  # never while a publish is reading the lake
        dropped = discard_quarantined(settings.lake(), args.district)
    print(
        f"district '{args.district}': dropped {len(dropped)} refused batch(es); the published roster is unchanged "
        "and the next sync is a full sync"
    )
    return 0


def _quarantined(district_id: str) -> tuple[RosterSettings, dict[str, Any] | None]:
    """The project's settings and the district's quarantine state; says so (and returns no state) when it is not
    quarantined."""
    from roster_pipeline.defs.resources import RosterSettings
    from roster_pipeline.store.guard import quarantine_state

    settings = RosterSettings()
    state = quarantine_state(settings.lake(), district_id)
    if state is None:
        print(f"district '{district_id}' is not quarantined: nothing to do", file=sys.stderr)
    return settings, state


def _registered(district_id: str) -> DistrictConfig | None:
    """The registry's district, or None after saying on stderr that the registry (named) has no such district."""
    try:
        return load_registry().district(district_id)
    except KeyError as error:
        print(error.args[0], file=sys.stderr)
        return None


def _confirmed(args: argparse.Namespace, question: str) -> bool:
    """--yes, or a 'y' typed at a terminal; without a terminal the command refuses rather than guess."""
    if args.yes:
        return True
    if not sys.stdin.isatty():
        print("not confirmed: run again with --yes, or from a terminal to be asked", file=sys.stderr)
        return False
    return input(f"{question} [y/N] ").strip().lower() in ("y", "yes")


def cmd_check(args: argparse.Namespace) -> int:
    from roster_pipeline.config.registry import MissingSecretError
    from roster_pipeline.ingest.probe import format_report, probe_district, store_capabilities
    from roster_pipeline.store.lake import Lake

    district = _registered(args.district)
    if district is None:
        return 2
    if district.source.kind != "rest":
        print(f"district '{district.id}' has a {district.source.kind} source: there is no API connection to probe")
        return 2
    try:
        report = probe_district(district)
    except MissingSecretError as error:
        print(error, file=sys.stderr)
        return 2
    print(format_report(report))
    if not args.no_store:
        path = store_capabilities(Lake(Settings.from_env().lake_root), report)
        print(f"\nstored {path} (fetches now use it: full syncs where the filter is broken, skip what is not offered)")
    return 0 if report.usable else 1


def cmd_validate(args: argparse.Namespace) -> int:
    from roster_pipeline.notify.channels import notification_settings

    registry = load_registry()
    notifications = notification_settings(registry)  # a bad section is a RegistryError naming each field
    missing = [
        f"notifications: environment variable {name} is not set"
        for name in (notifications.secret_names if notifications else ())
        if not os.environ.get(name)
    ]
    for district in registry.districts:
        print(f"{district.id:24} {district.provider.key:18} {district.source.kind:5} enabled={district.enabled}")
        for name in _secret_names(district):
            if not os.environ.get(name):
                missing.append(f"district '{district.id}': environment variable {name} is not set")
    for line in missing:
        print(f"warning: {line}", file=sys.stderr)
    return 0


def cmd_registry_schema(args: argparse.Namespace) -> int:
    text = json.dumps(registry_json_schema(), indent=2) + "\n"
    if args.output is None:
        print(text, end="")
        return 0
    args.output.write_text(text, encoding="utf-8")
    print(f"wrote the district registry's JSON Schema to {args.output}")
    return 0


def cmd_sql(args: argparse.Namespace) -> int:
    """The DuckDB shell (the `duckdb-cli` wheel) with the roster attached read-only as the default catalog."""
    from roster_pipeline.store.lakehouse import CATALOG, attach_sql, extensions_for, load_extensions, roster_exists
    from roster_pipeline.store.object_storage import shell_secret_sql

    settings = Settings.from_env()
    if not roster_exists(settings):
        print(f"no roster published yet in {_where(settings)} (run a sync first)", file=sys.stderr)
        return 1
    needed = extensions_for(settings)
    load_extensions(duckdb.connect(), needed)  # installs the extensions from their wheels where the shell finds them
    shell = shutil.which("duckdb", path=str(Path(sys.executable).parent)) or shutil.which("duckdb")
    if shell is None:
        print("the DuckDB shell is missing: pip install 'duckdb-cli==" + duckdb.__version__ + "'", file=sys.stderr)
        return 2
    loads = "".join(f"LOAD {name}; " for name in needed)
    secret = shell_secret_sql(settings.roster_data_path)
    opening = f"{loads}{secret}{attach_sql(settings, read_only=True)}; USE {CATALOG};"
    extra = [a for a in args.duckdb_args if a != "--"]
    return subprocess.call([shell, "-cmd", opening, *extra])


def cmd_export(args: argparse.Namespace) -> int:
    from roster_pipeline.store.lakehouse import roster_exists
    from roster_pipeline.store.roster_export import export_roster

    settings = Settings.from_env()
    if not roster_exists(settings):
        print(f"no roster published yet in {_where(settings)} (run a sync first)", file=sys.stderr)
        return 1
    print(f"wrote {export_roster(settings, args.output)}")
    return 0


def _where(settings: Settings) -> str:
    return settings.catalog_url or str(settings.roster_catalog)


def _secret_names(district: DistrictConfig) -> list[str]:
    auth = getattr(district.source, "auth", None)
    return [auth.client_id_env, auth.client_secret_env] if auth else []


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="roster-pipeline", description=__doc__)
    commands = parser.add_subparsers(dest="command", required=True)
    sync = commands.add_parser("sync", help="materialise every asset of one district in-process")
    sync.add_argument("district", help="district id from the registry")
    sync.add_argument("--full", action="store_true", help="full sync instead of delta")
    sync.add_argument("--verbose", action="store_true", help="also print Dagster's event lines")
    sync.add_argument(
        "--slot-timeout",
        type=float,
        default=900.0,
        metavar="SECONDS",
        help="give up after waiting this long for the roster store's pool slot (default 900)",
    )
    sync.set_defaults(handler=cmd_sync)
    demo = commands.add_parser("demo", help="sync the bundled demo districts from the sandbox, full then delta")
    demo.add_argument("--verbose", action="store_true", help="also print Dagster's event lines")
    demo.add_argument(
        "--sandbox-port",
        type=int,
        metavar="N",
        help="serve the sandbox on port N when the demo writes a new registry (default 8765)",
    )
    demo.set_defaults(handler=cmd_demo)
    sandbox = commands.add_parser("sandbox", help="serve the demo districts from the OneRoster sandbox")
    sandbox.add_argument("--port", type=int, default=8765)
    sandbox.set_defaults(handler=cmd_sandbox)
    dev = commands.add_parser(
        "dev", help="the Dagster UI and daemon (dagster dev) with the demo districts served by the sandbox"
    )
    dev.add_argument(
        "--sandbox-port",
        type=int,
        metavar="N",
        help="serve the sandbox on port N when this writes a new registry (default 8765)",
    )
    dev.add_argument(
        "dagster_args", nargs=argparse.REMAINDER, help="options for dagster dev after --, e.g. -- --port 3001"
    )
    dev.set_defaults(handler=cmd_dev)
    status = commands.add_parser("status", help="last publish, staleness and quarantine of every district")
    status.set_defaults(handler=cmd_status)
    release = commands.add_parser(
        "release", help="show what a quarantined district's refused change would remove; let the next sync publish it"
    )
    release.add_argument("district")
    release.add_argument("--yes", action="store_true", help="do not ask for confirmation")
    release.set_defaults(handler=cmd_release)
    discard = commands.add_parser(
        "discard", help="drop a quarantined district's refused batches; the next sync is a full sync"
    )
    discard.add_argument("district")
    discard.add_argument("--yes", action="store_true", help="do not ask for confirmation")
    discard.set_defaults(handler=cmd_discard)
    check = commands.add_parser("check", help="probe a REST district's connection and store what works")
    check.add_argument("district", help="district id from the registry")
    check.add_argument("--no-store", action="store_true", help="print the report without storing it")
    check.set_defaults(handler=cmd_check)
    validate = commands.add_parser("validate", help="validate the district registry")
    validate.set_defaults(handler=cmd_validate)
    schema = commands.add_parser(
        "registry-schema",
        help="print the district registry's JSON Schema (for editors: e.g. yaml-language-server's $schema)",
    )
    schema.add_argument("--output", type=Path, metavar="FILE", help="write it to FILE instead")
    schema.set_defaults(handler=cmd_registry_schema)
    sql = commands.add_parser(
        "sql", help="open the DuckDB shell on the roster (read-only); extra arguments go to duckdb, e.g. -c 'SQL'"
    )
    sql.add_argument("duckdb_args", nargs=argparse.REMAINDER, help="arguments for the duckdb shell")
    sql.set_defaults(handler=cmd_sql)
    export = commands.add_parser("export", help="write a self-contained DuckDB copy of the roster")
    export.add_argument("--output", type=Path, metavar="FILE", help="where (default: <data folder>/roster.duckdb)")
    export.set_defaults(handler=cmd_export)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args, unknown = parser.parse_known_args(argv)
    if unknown and getattr(args, "handler", None) is cmd_sql:  # duckdb's own options (-c, -json, ...) pass through
        args.duckdb_args = [*unknown, *args.duckdb_args]
    elif unknown:
        parser.error(f"unrecognized arguments: {' '.join(unknown)}")
    try:
        return int(args.handler(args))
    except RegistryError as error:
        print(error, file=sys.stderr)
        return 2


if __name__ == "__main__":
    raise SystemExit(main())
