"""Building a OneRoster client for a registered district: credentials from the environment, limits from the
provider profile. The only place where registry settings meet the OneRoster library."""

from __future__ import annotations

import threading

from roster_pipeline.config.registry import DistrictConfig, RestSource
from roster_pipeline.oneroster import OAuth1HmacSha256, OAuth2ClientCredentials, OneRosterClient, RetryPolicy
from roster_pipeline.oneroster.endpoints import scopes_for, version_key

RestAuth = OAuth2ClientCredentials | OAuth1HmacSha256


def rest_source_of(district: DistrictConfig) -> RestSource:
    """The district's REST source; TypeError for a CSV district."""
    source = district.source
    if not isinstance(source, RestSource):
        raise TypeError(f"district '{district.id}' has a {source.kind} source, not a REST API")
    return source


def credential_hint(source: RestSource) -> str:
    """What to check when the provider refuses a district's credentials: the variables, never their values."""
    return f"check {source.auth.client_id_env} / {source.auth.client_secret_env} (the registry's credential variables)"


def token_scope(district: DistrictConfig) -> str | None:
    """The scope a district's token request names: the registry's (or its provider's default) when set; for
    OneRoster 1.2 otherwise the narrowest scopes its endpoints need; for 1.1 none (the server's default)."""
    source = rest_source_of(district)
    if source.auth.scope:
        return source.auth.scope
    if source.version == "1.2":
        return scopes_for(district.endpoints, source.version)
    return None


def rest_client_for(
    district: DistrictConfig, auth: RestAuth | None = None, in_flight: threading.Semaphore | None = None
) -> OneRosterClient:
    """A client for a REST district, with its registry's read timeout and retry budget; raises
    MissingSecretError naming an unset credential variable. Clients given the same ``auth`` share its token, and
    those given the same ``in_flight`` their provider's `max_concurrency`."""
    source = rest_source_of(district)
    return OneRosterClient(
        source.base_url,
        auth or rest_auth_for(district),
        page_size=min(source.page_size, district.provider.page_size_cap),
        max_concurrency=district.provider.max_concurrency,
        timeout=district.network.read_timeout,
        retry=RetryPolicy(max_attempts=district.network.max_attempts),
        label=f"district '{district.id}'",
        version=version_key(source.version),
        in_flight=in_flight,
    )


def rest_auth_for(district: DistrictConfig) -> RestAuth:
    """The district's credentials as an httpx auth: an OAuth 2.0 token cache, or OAuth 1.0a signing."""
    auth_config = rest_source_of(district).auth
    client_id = district.secret(auth_config.client_id_env)
    client_secret = district.secret(auth_config.client_secret_env)
    if auth_config.type == "oauth2":
        assert auth_config.token_url is not None  # the registry requires it for oauth2
        return OAuth2ClientCredentials(
            auth_config.token_url,
            client_id,
            client_secret,
            scope=token_scope(district),
            client_auth_method=auth_config.client_auth_method,
        )
    return OAuth1HmacSha256(client_id, client_secret)


class SharedCredentials:
    """A client factory whose clients for one district share one auth, so the endpoints a run fetches side by
    side ask the provider for one token between them instead of one each (each token request is a round trip
    to the provider, and counts against its rate limit); and one budget of requests in flight, the provider's
    `max_concurrency`, which a district's last endpoint gets whole once the others are done."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._shared: dict[str, tuple[RestAuth, threading.Semaphore]] = {}

    def __call__(self, district: DistrictConfig) -> OneRosterClient:
        with self._lock:
            if district.id not in self._shared:
                limit = threading.BoundedSemaphore(district.provider.max_concurrency)
                self._shared[district.id] = (rest_auth_for(district), limit)
            auth, in_flight = self._shared[district.id]
        return rest_client_for(district, auth, in_flight)
