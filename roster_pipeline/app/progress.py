"""What a person at a terminal sees of district syncs: a live table (one row per district, one column per
endpoint) fed by the run's own events, and the check findings after it.

Dagster's console lines are for debugging a run: `sync_with_progress` (and so `roster-pipeline demo`) shows them
only when asked (`--verbose`).
"""

from __future__ import annotations

import logging
import re
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

import dagster as dg
from rich.console import Console, ConsoleOptions, Group, RenderableType, RenderResult
from rich.measure import Measurement
from rich.spinner import Spinner
from rich.table import Table
from rich.text import Text

from roster_pipeline.defs.asset_checks import DATA_CHECKS
from roster_pipeline.defs.endpoint_assets import FETCH_STEP
from roster_pipeline.oneroster import ENDPOINT_NAMES

if TYPE_CHECKING:
    from roster_pipeline.app.sync_results import SyncResult

ROSTER_STEP = "roster_tables"
_DATA_CHECKS = {check.name: check for check in DATA_CHECKS}
# The fetch reports a long endpoint every 20 pages ("<district> <endpoint>: <n> records, <p> pages").
_RUNNING_COUNT = re.compile(r" (\w+): (\d+) records, \d+ pages$")
_HEADINGS = {"academicSessions": "sessions"}


@dataclass(frozen=True)
class RunLog:
    """One message of a sync's run: its level, its step, the Dagster event it carries (if any) and its text."""

    level: int
    step_key: str | None
    event: dg.DagsterEvent | None
    message: str


class _ListenerHandler(logging.Handler):
    def __init__(self, listener: Callable[[RunLog], None]) -> None:
        super().__init__(logging.DEBUG)
        self.listener = listener

    def emit(self, record: logging.LogRecord) -> None:
        meta = getattr(record, "dagster_meta", None) or {}
        event, message = meta.get("dagster_event"), meta.get("orig_message") or ""
        self.listener(RunLog(record.levelno, meta.get("step_key"), event, message))


def listening_logger(listener: Callable[[RunLog], None]) -> dg.LoggerDefinition:
    """A Dagster logger handing each event and message of the run to `listener` (it prints nothing itself)."""

    @dg.logger(None, description="Hands each event of the run to the live progress display.")
    def listen(_context: dg.InitLoggerContext) -> logging.Logger:
        log = logging.Logger("roster_pipeline.app.progress", logging.DEBUG)
        log.addHandler(_ListenerHandler(listener))
        return log

    return listen


@dataclass
class _DistrictRow:
    cells: dict[str, RenderableType] = field(default_factory=dict)
    roster: RenderableType = field(default_factory=lambda: Text("waiting", style="dim"))
    passed: int = 0
    warned: int = 0
    failed: int = 0
    seconds: float | None = None


class SyncBoard:
    """Districts syncing, live: records per endpoint as each lands, then the publish and its checks.

    Feed it with `listener(district_id)` (a sync's run events) and close each row with `finish(result)`; it is a
    rich renderable, for `rich.live.Live` while syncs run and for a plain print afterwards.
    """

    def __init__(self, title: str, district_ids: Iterable[str]) -> None:
        self.title = title
        self.rows = {district_id: _DistrictRow() for district_id in district_ids}

    def listener(self, district_id: str) -> Callable[[RunLog], None]:
        row = self.rows.setdefault(district_id, _DistrictRow())
        return lambda log: self._observe(row, log)

    def _observe(self, row: _DistrictRow, log: RunLog) -> None:
        event = log.event
        if event is None:
            if (match := _RUNNING_COUNT.search(log.message)) and match[1] in ENDPOINT_NAMES:
                row.cells[match[1]] = Spinner("dots", Text(f"{int(match[2]):,}"), style="yellow")
            return
        if event.event_type == dg.DagsterEventType.STEP_START:
            if log.step_key == FETCH_STEP:  # the district's endpoints are fetched side by side
                for endpoint in ENDPOINT_NAMES:
                    row.cells[endpoint] = Spinner("dots", style="yellow")
            elif log.step_key == ROSTER_STEP:
                row.roster = Spinner("dots", Text("publishing"), style="yellow")
        elif event.event_type == dg.DagsterEventType.ASSET_MATERIALIZATION:
            materialization = event.step_materialization_data.materialization
            if landed := _landed_endpoint(materialization.asset_key):
                values = {key: value.value for key, value in materialization.metadata.items()}
                row.cells[landed] = _fetched(values)
        elif event.event_type == dg.DagsterEventType.ASSET_CHECK_EVALUATION:
            evaluation = event.asset_check_evaluation_data
            if evaluation.passed:
                row.passed += 1
            elif evaluation.severity == dg.AssetCheckSeverity.WARN:
                row.warned += 1
            else:
                row.failed += 1
        elif event.event_type == dg.DagsterEventType.STEP_FAILURE:
            if log.step_key == FETCH_STEP:  # what did not land by now failed
                for endpoint, cell in row.cells.items():
                    if isinstance(cell, Spinner):
                        row.cells[endpoint] = Text("failed", style="bold red")
            elif log.step_key == ROSTER_STEP:
                row.roster = Text("failed", style="bold red")

    def finish(self, result: SyncResult) -> None:
        """Settle a district's row from its result (what the events missed, e.g. a run that never started)."""
        row = self.rows.setdefault(result.district_id, _DistrictRow())
        for endpoint in ENDPOINT_NAMES:
            if endpoint in result.endpoints:
                row.cells[endpoint] = _fetched(result.endpoints[endpoint])
            elif f"oneroster__{endpoint}" in result.step_errors:
                row.cells[endpoint] = Text("failed", style="bold red")
            elif not isinstance(row.cells.get(endpoint), Text):
                row.cells[endpoint] = Text("-", style="dim")
        if result.tables:
            row.roster = Text("published", style="green")
        elif result.checks.get("mass_deletion_guard") is False:
            row.roster = Text("quarantined", style="bold red")
        else:
            row.roster = Text("not published", style="bold red")
        outcomes = result.check_outcomes.values()
        row.passed = sum(1 for o in outcomes if o.passed)
        row.warned = sum(1 for o in outcomes if not o.passed and o.severity == "WARN")
        row.failed = sum(1 for o in outcomes if not o.passed and o.severity != "WARN")
        row.seconds = result.seconds

    def __rich_console__(self, console: Console, options: ConsoleOptions) -> RenderResult:
        """One row per district where the width allows, else one column per district."""
        by_district = self._by_district()
        natural = Measurement.get(console, options.update_width(10_000), by_district).maximum
        if natural <= options.max_width:
            yield by_district
        else:
            yield self._by_endpoint()

    def _table(self) -> Table:
        return Table(title=self.title, title_justify="left", title_style="bold", box=None, pad_edge=False)

    def _cells(self, row: _DistrictRow) -> list[RenderableType]:
        roster = row.roster
        if isinstance(roster, Text) and row.seconds is not None:
            roster = Text.assemble(roster, (f" {row.seconds:.1f} s", "dim"))
        endpoints = [row.cells.get(endpoint, Text("·", style="dim")) for endpoint in ENDPOINT_NAMES]
        return [*endpoints, roster, _check_counts(row.passed, row.warned, row.failed)]

    def _by_district(self) -> Table:
        table = self._table()
        table.add_column("district", style="bold", no_wrap=True)
        for endpoint in ENDPOINT_NAMES:
            table.add_column(_HEADINGS.get(endpoint, endpoint), justify="right", no_wrap=True)
        table.add_column("roster", no_wrap=True)
        table.add_column("checks", no_wrap=True)
        for district_id, row in self.rows.items():
            table.add_row(district_id, *self._cells(row))
        return table

    def _by_endpoint(self) -> Table:
        table = self._table()
        table.add_column("")
        for district_id in self.rows:
            table.add_column(district_id, justify="right")
        columns = [self._cells(row) for row in self.rows.values()]
        for position, label in enumerate([*(_HEADINGS.get(e, e) for e in ENDPOINT_NAMES), "roster", "checks"]):
            table.add_row(label, *(cells[position] for cells in columns))
        return table


def _endpoint(step_key: str | None) -> str | None:
    """The endpoint a step error concerns (`oneroster__users` → users: see `sync.failed_endpoints`)."""
    if step_key and step_key.startswith("oneroster__"):
        return step_key.removeprefix("oneroster__")
    return None


def _landed_endpoint(key: dg.AssetKey | None) -> str | None:
    """The endpoint a materialised fetch asset holds (`oneroster/users` → users)."""
    if key is not None and len(key.path) == 2 and key.path[0] == "oneroster":
        return key.path[1]
    return None


def _fetched(values: dict) -> Text:
    if values.get("offered") is False:
        return Text("not offered", style="dim")
    text = Text(f"{values.get('records', 0):,}")
    if values.get("malformed"):
        text.append(f" ({values['malformed']} unreadable)", style="yellow")
    return text


def _check_counts(passed: int, warned: int, failed: int) -> Text:
    if not passed + warned + failed:
        return Text("")
    parts = [Text(f"{passed} passed", style="green")]
    if warned:
        parts.append(Text(f"{warned} warning{'s' if warned != 1 else ''}", style="yellow"))
    if failed:
        parts.append(Text(f"{failed} failed", style="bold red"))
    return Text(", ").join(parts)


def findings(results: Iterable[SyncResult]) -> RenderableType | None:
    """Failed checks, then warnings, then errors of the given syncs: one line each, with a count and a sample."""
    failed: list[tuple[str, str, str, str]] = []
    warned: list[tuple[str, str, str, str]] = []
    errors = []
    for result in results:
        for outcome in result.check_outcomes.values():
            if outcome.passed:
                continue
            problems = outcome.metadata.get("problems")
            sample = str(outcome.metadata.get("sample_ids") or "none").split(", ")[0]
            check = _DATA_CHECKS.get(outcome.name)
            (warned if outcome.severity == "WARN" else failed).append(
                (
                    result.district_id,
                    f"{problems:,}" if isinstance(problems, int) else "",
                    check.finding if check else (outcome.description or outcome.name),
                    f"e.g. {sample}" if sample != "none" else "",
                )
            )
        errors += _errors(result)
    shown: list[RenderableType] = []
    if failed:
        shown.append(_Findings("Failed checks: the roster is wrong here", "bold red", failed))
    if warned:
        shown.append(_Findings("Warnings: data-quality findings the roster was published with", "yellow", warned))
    return Group(*shown, *errors) if shown or errors else None


def _errors(result: SyncResult) -> list[Text]:
    """One line per distinct error: endpoints that failed alike (a refused token, a server down) share it."""
    alike: dict[str, list[tuple[str, str]]] = {}
    for step, cause in (result.step_errors or {"": result.error or ""}).items():
        if cause:
            where = _endpoint(step) or step
            alike.setdefault(cause.replace(f"endpoint {where}", "endpoint"), []).append((where, cause))
    lines = []
    for failed in alike.values():
        where = " ".join([result.district_id, ", ".join(name for name, _ in failed)]).strip()
        lines.append(Text.assemble(("error ", "bold red"), (where, "bold"), f": {failed[0][1]}"))
    return lines


@dataclass(frozen=True)
class _Findings:
    """Check findings, one line each: district, count, what, and one sample cut to the width left."""

    title: str
    style: str
    rows: list[tuple[str, str, str, str]]

    def __rich_console__(self, console: Console, options: ConsoleOptions) -> RenderResult:
        widths = [max(len(row[column]) for row in self.rows) for column in range(3)]
        room = options.max_width - sum(widths) - 6
        table = Table(title=self.title, title_justify="left", title_style=self.style, box=None, pad_edge=False)
        table.add_column(style="bold", no_wrap=True)
        table.add_column(justify="right", no_wrap=True)
        table.add_column()
        # Samples are long (UUIDs, link pairs): one, cut to the room left; all of them are in the check's metadata.
        if room >= 16:
            table.add_column(no_wrap=True, overflow="ellipsis", style="dim", max_width=min(room, 44))
        table.show_header = False
        for row in self.rows:
            table.add_row(*(row if room >= 16 else row[:3]))
        yield table


def terminal() -> Console:
    """The console for command output: the terminal's width, or 120 columns when output goes to a file or pipe."""
    console = Console(highlight=False)
    if not console.is_terminal:
        console = Console(highlight=False, width=120)
    return console
