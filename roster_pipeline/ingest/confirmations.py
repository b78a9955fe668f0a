"""Confirming a REST full sync's unseen records one by one before any of them is tombstoned.

A full sync pages a collection that the SIS keeps changing: when records before the current offset are deleted,
later pages shift back and live records are never served. Counting against ``X-Total-Count`` cannot catch it
(the count matches). So a record a full sync did not see is only *unseen*; it is gone when the single-record
endpoint (``GET users/{id}``) answers 404/410 or ``status: tobedeleted``, and it was skipped when it answers the
record, which then lands with the batch. Lookups are bounded per run (the registry's
``network.max_confirmations``); past the bound, and whenever the single-record endpoint cannot be trusted, the
tombstones are held — kept live and asked about again by the next full sync — never guessed.
"""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any

from roster_pipeline.oneroster import OneRosterClient, OneRosterError
from roster_pipeline.oneroster.endpoints import EndpointSpec


@dataclass
class Confirmation:
    """What a full sync learned about the live records it did not see."""

    unseen: int = 0
    landed: list[dict[str, Any]] = field(default_factory=list)  # every record the provider still answered
    gone: list[str] = field(default_factory=list)  # 404/410 or tobedeleted: may be tombstoned
    held: list[str] = field(default_factory=list)  # not confirmed either way: kept
    reason: str | None = None  # why some were held

    @property
    def present(self) -> int:
        """Records still active: skipped by paging, and landed with the batch."""
        return sum(1 for record in self.landed if record.get("status") != "tobedeleted")

    @property
    def looked_up(self) -> int:
        return self.present + len(self.gone)

    def summary(self) -> dict[str, Any]:
        """The counts for the run's metadata and ``ops.sync_runs``."""
        counts: dict[str, Any] = {
            "unseen": self.unseen,
            "looked_up": self.looked_up,
            "present_landed": self.present,
            "confirmed_gone": len(self.gone),
            "held": len(self.held),
        }
        if self.reason:
            counts["held_reason"] = self.reason
        return counts

    def note(self) -> str | None:
        """One line for the run's note, when there was anything to confirm."""
        if not self.unseen:
            return None
        line = (
            f"{self.unseen} live records not served by the full sync: {self.present} still present "
            f"(skipped by paging, landed), {len(self.gone)} confirmed gone"
        )
        if self.held:
            line += f", {len(self.held)} held ({self.reason})"
        return line


def confirm_unseen(
    client: OneRosterClient, spec: EndpointSpec, unseen: set[str], seen_example: str | None, budget: int
) -> Confirmation:
    """Ask the provider about each unseen record, at most ``budget`` of them.

    ``seen_example`` is a record the full sync did see: it is looked up first, since a provider without a working
    single-record endpoint answers 404 for every id, which would otherwise read as "everything is gone".
    """
    result = Confirmation(unseen=len(unseen))
    if not unseen:
        return result
    ordered = sorted(unseen)
    if budget <= 0:
        result.held, result.reason = ordered, "network.max_confirmations is 0"
        return result
    if trust_problem := _lookup_problem(client, spec, seen_example):
        result.held, result.reason = ordered, trust_problem
        return result
    asked, result.held = ordered[:budget], ordered[budget:]
    if result.held:
        result.reason = f"more than network.max_confirmations={budget} to look up; the next full sync asks again"
    with ThreadPoolExecutor(max_workers=client.max_concurrency, thread_name_prefix="oneroster-confirm") as pool:
        for sourced_id, answer in zip(asked, pool.map(lambda i: _look_up(client, spec, i), asked), strict=True):
            if isinstance(answer, OneRosterError):  # one record the provider cannot answer for is held, not fatal
                result.held.append(sourced_id)
                result.reason = result.reason or f"looking it up failed: {answer}"
                continue
            if answer is None or answer.get("status") == "tobedeleted":
                result.gone.append(sourced_id)
            if answer is not None:  # a tobedeleted one lands too, with its own date
                result.landed.append(answer)
    return result


def _look_up(client: OneRosterClient, spec: EndpointSpec, sourced_id: str) -> dict[str, Any] | OneRosterError | None:
    try:
        return client.get_record(spec, sourced_id)
    except OneRosterError as error:
        return error


def _lookup_problem(client: OneRosterClient, spec: EndpointSpec, seen_example: str | None) -> str | None:
    """Why single-record answers cannot be trusted for ``spec``, or None when a record just seen is found."""
    if seen_example is None:
        return "the full sync saw no record to check the single-record endpoint against"
    try:
        record = client.get_record(spec, seen_example)
    except OneRosterError as error:
        return f"the single-record endpoint {spec.path}/{{id}} failed: {error}"
    if record is None:
        return f"the single-record endpoint {spec.path}/{{id}} does not find {seen_example!r}, which was just served"
    return None
