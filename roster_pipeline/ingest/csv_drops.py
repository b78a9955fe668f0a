"""The CSV source of a district: a drop folder of OneRoster CSV bundles, applied to the lake in order.

A CSV ``path`` (or the local inbox an SFTP folder is mirrored into) is a drop folder: each bundle in it (a
``.zip`` or a sub-folder holding ``manifest.csv``) is applied oldest first, exactly once — skipping a delta
would lose its changes — except that unimported bundles older than the newest bulk bundle are skipped, since
it supersedes them. A ``path`` that is itself a bundle is imported as it is, again whenever it changes.

Fetch assets are per endpoint, so what has been imported is tracked per (district, endpoint) in the district's
state folder; each endpoint lands one batch per bundle ("full" for a bulk file, "delta" for a delta file).

A bundle that cannot be read (an unsafe or damaged zip, a bad manifest, a file that is not CSV) is refused and
recorded once for the whole district, with why. The run that meets it fails with that reason, so an operator
sees it, unless a newer bulk bundle already supersedes it; later runs do not try it again. For each endpoint, a
newer bulk file of that endpoint supersedes it. Until one arrives, the bundles delivered after it that change
the endpoint are held, not applied, and each run fails saying so: going on without the refused one would
silently lose its changes. A newer bulk bundle without a file of the endpoint (a sender that stopped sending
demographics) says nothing about it, so it supersedes nothing there; but while no bundle after the refused one
changes the endpoint, nothing more is lost by moving past it, so the endpoint sets it aside rather than waiting
forever. Set aside is not superseded: a change to the endpoint delivered later is held behind it all the same.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import asdict, dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from roster_pipeline.config.registry import CsvSource, DistrictConfig
from roster_pipeline.config.settings import Settings
from roster_pipeline.ingest.fetch_runs import FetchOutcome, record_fetch_run
from roster_pipeline.ingest.side_files import Items, SideFileLedger, changed_users, relanded_users
from roster_pipeline.oneroster.csv_bundle import open_bundle
from roster_pipeline.oneroster.csv_columns import SIDE_FILES_V1P2
from roster_pipeline.oneroster.csv_manifest import MANIFEST_NAME, BundleError, Manifest
from roster_pipeline.oneroster.csv_reader import CsvFileReader
from roster_pipeline.oneroster.flatten import flatten_records
from roster_pipeline.store.lake import Lake, SyncRunRecord, now_iso
from roster_pipeline.store.lake_store import LakeFolder

BATCH_MODES = {"bulk": "full", "delta": "delta"}
AWAITING_BULK = "bundles delivered after it are held until a newer bundle, bulk for their files, supersedes it"


@dataclass(frozen=True)
class BundleRef:
    """A bundle in a drop folder. Its key (name and modification time) is what the import log remembers,
    so a bundle re-delivered under the same name with new content is imported again."""

    name: str
    path: Path
    mtime: float

    @property
    def stamp(self) -> str:
        return datetime.fromtimestamp(self.mtime, UTC).isoformat(timespec="microseconds").replace("+00:00", "Z")

    @property
    def key(self) -> str:
        return f"{self.name}@{self.stamp}"

    @property
    def when(self) -> datetime:
        return datetime.fromtimestamp(self.mtime, UTC)


def is_bundle(path: Path) -> bool:
    """A ``.zip`` file, or a folder holding ``manifest.csv`` (in any case: real exports write `Manifest.csv`)."""
    if path.is_file():
        return path.suffix.lower() == ".zip"
    return path.is_dir() and any(p.name.lower() == MANIFEST_NAME and p.is_file() for p in path.iterdir())


def bundle_mtime(path: Path) -> float:
    """A zip's modification time; for a folder, its newest file's (a folder's own time moves only with entries)."""
    if path.is_file():
        return path.stat().st_mtime
    return max((p.stat().st_mtime for p in path.iterdir() if p.is_file()), default=path.stat().st_mtime)


def find_bundles(folder: Path) -> list[BundleRef]:
    """The bundles of a drop folder, oldest first (ties by name); a ``folder`` that is a bundle is the only one."""
    if not folder.exists():
        raise BundleError(f"CSV drop folder {folder} does not exist (check source.path in the registry)")
    if is_bundle(folder):
        return [BundleRef(folder.name, folder, bundle_mtime(folder))]
    found = [
        BundleRef(entry.name, entry, bundle_mtime(entry))
        for entry in folder.iterdir()
        # Dot-names are partial downloads and other tools' temporary files, never a delivered bundle.
        if not entry.name.startswith(".") and is_bundle(entry)
    ]
    return sorted(found, key=lambda ref: (ref.mtime, ref.name))


class ImportLog:
    """The bundles one endpoint of a district has dealt with (``bundles/<endpoint>.json`` in its state folder)."""

    def __init__(self, lake: Lake, district_id: str, endpoint: str) -> None:
        self.stored = lake.state(district_id).import_log(endpoint)
        self.entries: list[dict[str, Any]] = self.stored.read() or []

    def keys(self) -> set[str]:
        return {entry["key"] for entry in self.entries}

    def add(self, bundle: BundleRef, outcome: str, **details: Any) -> None:
        self.entries.append(
            {"key": bundle.key, "name": bundle.name, "outcome": outcome, "at": now_iso("milliseconds"), **details}
        )
        self.stored.write(self.entries, indent=True)


@dataclass(frozen=True)
class Refusal:
    """A bundle the district refused, and why. ``endpoint`` is set when only that endpoint's file was unreadable
    (the bundle's other files were fine); else the whole bundle is refused."""

    key: str
    name: str
    reason: str
    at: str
    run_id: str
    endpoint: str | None = None

    def concerns(self, endpoint: str) -> bool:
        return self.endpoint is None or self.endpoint == endpoint


class RefusalLog:
    """The bundles a district refused: one file each under ``bundles/refused/`` in its state folder.

    One record serves every endpoint: an endpoint that no later bundle carries would otherwise keep meeting the
    bundle, waiting for a bulk file of its own that may never come. A file per refusal needs no lock when the
    parallel fetches of a district's endpoints find the same bad bundle at once: each writes the same record.
    """

    def __init__(self, lake: Lake, district_id: str) -> None:
        self.state = lake.state(district_id)
        self.refusals = [Refusal(**document) for document in self.state.refusals()]

    def concerning(self, bundle: BundleRef, endpoint: str) -> Refusal | None:
        """The refusal of this delivery of ``bundle`` that applies to ``endpoint``, if any."""
        return next((r for r in self.refusals if r.key == bundle.key and r.concerns(endpoint)), None)

    def record(self, bundle: BundleRef, reason: str, run_id: str, endpoint: str | None = None) -> Refusal:
        """Record a refusal, unless another fetch has just recorded it (then that record stands)."""
        stored = self.state.refusal(bundle.key if endpoint is None else f"{bundle.key}.{endpoint}")
        if (recorded := stored.read()) is not None:
            refusal = Refusal(**recorded)
        else:
            refusal = Refusal(bundle.key, bundle.name, reason, now_iso("milliseconds"), run_id, endpoint)
            stored.write(asdict(refusal), indent=True)
        self.refusals.append(refusal)
        return refusal


@dataclass(frozen=True)
class PlannedBundle:
    bundle: BundleRef
    manifest: Manifest | None
    refusal: Refusal | None = None


@dataclass(frozen=True)
class ImportPlan:
    apply: list[PlannedBundle]
    skipped: list[tuple[PlannedBundle, str]]
    refused: list[PlannedBundle]  # refused and not superseded: the first holds back everything after it
    held: list[PlannedBundle]  # bundles after a refused one that would change the endpoint
    set_aside: list[tuple[PlannedBundle, str]]  # refused, moved past for now: nothing after it changes the endpoint


def plan_imports(planned: list[PlannedBundle], endpoint: str, seen: set[str], *, full: bool = False) -> ImportPlan:
    """Which bundles to apply for an endpoint, in order; which to skip as superseded; which are held.

    ``full`` re-applies the newest bulk bundle and everything after it, imported or not (a reconciliation).
    A refused bundle is superseded only by a newer bulk file of the endpoint, as any bundle is: nothing else
    restores what it may have changed in the endpoint. Until then it holds back the bundles after it that change
    the endpoint: applying them would quietly lose whatever it changed.

    A newer bulk bundle (one without delta files) that has no file of the endpoint supersedes nothing here, but
    it lets the endpoint set the refused bundle aside while no bundle after it changes the endpoint: the refused
    bundle's changes are lost either way, and no later change is applied without them. So a refused bundle is
    looked at again every run, seen or not, until a bulk file of the endpoint supersedes it: once a bundle after
    it changes the endpoint, it is refused again and holds that bundle back. (Seen only decides whether it is
    logged and noted again.)
    """
    usable = [(i, p.manifest) for i, p in enumerate(planned) if p.refusal is None and p.manifest is not None]
    newest_bulk = max((i for i, manifest in usable if _supersedes(manifest, endpoint)), default=0)
    newest_whole = max((i for i, manifest in usable if _is_bulk_bundle(manifest)), default=-1)
    # The last bundle that changes the endpoint; a refused bundle after it holds nothing back.
    last_change = max((i for i, manifest in usable if endpoint_mode(manifest, endpoint) != "absent"), default=-1)
    plan = ImportPlan([], [], [], [], [])
    for index in range(newest_bulk if full else 0, len(planned)):
        item = planned[index]
        fresh = full or item.bundle.key not in seen
        if index < newest_bulk:
            if fresh:
                refused = f"refused: {item.refusal.reason}; " if item.refusal is not None else ""
                newer = planned[newest_bulk].bundle.name
                plan.skipped.append((item, f"{refused}superseded by bulk bundle {newer}"))
        elif item.refusal is not None:
            if last_change < index < newest_whole:
                if fresh:
                    whole = planned[newest_whole].bundle.name
                    plan.set_aside.append((item, _set_aside_reason(item.refusal, whole, endpoint)))
            else:
                plan.refused.append(item)
        elif not fresh:
            continue
        elif plan.refused:
            if item.manifest is not None and endpoint_mode(item.manifest, endpoint) != "absent":
                plan.held.append(item)
        else:
            plan.apply.append(item)
    return plan


def _set_aside_reason(refusal: Refusal, whole: str, endpoint: str) -> str:
    return (
        f"refused: {refusal.reason}; set aside after bulk bundle {whole}, which has no {endpoint} file: no bundle "
        f"since changes {endpoint}, and one that does is held until a bulk {endpoint} file supersedes it"
    )


def endpoint_mode(manifest: Manifest, endpoint: str) -> str:
    """How a bundle changes ``endpoint``: its file's mode, except that 1.2 role or profile changes without a
    users.csv change the users they belong to (a delta)."""
    mode = manifest.mode(endpoint)
    if mode == "absent" and _is_v1p2_users(manifest, endpoint):
        return "delta" if any(manifest.mode(stem) != "absent" for stem in SIDE_FILES_V1P2) else "absent"
    return mode


def manifest_notes(manifest: Manifest, endpoint: str) -> list[str]:
    """How the manifest was read where it left something to judge (a blank value), for the files that make
    ``endpoint``: its own, and for 1.2 users the side files too."""
    stems = [endpoint, *SIDE_FILES_V1P2] if _is_v1p2_users(manifest, endpoint) else [endpoint]
    return manifest.notes_on(stems)


def _supersedes(manifest: Manifest | None, endpoint: str) -> bool:
    """Whether a bundle replaces everything before it for ``endpoint``: a bulk file (for 1.2 users, with a bulk
    roles.csv and no delta profiles, else earlier role changes would be skipped)."""
    if manifest is None or manifest.mode(endpoint) != "bulk":
        return False
    if not _is_v1p2_users(manifest, endpoint):
        return True
    return manifest.mode("roles") == "bulk" and manifest.mode("userProfiles") != "delta"


def _is_bulk_bundle(manifest: Manifest) -> bool:
    """A bundle of bulk files only: the sender's whole roster as of its delivery."""
    modes = set(manifest.files.values())
    return "bulk" in modes and "delta" not in modes


def _is_v1p2_users(manifest: Manifest, endpoint: str) -> bool:
    return endpoint == "users" and manifest.oneroster_version == "1.2"


@dataclass
class _SideFileUpdate:
    ledger: SideFileLedger
    before: Items
    after: Items


def _apply_side_files(district: DistrictConfig, lake: Lake, reader: CsvFileReader) -> _SideFileUpdate | None:
    """For 1.2 users: apply the bundle's side files to the district's ledger (saved once the batch is landed)
    and give the reader every user's whole role set; ``None`` for anything else."""
    manifest = reader.bundle.manifest
    if not _is_v1p2_users(manifest, reader.endpoint):
        return None
    ledger = SideFileLedger.load(lake, district.id)
    before = ledger.items()
    for stem in SIDE_FILES_V1P2:
        if manifest.mode(stem) != "absent":
            ledger.apply(stem, manifest.mode(stem), reader.side_rows(stem))
    after = ledger.items()
    reader.side_items = after
    return _SideFileUpdate(ledger, before, after)


def plan_bundle(ref: BundleRef, endpoint: str, refusals: RefusalLog, run_id: str) -> PlannedBundle:
    """Read a bundle's manifest, or record why it is refused; a bundle already refused is not opened again."""
    if (refusal := refusals.concerning(ref, endpoint)) is not None:
        return PlannedBundle(ref, None, refusal)
    try:
        with open_bundle(ref.path) as bundle:
            return PlannedBundle(ref, bundle.manifest)
    except BundleError as error:
        return PlannedBundle(ref, None, refusals.record(ref, str(error), run_id))


def default_inbox(lake: Lake) -> Path:
    """The SFTP inbox of the data folder a lake is in (``Settings.lake_dir``), for callers that have only the lake
    (a lake on a bucket is in no data folder: the environment's inbox)."""
    if isinstance(lake.store, LakeFolder):
        return Settings.from_env(lake.store.root.parent).inbox_dir
    return Settings.from_env().inbox_dir


def drop_folder(district: DistrictConfig, inbox: Path, log: Callable[[str], None]) -> Path:
    """The district's local drop folder; for SFTP, its folder of the ``inbox`` (``Settings.inbox_dir``), after
    mirroring."""
    source = district.source
    if not isinstance(source, CsvSource):
        raise TypeError(f"district '{district.id}' has a {source.kind} source, not CSV bundles")
    if source.path is not None:
        return Path(source.path).expanduser()
    assert source.sftp is not None  # the registry requires path or sftp
    from roster_pipeline.ingest.sftp_inbox import mirror_sftp_bundles

    mirrored = inbox / district.id
    mirror_sftp_bundles(district, source.sftp, mirrored, log=log)
    return mirrored


def fetch_csv_endpoint(
    district: DistrictConfig,
    endpoint: str,
    lake: Lake,
    *,
    run_id: str,
    full: bool = False,
    inbox: Path | None = None,
    log: Callable[[str], None] = lambda message: None,
) -> FetchOutcome:
    """Apply the district's new CSV bundles to one endpoint: one lake batch and one run record per bundle.

    Malformed rows are counted and described in the note and the run record. A bundle that cannot be read (bad
    manifest, unsafe zip, unreadable file) is recorded as refused and fails the run that meets it, leaving the
    bundles before it applied; later runs go on without it, but fail while bundles after it are held. An SFTP
    source is mirrored into ``inbox`` (default: the one beside the lake) first.
    """
    outcome = FetchOutcome(district.id, endpoint, True, "none", "no new bundle")
    if endpoint not in district.endpoints:
        outcome.offered, outcome.note = False, "not configured for this district (registry or provider profile)"
        return outcome
    started, started_at = time.monotonic(), now_iso("milliseconds")
    try:
        folder = drop_folder(district, inbox or default_inbox(lake), log)
        imports = ImportLog(lake, district.id, endpoint)
        refusals = RefusalLog(lake, district.id)
        planned = [plan_bundle(ref, endpoint, refusals, run_id) for ref in find_bundles(folder)]
        seen = imports.keys()
        plan = plan_imports(planned, endpoint, seen, full=full)
    except Exception as error:
        record_fetch_run(lake, outcome, run_id, started_at, "failed", error=str(error))
        raise
    notes = []
    for item, reason in plan.skipped:
        if item.bundle.key not in seen:  # a full sync meets bundles it skipped before
            imports.add(item.bundle, "skipped", reason=reason)
        notes.append(f"{item.bundle.name} skipped ({reason})")
    for item, reason in plan.set_aside:
        if item.bundle.key not in seen:
            imports.add(item.bundle, "skipped", reason=reason, set_aside=True)  # for now: see plan_imports
        notes.append(f"{item.bundle.name} skipped ({reason})")
    applied: list[str] = []
    for item in plan.apply:
        assert item.manifest is not None  # only readable bundles are applied
        mode = endpoint_mode(item.manifest, endpoint)
        said = {"notes": noted} if (noted := manifest_notes(item.manifest, endpoint)) else {}
        if mode == "absent":
            imports.add(item.bundle, "absent", **said)
            notes.append("; ".join([f"{item.bundle.name}: {endpoint} absent", *noted]))
            continue
        note = _land_bundle(district, endpoint, lake, item, mode, outcome, run_id, refusals)
        imports.add(item.bundle, "imported", mode=mode, batch_id=outcome.batch_id, **said)
        applied.append(f"{item.bundle.name} ({mode})")
        notes.append(note)
        log(f"{district.id} {endpoint}: {note}")
    if (failure := _refusal_failure(district, endpoint, folder, plan, run_id)) is not None:
        record_fetch_run(lake, outcome, run_id, started_at, "failed", error=failure)
        raise BundleError(failure)
    for item in plan.refused:
        assert item.refusal is not None
        notes.append(f"{_refused_on(item.refusal)}; {AWAITING_BULK}. Why: {item.refusal.reason}")
        log(f"{district.id} {endpoint}: {notes[-1]}")
    if applied:
        outcome.mode = "full" if any(a.endswith("(bulk)") for a in applied) else "delta"
        outcome.mode_reason = "bundles applied: " + ", ".join(applied)
    else:
        record_fetch_run(lake, outcome, run_id, started_at, "success")
    outcome.note = "; ".join(notes) or f"no new bundle in {folder}"
    outcome.duration_s = round(time.monotonic() - started, 3)
    return outcome


def _refusal_failure(
    district: DistrictConfig, endpoint: str, folder: Path, plan: ImportPlan, run_id: str
) -> str | None:
    """Why this fetch must fail, if it must: a refusal first met in this run (the operator sees it once), or
    bundles held behind a refused one (each run, until a bulk bundle or the operator lets them through)."""
    where = f"district '{district.id}', endpoint {endpoint}"
    first = next((item.refusal for item in plan.refused if item.refusal and item.refusal.run_id == run_id), None)
    if first is not None:
        return f"{where}: {first.reason}\nThe bundle is recorded as refused and not tried again; {AWAITING_BULK}."
    if not plan.held:
        return None
    blocker = plan.refused[0].refusal
    assert blocker is not None
    held = ", ".join(item.bundle.name for item in plan.held)
    return (
        f"{where}: {held} held, not applied, because {_refused_on(blocker)} and applying what came after it "
        f"would lose its changes. Ask the sender for a new bundle with a bulk {endpoint} file, which supersedes them "
        f"all; or, to apply "
        f"the held bundles without {blocker.name}'s changes, delete it from {_where_delivered(district, folder)}."
        f"\nWhy {blocker.name} was refused: {blocker.reason}"
    )


def _refused_on(refusal: Refusal) -> str:
    return f"{refusal.name} was refused on {refusal.at[:10]}"


def _where_delivered(district: DistrictConfig, folder: Path) -> str:
    """Where an operator removes a bundle: the drop folder, or for SFTP the server's folder and the inbox
    (the inbox keeps what it mirrored)."""
    source = district.source
    if isinstance(source, CsvSource) and source.sftp is not None:
        return f"{source.sftp.host}:{source.sftp.remote_path} and from the inbox {folder}"
    return str(folder)


def _land_bundle(
    district: DistrictConfig,
    endpoint: str,
    lake: Lake,
    item: PlannedBundle,
    mode: str,
    outcome: FetchOutcome,
    run_id: str,
    refusals: RefusalLog,
) -> str:
    """Land one bundle's file of ``endpoint`` as one batch, record the run, and describe it in one line.

    A file that cannot be read refuses the bundle for this endpoint (its other files were read by the other
    endpoints' fetches, which keep them); any other failure, such as a full disk, is left to the next run.
    """
    started_at, bundle_ref = now_iso("milliseconds"), item.bundle
    batch_mode = BATCH_MODES[mode]
    writer = lake.new_batch(endpoint, district.id)
    run = SyncRunRecord(run_id, district.id, endpoint, batch_mode, started_at, started_at, "failed")
    run.extra["bundle"] = bundle_ref.name
    assert item.manifest is not None  # only readable bundles are landed
    if noted := manifest_notes(item.manifest, endpoint):
        run.extra["manifest_notes"] = noted
    try:
        with open_bundle(bundle_ref.path) as bundle:
            reader = CsvFileReader(bundle, endpoint)
            side = _apply_side_files(district, lake, reader)
            seen: set[str] = set()
            if bundle.manifest.mode(endpoint) != "absent":
                for records in reader.batches():
                    seen.update(record["sourcedId"] for record in records)
                    writer.append(flatten_records(endpoint, district.id, records))
                    run.pages += 1
                run.bytes = bundle.size(endpoint)
            if side is not None and mode == "delta":
                changed = changed_users(side.before, side.after) - seen
                writer.append(relanded_users(lake, district.id, changed, side.after, bundle_ref.when))
                run.extra["roles_changed_users"] = len(changed)
    except Exception as error:
        writer.abort()
        run.error = f"district '{district.id}', endpoint {endpoint}, bundle {bundle_ref.name}: {error}"
        run.finished_at = now_iso("milliseconds")
        if not isinstance(error, BundleError):
            lake.record_run(run)
            raise
        refusals.record(bundle_ref, f"bundle {bundle_ref.name}: {error}", run_id, endpoint)
        run.error += f"\nThe bundle is recorded as refused for {endpoint} and not tried again; {AWAITING_BULK}."
        lake.record_run(run)
        raise BundleError(run.error) from None
    run.watermark_from = lake.watermark(district.id, endpoint)
    run.watermark_to = bundle_ref.stamp  # the roster is as of the bundle's delivery
    batch = writer.commit(
        batch_mode,
        run.watermark_from,
        run.watermark_to,
        malformed=reader.malformed,
        bundle=bundle_ref.name,
        # Lets a bulk batch with unreadable rows still tombstone deletions, sparing exactly those records.
        malformed_ids=sorted(reader.malformed_ids) if reader.all_malformed_identified else None,
    )
    # A crash between this commit and the import log's update re-imports the bundle next time: harmless,
    # since applying the same records again gives the same state.
    if side is not None:
        side.ledger.save()  # after the batch: a crash in between re-applies the same side rows, harmlessly
    lake.set_watermark(district.id, endpoint, run.watermark_to, batch.batch_id)
    run.outcome, run.records, run.batch_id, run.finished_at = (
        "success",
        batch.records,
        batch.batch_id,
        now_iso("milliseconds"),
    )
    run.extra.update(malformed_rows=reader.malformed, problems=[str(p) for p in reader.problems])
    lake.record_run(run)
    outcome.records += batch.records
    outcome.malformed += reader.malformed
    outcome.pages += run.pages
    outcome.bytes += run.bytes
    outcome.batch_id, outcome.watermark_to = batch.batch_id, run.watermark_to
    outcome.watermark_from = outcome.watermark_from or run.watermark_from
    source = f"{endpoint}.csv" if item.manifest.mode(endpoint) != "absent" else "1.2 side files"
    note = f"{bundle_ref.name}: {mode} {source}, {batch.records} records"
    if reader.malformed:
        note += f", {reader.malformed} malformed rows (first: {reader.problems[0]})"
    return "; ".join([note, *noted])
