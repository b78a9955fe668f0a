"""Fetch assets: one asset per OneRoster endpoint (its own lineage, metadata and history in the UI), all landed by
one step that fetches a district's endpoints concurrently.

DESIGN: one multi-asset rather than seven assets. Seven steps run one at a time in-process (`sync`, and the
`district_sync` job's in-process executor), and Dagster has no executor that runs steps side by side in one
process; a thread pool inside one step does, and the asset keys, descriptions and metadata stay per endpoint.
"""

import queue
import threading
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import FIRST_COMPLETED, Future, ThreadPoolExecutor, wait

import dagster as dg

from roster_pipeline.config.registry import DistrictConfig
from roster_pipeline.defs.asset_keys import fetch_asset_key
from roster_pipeline.defs.gc_tuning import relaxed_gc
from roster_pipeline.defs.partitions import district_partitions
from roster_pipeline.defs.resources import RosterSettings
from roster_pipeline.defs.run_tags import FULL_SYNC_TAG, is_full_sync
from roster_pipeline.ingest.endpoint_fetch import fetch_endpoint
from roster_pipeline.ingest.fetch_runs import FetchOutcome
from roster_pipeline.ingest.rest_sources import SharedCredentials
from roster_pipeline.oneroster import ENDPOINTS_V1P1, EndpointSpec, OneRosterClient

FETCH_STEP = "oneroster_endpoints"
# Endpoints of one district fetched at once. They share their provider's `max_concurrency` requests in flight
# (SharedCredentials), each taking what the others leave; a provider tolerating fewer parallel requests gets fewer
# endpoints at once too (see endpoint_budget).
MAX_CONCURRENT_ENDPOINTS = 4
# The order a district's fetches start in: the usually largest first (a student has several enrollments, and users
# hold every student, teacher and guardian). Started in table order, enrollments waited for a free slot and then
# paged alone at the end; started first, and taking the whole request budget once the others are done, a
# 20,000-student district's fetch went from 1.9 s to 1.7 s (bench/large_district.py).
LARGEST_FIRST = ("enrollments", "users", "demographics", "classes", "courses", "orgs", "academicSessions")


def endpoint_budget(district: DistrictConfig) -> int:
    """How many of the district's endpoints are fetched at once: MAX_CONCURRENT_ENDPOINTS, or its provider's
    `max_concurrency` (the parallel requests it tolerates) where that is lower."""
    return max(1, min(MAX_CONCURRENT_ENDPOINTS, district.provider.max_concurrency))


def fetch_spec(spec: EndpointSpec) -> dg.AssetSpec:
    """The `oneroster/<endpoint>` asset: the endpoint's pages for one district, landed in the lake."""
    kind = "required" if spec.required else "optional"
    return dg.AssetSpec(
        key=fetch_asset_key(spec.name),
        partitions_def=district_partitions,
        group_name="oneroster",
        kinds={"parquet"},
        owners=["team:data-engineering"],
        description=(
            f"OneRoster `{spec.name}` ({kind}) for one district, landed as Parquet under "
            f"`lake/{spec.name}/district=<id>/`. Delta (dateLastModified after the watermark) once a "
            f"watermark exists; full on first sync, when the run tag `{FULL_SYNC_TAG}=true` is set, or where "
            "the provider's filter does not work."
        ),
    )


@dg.multi_asset(specs=[fetch_spec(spec) for spec in ENDPOINTS_V1P1], can_subset=True, name=FETCH_STEP)
def oneroster_endpoints(context: dg.AssetExecutionContext, settings: RosterSettings) -> Iterator[dg.MaterializeResult]:
    """Stream the selected endpoints of one district into the lake, `endpoint_budget` of them at once.

    Each endpoint is materialised as it lands. One that fails is not materialised and fails the step once the
    others have landed (their batches wait in the lake for the next publish); the error names every failed one.
    """
    with relaxed_gc():
        yield from land_endpoints(context, settings)


def land_endpoints(context: dg.AssetExecutionContext, settings: RosterSettings) -> Iterator[dg.MaterializeResult]:
    district = settings.registry().district(context.partition_key)
    selected = [spec.name for spec in ENDPOINTS_V1P1 if fetch_asset_key(spec.name) in context.selected_asset_keys]
    budget = endpoint_budget(district)
    lake, inbox, full = settings.lake(), settings.paths.inbox_dir, is_full_sync(context.run.tags)
    clients = OpenClients()

    def fetch(endpoint: str, log: Callable[[str], None]) -> FetchOutcome:
        return fetch_endpoint(
            district, endpoint, lake, run_id=context.run.run_id, full=full, client_factory=clients, inbox=inbox, log=log
        )

    failed: dict[str, str] = {}
    summaries: list[str] = []
    started = sorted(selected, key=fetch_rank)
    for endpoint, landed in fetch_concurrently(started, fetch, budget, context.log.info, on_abandon=clients.close):
        if isinstance(landed, FetchOutcome):
            summaries.append(fetch_summary(landed))
            metadata = landed_metadata(context, district, landed)
            yield dg.MaterializeResult(asset_key=fetch_asset_key(endpoint), metadata=metadata)
        else:
            failed[endpoint] = endpoint_error(district, endpoint, landed)
            context.log.error(failed[endpoint])
    if summaries:
        # One line for the step, not one per endpoint: each line is an event the run stores (the same figures
        # are in each endpoint's materialisation).
        context.log.info(
            f"{district.id}: landed {len(summaries)} endpoint(s), {budget} at once: " + "; ".join(summaries)
        )
    if failed:
        raise endpoints_failed({endpoint: failed[endpoint] for endpoint in selected if endpoint in failed})


def fetch_rank(endpoint: str) -> int:
    """Where an endpoint's fetch starts among the district's (LARGEST_FIRST; any other after them)."""
    return LARGEST_FIRST.index(endpoint) if endpoint in LARGEST_FIRST else len(LARGEST_FIRST)


def endpoints_failed(failed: dict[str, str]) -> dg.Failure:
    """The step's failure: the first failed endpoint's error on the first line (what a sync summary or an alert
    quotes), then how many more failed and each one's error; `failed_endpoints` in its metadata."""
    (first, *more) = failed.values()
    also = f" (and {len(more)} more endpoint(s) failed: {', '.join(list(failed)[1:])})" if more else ""
    return dg.Failure(
        description="\n".join([first + also, *more]), metadata={"failed_endpoints": dg.MetadataValue.json(failed)}
    )


def landed_metadata(
    context: dg.AssetExecutionContext, district: DistrictConfig, outcome: FetchOutcome
) -> "dict[str, dg.RawMetadataValue]":
    """What the UI shows beside an endpoint's materialisation; warns of records held until confirmed gone."""
    metadata: dict[str, dg.RawMetadataValue] = {
        "offered": outcome.offered,
        "mode": outcome.mode,
        "mode_reason": outcome.mode_reason,
        "records": outcome.records,
        "pages": outcome.pages,
        "bytes": outcome.bytes,
        "watermark_used": outcome.watermark_from or "none",
        "watermark_next": outcome.watermark_to or "unchanged",
        "batch_id": outcome.batch_id or "none",
        "duration_s": outcome.duration_s,
        "malformed": outcome.malformed,
    }
    if outcome.note:
        metadata["note"] = outcome.note
    if outcome.confirmations:
        metadata["confirmations"] = dg.MetadataValue.json(outcome.confirmations)
        if held := outcome.confirmations.get("held"):
            context.log.warning(
                f"district '{district.id}', endpoint {outcome.endpoint}: {held} records not served by this full sync "
                f"are kept until confirmed gone ({outcome.confirmations.get('held_reason')})"
            )
    metadata.update(provider_metadata(district, outcome.endpoint))
    return metadata


def fetch_summary(outcome: FetchOutcome) -> str:
    """An endpoint's part of the step's log line: how it was fetched, and what landed."""
    note = f" — {outcome.note}" if outcome.note else ""
    how = f"{outcome.endpoint} {outcome.mode} ({outcome.mode_reason})"
    return f"{how}, {outcome.records} records, {outcome.pages} pages{note}"


def endpoint_error(district: DistrictConfig, endpoint: str, error: BaseException) -> str:
    """A failed endpoint's error, naming district and endpoint (the client's own errors already do)."""
    message = str(error) or type(error).__name__
    return message if f"endpoint {endpoint}" in message else f"district '{district.id}', endpoint {endpoint}: {message}"


def provider_metadata(district: DistrictConfig, endpoint: str) -> "dict[str, dg.RawMetadataValue]":
    """The provider profile beside every fetch in the UI: which SIS, what we know of it, what is not read."""
    provider = district.provider
    metadata: dict[str, dg.RawMetadataValue] = {
        "provider": f"{provider.display_name} ({provider.key})",
        "provider_notes": dg.MetadataValue.md(provider.notes),
    }
    if ignored := district.ignored(endpoint):
        metadata["ignored_fields"] = ", ".join(sorted(ignored))
    return metadata


def fetch_concurrently(
    endpoints: Iterable[str],
    fetch: Callable[[str, Callable[[str], None]], FetchOutcome],
    budget: int,
    log: Callable[[str], None],
    *,
    on_abandon: Callable[[], None] = lambda: None,
) -> Iterator[tuple[str, FetchOutcome | Exception]]:
    """Run `fetch(endpoint, log)` for each endpoint, at most `budget` at once, and yield each endpoint with its
    outcome, or the exception it raised, as it finishes.

    The fetches' log lines reach `log` on the caller's thread (Dagster's logger belongs to the step's thread).
    Abandoned early (the run is terminated), the fetches not started are cancelled and `on_abandon` is called
    so that those running stop at their next request.
    """
    messages: queue.SimpleQueue[str] = queue.SimpleQueue()

    def drain() -> None:
        while not messages.empty():
            log(messages.get())

    pool = ThreadPoolExecutor(max_workers=budget, thread_name_prefix="oneroster-endpoint")
    pending: dict[Future[FetchOutcome], str] = {}
    try:
        pending = {pool.submit(fetch, endpoint, messages.put): endpoint for endpoint in endpoints}
        while pending:
            done, _ = wait(pending, timeout=0.5, return_when=FIRST_COMPLETED)
            drain()
            for future in done:
                endpoint = pending.pop(future)
                error = future.exception()
                if error is not None and not isinstance(error, Exception):
                    raise error  # not an endpoint's failure (SystemExit and the like): it ends the step
                yield endpoint, error if error is not None else future.result()
    finally:
        if pending:
            on_abandon()
        pool.shutdown(wait=True, cancel_futures=True)
        drain()


class OpenClients:
    """A `client_factory` for `fetch_endpoint` that keeps the REST clients it made, so that concurrent fetches
    can be stopped: once closed, a client's next request fails and its fetch discards its partial batch. By
    default a district's clients share its credentials, so one token serves all its endpoints."""

    def __init__(self, factory: Callable[[DistrictConfig], OneRosterClient] | None = None) -> None:
        self._factory = factory or SharedCredentials()
        self._lock = threading.Lock()
        self._clients: list[OneRosterClient] = []
        self._closed = False

    def __call__(self, district: DistrictConfig) -> OneRosterClient:
        client = self._factory(district)
        with self._lock:
            self._clients.append(client)
            if self._closed:
                client.close()
        return client

    def close(self) -> None:
        """Close every client made, and each one made from now on."""
        with self._lock:
            self._closed = True
            for client in self._clients:
                client.close()
