"""Provider profiles: what we know about each SIS's OneRoster service, as rows of data.

The client reads a profile for its page-size cap and concurrency; the registry reads it for auth
defaults and the endpoints a provider offers. Quirks belong here as fields, never as
``if provider == ...`` branches in the client. Issue 7 extends the table to the full SIS list; the values
below are conservative defaults until each provider is checked against its documentation.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class ProviderProfile:
    """What the pipeline assumes about one provider's OneRoster REST service.

    ``page_size_cap`` is the largest ``limit`` the provider honours (the client never asks for more);
    ``max_concurrency`` the parallel page requests it tolerates; ``client_auth_method`` and
    ``default_scope`` the OAuth 2 token-request defaults; ``auth_type`` ``"oauth2"`` or ``"oauth1"``;
    ``delta_filter_works`` whether ``filter=dateLastModified>...`` is trustworthy (else full syncs);
    ``endpoints`` the endpoints offered (``None`` = all).
    """

    key: str
    display_name: str
    page_size_cap: int = 1000
    max_concurrency: int = 4
    client_auth_method: str = "client_secret_basic"
    default_scope: str | None = None
    delta_filter_works: bool = True
    endpoints: frozenset[str] | None = None
    auth_type: str = "oauth2"
    notes: str = ""


PROVIDERS: dict[str, ProviderProfile] = {
    profile.key: profile
    for profile in (
        ProviderProfile(
            key="generic",
            display_name="Generic OneRoster 1.1 provider",
            notes="Spec defaults: OAuth 2 client credentials with HTTP Basic client authentication.",
        ),
        ProviderProfile(
            key="powerschool",
            display_name="PowerSchool SIS",
            notes="OneRoster through the PowerSchool plugin; OAuth 2 client credentials.",
        ),
        ProviderProfile(
            key="infinite-campus",
            display_name="Infinite Campus",
            notes="OneRoster 1.1 with OAuth 2 client credentials.",
        ),
        ProviderProfile(
            key="classlink",
            display_name="ClassLink Roster Server",
            auth_type="oauth1",
            notes="Roster Server signs requests with OAuth 1.0a HMAC-SHA256 (two-legged).",
        ),
        ProviderProfile(
            key="skyward",
            display_name="Skyward",
            max_concurrency=2,
            notes="Kept to two parallel requests until its rate limits are confirmed.",
        ),
        ProviderProfile(
            key="aeries",
            display_name="Aeries SIS",
            max_concurrency=2,
            notes="Kept to two parallel requests until its rate limits are confirmed.",
        ),
    )
}


def provider_profile(key: str) -> ProviderProfile:
    """Return the profile registered under ``key``; ``KeyError`` lists the known keys otherwise."""
    try:
        return PROVIDERS[key]
    except KeyError:
        raise KeyError(f"unknown provider {key!r} (known: {', '.join(sorted(PROVIDERS))})") from None
