"""Fetching one endpoint of one district into the landing zone: mode choice, streaming, watermarks.

Plain Python (the Dagster assets call it), so a script or a test can run a fetch without Dagster.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import datetime, timedelta
from functools import partial
from pathlib import Path
from typing import Any

from roster_pipeline.config.registry import DistrictConfig, RestSource
from roster_pipeline.ingest.confirmations import Confirmation, confirm_unseen
from roster_pipeline.ingest.csv_drops import fetch_csv_endpoint
from roster_pipeline.ingest.fetch_runs import FetchOutcome, record_fetch_run
from roster_pipeline.ingest.malformed import MalformedTally
from roster_pipeline.ingest.probe import CapabilityReport, load_capabilities
from roster_pipeline.ingest.rest_sources import credential_hint, rest_client_for, rest_source_of
from roster_pipeline.oneroster import (
    EndpointNotOffered,
    EndpointSpec,
    Filter,
    OneRosterClient,
    OneRosterError,
    Page,
    endpoint_spec,
)
from roster_pipeline.oneroster.flatten import flatten_records
from roster_pipeline.oneroster.normalize import RecordProblem, parse_datetime
from roster_pipeline.oneroster.page_table import read_lake_page
from roster_pipeline.store.guard import full_sync_reason
from roster_pipeline.store.lake import BatchWriter, Lake, now_iso

# Records modified while the previous sync was paging can carry a dateLastModified just before its start as
# the server saw it; re-reading a short window is cheap because merges are idempotent.
SAFETY_OVERLAP = timedelta(minutes=5)
# Beyond this, a server's Date header is not believed (see next_watermark).
MAX_CLOCK_SKEW = timedelta(hours=1)


@dataclass(frozen=True)
class ModeChoice:
    mode: str  # "full" | "delta"
    reason: str
    watermark_from: str | None = None


def choose_mode(
    district: DistrictConfig,
    endpoint: str,
    lake: Lake,
    *,
    full_requested: bool,
    capabilities: CapabilityReport | None = None,
) -> ModeChoice:
    """Delta once a watermark exists; full on first sync, on request, or where the filter cannot be trusted
    (the provider profile says so, or the last ``roster-pipeline check`` found it broken)."""
    if full_requested:
        return ModeChoice("full", "full sync requested")
    if reason := full_sync_reason(lake, district.id):
        return ModeChoice("full", reason)
    if not district.provider.delta_filter_works:
        return ModeChoice("full", f"provider {district.provider.key}: dateLastModified filter does not work")
    probed = capabilities.endpoint(endpoint) if capabilities else None
    if capabilities is not None and probed is not None and probed.filter_works is False:
        return ModeChoice(
            "full", f"capability check of {capabilities.probed_at}: dateLastModified filter does not work on {endpoint}"
        )
    if not endpoint_spec(endpoint).supports_delta_filter:
        return ModeChoice("full", f"endpoint {endpoint} does not support the dateLastModified filter")
    watermark = lake.watermark(district.id, endpoint)
    if watermark is None:
        return ModeChoice("full", "first sync (no watermark yet)")
    return ModeChoice("delta", "watermark exists", watermark)


def delta_filter(watermark: str) -> Filter:
    since = parse_datetime(watermark)
    assert since is not None
    return Filter.gt("dateLastModified", since - SAFETY_OVERLAP)


def next_watermark(started_at: str, server_started: datetime | None) -> str:
    """The sync's start as the server saw it (its first response's Date), or ours if that is earlier or absent.

    DESIGN: the watermark is the server's clock, since records are stamped by it; a client clock running ahead
    of the server's would otherwise skip records changed in between. The earlier of the two is always safe.
    """
    local = parse_datetime(started_at)
    assert local is not None
    if server_started is None or server_started >= local or local - server_started > MAX_CLOCK_SKEW:
        # A Date far behind ours is a stale proxy or a broken clock, not the server's view of "now": trusting it
        # would make every delta re-read from then and a full sync tombstone almost nothing.
        return started_at
    return server_started.isoformat(timespec="milliseconds").replace("+00:00", "Z")


def with_credential_hint(error: Exception, district: DistrictConfig) -> Exception:
    """A refused credential names the environment variables it came from, so the fix is obvious."""
    source = district.source
    if not isinstance(error, OneRosterError) or error.status not in (401, 403) or not isinstance(source, RestSource):
        return error
    return OneRosterError(
        f"{error.detail} — {credential_hint(source)}",
        label=error.label,
        endpoint=error.endpoint,
        offset=error.offset,
        status=error.status,
        code_major=error.code_major,
        description=error.description,
    )


def fetch_endpoint(
    district: DistrictConfig,
    endpoint: str,
    lake: Lake,
    *,
    run_id: str,
    full: bool = False,
    client_factory: Callable[[DistrictConfig], OneRosterClient] = rest_client_for,
    inbox: Path | None = None,
    log: Callable[[str], None] = lambda message: None,
) -> FetchOutcome:
    """Stream one endpoint of a district into a new lake batch and advance its watermark.

    A failure leaves no batch (the partial one is discarded) and records a failed run; the previous
    watermark stays, so the next run re-reads what this one missed. ``inbox`` is where an SFTP district's
    bundles are mirrored (``Settings.inbox_dir``; default: the one beside the lake).
    """
    if district.source.kind == "csv":
        # No forced re-import after a quarantine: the refused batches are still in the lake for the next publish
        # (release or discard decides), and re-importing the same bundles would only refuse them again.
        return fetch_csv_endpoint(district, endpoint, lake, run_id=run_id, full=full, inbox=inbox, log=log)
    version = rest_source_of(district).version
    capabilities = load_capabilities(lake, district.id)
    choice = choose_mode(district, endpoint, lake, full_requested=full, capabilities=capabilities)
    outcome = FetchOutcome(district.id, endpoint, True, choice.mode, choice.reason)
    outcome.watermark_from = choice.watermark_from
    if endpoint not in district.endpoints:
        outcome.offered, outcome.note = False, "not configured for this district (registry or provider profile)"
        return outcome
    probed = capabilities.endpoint(endpoint) if capabilities else None
    if capabilities is not None and probed is not None and probed.offered is False:
        outcome.offered = False
        outcome.note = f"not offered by the provider (capability check of {capabilities.probed_at}); skipped"
        return outcome
    started = time.monotonic()
    started_at = now_iso("milliseconds")
    writer = lake.new_batch(endpoint, district.id)
    tally = MalformedTally()
    confirming = choice.mode == "full" and district.network.confirm_unseen
    # Every sourcedId landed, in the order served (the newest is last); only a confirming full sync needs them.
    seen: dict[str, None] | None = {} if confirming else None
    confirmation: Confirmation | None = None
    try:
        with client_factory(district) as client:
            spec = endpoint_spec(endpoint, version)
            filter_ = delta_filter(choice.watermark_from) if choice.watermark_from else None
            ignored = district.ignored(endpoint)
            reader = partial(read_lake_page, spec.name, spec.envelope_key, district.id, ignored)
            pages = client.iter_pages(spec, filter=filter_, reader=reader)
            server_started = _land_pages(pages, district, ignored, writer, tally, outcome, log, seen)
            if seen is not None:
                confirmation = _confirm_unseen(client, spec, district, lake, writer, tally, seen)
    except EndpointNotOffered as error:
        writer.abort()
        outcome.offered, outcome.note = False, str(error)
        record_fetch_run(lake, outcome, run_id, started_at, "not_offered")
        return outcome
    except Exception as error:
        writer.abort()
        failure = with_credential_hint(error, district)
        record_fetch_run(lake, outcome, run_id, started_at, "failed", error=str(failure))
        if failure is error:
            raise
        raise failure from None
    outcome.watermark_to = next_watermark(started_at, server_started)
    batch = writer.commit(
        choice.mode,
        choice.watermark_from,
        outcome.watermark_to,
        malformed=tally.count,
        # Lets a full batch with unreadable records still tombstone deletions, sparing exactly those records.
        malformed_ids=tally.ids(),
        **(_confirmation_manifest(confirmation) if confirmation is not None else {}),
    )
    lake.set_watermark(district.id, endpoint, outcome.watermark_to, batch.batch_id)
    outcome.records, outcome.batch_id = batch.records, batch.batch_id
    outcome.duration_s = round(time.monotonic() - started, 3)
    notes = []
    if tally.count:
        outcome.malformed = tally.count
        notes.append(tally.summary(district, endpoint))
    if confirmation is not None and (confirmation_note := confirmation.note()):
        outcome.confirmations = confirmation.summary()
        notes.append(confirmation_note)
    if notes:
        outcome.note = "; ".join(notes)
        log(f"district '{district.id}', endpoint {endpoint}: {outcome.note}")
    record_fetch_run(lake, outcome, run_id, started_at, "success", problems=tally.described)
    return outcome


def _confirm_unseen(
    client: OneRosterClient,
    spec: EndpointSpec,
    district: DistrictConfig,
    lake: Lake,
    writer: BatchWriter,
    tally: MalformedTally,
    seen: dict[str, None],
) -> Confirmation:
    """Look up the live records a full sync did not see, and land those still present (see confirmations.py)."""
    spared = tally.ids()
    if spared is None:  # unnamed malformed records: this batch tombstones nothing, so there is nothing to confirm
        return Confirmation()
    unseen = lake.live_ids(spec.name, district.id) - seen.keys() - set(spared)
    # The record served last checks the single-record endpoint: an early one may have been deleted since.
    example = next(reversed(seen), None)
    confirmation = confirm_unseen(client, spec, unseen, example, district.network.max_confirmations)
    if confirmation.landed:
        problems: list[RecordProblem] = []
        ignored = district.ignored(spec.name)
        writer.append(flatten_records(spec.name, district.id, confirmation.landed, ignored, problems=problems))
        tally.add(problems)
    return confirmation


def _confirmation_manifest(confirmation: Confirmation) -> dict[str, Any]:
    """What the publish needs: only the confirmed-gone may be tombstoned; the held are asked about next time."""
    return {"confirm_unseen": True, "confirmed_gone": confirmation.gone, "held": confirmation.held}


def _land_pages(
    pages: Iterable[Page],
    district: DistrictConfig,
    ignored: frozenset[str],
    writer: BatchWriter,
    tally: MalformedTally,
    outcome: FetchOutcome,
    log: Callable[[str], None],
    seen: dict[str, None] | None,
) -> datetime | None:
    """Flatten each page (but those the reader already read) into the batch without the ``ignored`` fields,
    tallying unreadable records and noting every sourcedId landed in ``seen`` (when given); return the first page's
    server Date."""
    server_started = None
    for page in pages:
        tally.add(page.malformed)
        problems: list[RecordProblem] = []
        # A plain page comes already read (page_table.py). Otherwise its unreadable records are already out of
        # `records`, so positions are not counted here.
        frame = page.frame
        if frame is None:
            frame = flatten_records(
                outcome.endpoint, district.id, page.records, ignored, problems=problems, first_position=None
            )
        writer.append(frame)
        if seen is not None:
            seen.update(dict.fromkeys(frame["sourced_id"].to_list()))
        tally.add(problems)
        if outcome.pages == 0:
            server_started = page.server_date
        outcome.pages += 1
        outcome.bytes += page.raw_bytes
        if outcome.pages % 20 == 0:
            log(f"{district.id} {outcome.endpoint}: {writer.records} records, {outcome.pages} pages")
    return server_started
