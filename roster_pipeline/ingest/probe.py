"""Probing a REST district's connection the way a careful engineer would, and remembering what works.

``roster-pipeline check DISTRICT`` asks for a token, then for each endpoint: is it offered; does the
``dateLastModified`` filter work (a far-future bound must return nothing, the epoch everything); is the page
size honoured; does the server send ``X-Total-Count`` and ``Link``; can the first page's records be read, and
if not, which field is to blame (a provider garbling one field everywhere wants ``ignore_fields``). The report
is printed and kept in the district's state folder (``capabilities.json``); the fetch reads it to choose full
syncs where the filter is broken and to skip endpoints the provider does not offer.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable
from dataclasses import asdict, dataclass, field, replace
from datetime import UTC, datetime
from typing import Any

from roster_pipeline.config.registry import DistrictConfig
from roster_pipeline.ingest.malformed import ignore_advice
from roster_pipeline.ingest.rest_sources import credential_hint, rest_client_for, rest_source_of, token_scope
from roster_pipeline.oneroster import EndpointNotOffered, Filter, OneRosterClient, OneRosterError, Page
from roster_pipeline.oneroster.endpoints import ENDPOINT_TABLES, EndpointSpec, version_key
from roster_pipeline.oneroster.flatten import flatten_records
from roster_pipeline.store.lake import Lake, now_iso

# Bounds no real record can fall outside: a filter that works returns nothing after the first and every
# record after the second.
FAR_FUTURE = datetime(2999, 1, 1, tzinfo=UTC)
EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


@dataclass
class EndpointCapability:
    """What one endpoint showed when probed. ``None`` means the probe could not tell."""

    endpoint: str
    required: bool
    configured: bool
    offered: bool | None
    status: int | None = None
    total_count_header: bool | None = None
    link_header: bool | None = None
    page_size_asked: int | None = None
    page_size_served: int | None = None
    page_size_honoured: bool | None = None
    filter_works: bool | None = None
    malformed: int | None = None  # records of the first page that cannot be read
    malformed_fields: dict[str, int] = field(default_factory=dict)  # ...and the fields to blame, with counts
    notes: list[str] = field(default_factory=list)


@dataclass
class CapabilityReport:
    """A district's probed capabilities, as printed by ``roster-pipeline check`` and stored for the fetch."""

    district_id: str
    provider: str
    version: str
    base_url: str
    probed_at: str
    auth: str
    token_ok: bool
    granted_scope: str | None = None
    endpoints: dict[str, EndpointCapability] = field(default_factory=dict)
    problems: list[str] = field(default_factory=list)

    @property
    def usable(self) -> bool:
        """A token was granted and every configured required endpoint answered."""
        return self.token_ok and all(cap.offered for cap in self.endpoints.values() if cap.configured and cap.required)

    def endpoint(self, name: str) -> EndpointCapability | None:
        """The probe result for endpoint ``name``, if it was probed."""
        return self.endpoints.get(name)

    @classmethod
    def from_document(cls, document: dict[str, Any]) -> CapabilityReport:
        """The report from its stored form (``asdict`` of it)."""
        data = dict(document)
        endpoints = {name: EndpointCapability(**cap) for name, cap in data.pop("endpoints", {}).items()}
        return cls(**data, endpoints=endpoints)


def probe_district(
    district: DistrictConfig, client_factory: Callable[[DistrictConfig], OneRosterClient] = rest_client_for
) -> CapabilityReport:
    """Probe a REST district's token endpoint and every endpoint of its OneRoster version.

    Raises TypeError for a CSV district and MissingSecretError for an unset credential variable.
    """
    source = rest_source_of(district)
    version = version_key(source.version)
    report = CapabilityReport(
        district_id=district.id,
        provider=district.provider.key,
        version=source.version,
        base_url=source.base_url,
        probed_at=now_iso("seconds"),
        auth=source.auth.type,
        token_ok=False,
    )
    with client_factory(district) as client:
        try:
            grant = client.request_token()
        except OneRosterError as error:
            refused = error.status in (401, 403)
            report.problems.append(f"token: {error}" + (f" — {credential_hint(source)}" if refused else ""))
            return report
        report.token_ok = True
        if grant is None:
            report.auth = "oauth1 (signed requests, no token endpoint)"
        else:
            asked = token_scope(district)
            report.auth = f"oauth2 client credentials (scope asked: {asked or 'none'})"
            report.granted_scope = grant.get("scope")
        for spec in ENDPOINT_TABLES[version]:
            capability = probe_endpoint(
                client, spec, configured=spec.name in district.endpoints, ignored=district.ignored(spec.name)
            )
            if grant is None and not report.endpoints and capability.status in (401, 403):
                # OAuth 1 has no token to ask for: the first signed request is the credential check.
                report.token_ok = False
                report.problems.append(
                    f"signed request refused: {'; '.join(capability.notes)} — {credential_hint(source)}"
                )
                return report
            report.endpoints[spec.name] = capability
            if capability.configured and capability.required and not capability.offered:
                report.problems.append(f"required endpoint {spec.name} did not answer: {'; '.join(capability.notes)}")
    return report


def probe_endpoint(
    client: OneRosterClient, spec: EndpointSpec, *, configured: bool = True, ignored: frozenset[str] = frozenset()
) -> EndpointCapability:
    """Probe one endpoint: offered, page size, paging headers, the dateLastModified filter, and whether the
    first page's records can be read (``ignored`` names fields the registry or profile says not to read)."""
    capability = EndpointCapability(spec.name, spec.required, configured, offered=None)
    # Probe every endpoint as optional, so "not offered" is a finding rather than an exception.
    probe = replace(spec, required=False)
    limit = client.page_size
    try:
        first = client.get_page(probe, limit=limit)
    except EndpointNotOffered as error:
        capability.offered, capability.status = False, error.status
        capability.notes.append(f"HTTP {error.status}: not offered")
        return capability
    except OneRosterError as error:
        capability.status = error.status
        capability.notes.append(str(error))
        return capability
    capability.offered = True
    served = len(first.records)
    capability.total_count_header = first.total is not None
    capability.link_header = first.link_header
    capability.page_size_asked, capability.page_size_served = limit, served
    capability.page_size_honoured = _page_size_honoured(client, probe, limit, served, first.total)
    if capability.page_size_honoured is False:
        capability.notes.append(f"asked for {limit} records per page, the server sent {served}")
    capability.filter_works = _filter_works(client, probe, limit, served, first.total, capability.notes)
    _readable(capability, first, ignored)
    return capability


def _readable(capability: EndpointCapability, first: Page, ignored: frozenset[str]) -> None:
    """Read the first page as a fetch would, and say which records, and which fields, cannot be read."""
    problems = list(first.malformed)
    flatten_records(capability.endpoint, "probe", first.records, ignored, problems=problems, first_position=None)
    capability.malformed = len(problems)
    capability.malformed_fields = dict(Counter(p.field for p in problems if p.field).most_common())
    if problems:
        capability.notes.append(
            f"{len(problems)} of {first.served} records on the first page cannot be read (first: {problems[0]})"
        )


def _page_size_honoured(
    client: OneRosterClient, spec: EndpointSpec, limit: int, served: int, total: int | None
) -> bool | None:
    if served > limit:
        return False
    if total is not None:
        return served == min(limit, total)
    if served == limit or served == 0:
        return True
    # A short first page without a total: it was the whole collection, or the server capped it.
    try:
        return not client.get_page(spec, offset=served, limit=limit).records
    except OneRosterError:
        return None


def _filter_works(
    client: OneRosterClient, spec: EndpointSpec, limit: int, served: int, total: int | None, notes: list[str]
) -> bool | None:
    try:
        future = client.get_page(spec, limit=1, filter=Filter.gt("dateLastModified", FAR_FUTURE))
        past = client.get_page(spec, limit=limit, filter=Filter.gt("dateLastModified", EPOCH))
    except OneRosterError as error:
        notes.append(f"dateLastModified filter refused: {error}")
        return False
    if served == 0:
        notes.append("empty collection: the dateLastModified filter could not be verified")
        return None
    works = True
    if future.records or future.total:
        notes.append(
            f"filter dateLastModified>'{FAR_FUTURE:%Y-%m-%d}' returned records (expected none): the filter is ignored"
        )
        works = False
    expected = total if total is not None and past.total is not None else served
    got = past.total if total is not None and past.total is not None else len(past.records)
    if got != expected:
        notes.append(f"filter dateLastModified>'{EPOCH:%Y-%m-%d}' matched {got} records, not all {expected}")
        works = False
    return works


def store_capabilities(lake: Lake, report: CapabilityReport) -> str:
    """Keep the report in the district's state folder (a fetch may read it at any moment); return where it is (a
    path, or an `s3://` URL)."""
    stored = lake.state(report.district_id).capabilities
    stored.write(asdict(report), indent=True)
    return stored.location


def load_capabilities(lake: Lake, district_id: str) -> CapabilityReport | None:
    """The district's last stored capability report, if ``check`` has been run."""
    document = lake.state(district_id).capabilities.read()
    return CapabilityReport.from_document(document) if document is not None else None


def format_report(report: CapabilityReport) -> str:
    """The report as plain text: one line per endpoint, then what to do about each problem."""

    def mark(value: bool | None) -> str:
        return {True: "yes", False: "NO", None: "?"}[value]

    lines = [
        f"District {report.district_id} — provider {report.provider} — OneRoster {report.version}",
        f"  base URL  {report.base_url}",
        f"  auth      {report.auth}: {_auth_outcome(report)}"
        + (f" (scope granted: {report.granted_scope})" if report.granted_scope else ""),
        f"  probed at {report.probed_at}",
        "",
        f"{'endpoint':18} {'config':>6} {'offered':>8} {'filter':>7} {'page size':>12} {'total':>6} {'link':>5}",
    ]
    for cap in report.endpoints.values():
        size = f"{cap.page_size_served}/{cap.page_size_asked}" if cap.page_size_asked else "-"
        if cap.page_size_honoured is False:
            size += "!"
        lines.append(
            f"{cap.endpoint:18} {'yes' if cap.configured else 'no':>6} {mark(cap.offered):>8} "
            f"{mark(cap.filter_works):>7} {size:>12} {mark(cap.total_count_header):>6} {mark(cap.link_header):>5}"
        )
        lines.extend(f"    {cap.endpoint}: {note}" for note in cap.notes)
    if report.problems:
        lines.append("")
        lines.extend(f"problem: {problem}" for problem in report.problems)
    broken = [c.endpoint for c in report.endpoints.values() if c.configured and c.filter_works is False]
    if broken:
        lines.append(f"\nfull syncs for {', '.join(broken)}: the dateLastModified filter does not work there")
    missing = [c.endpoint for c in report.endpoints.values() if c.configured and c.offered is False]
    if missing:
        lines.append(f"skipped until offered: {', '.join(missing)}")
    lines.extend(_ignore_advice(report))
    return "\n".join(lines)


def _auth_outcome(report: CapabilityReport) -> str:
    if not report.token_ok:
        return "FAILED"
    # OAuth 1 has no token: each request is signed, and the first endpoint's answer proved the credentials.
    return "signed requests accepted" if report.auth.startswith("oauth1") else "token granted"


def _ignore_advice(report: CapabilityReport) -> list[str]:
    """Where one field makes most of a first page unreadable, the registry line that would land those records."""
    advice = []
    for cap in report.endpoints.values():
        if cap.configured and cap.malformed:
            line = ignore_advice(report.district_id, cap.endpoint, cap.malformed_fields, cap.malformed)
            if line:
                advice.append(f"{cap.endpoint}: {line}")
    return ["", *advice] if advice else []
