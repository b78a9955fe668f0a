"""Building a OneRoster client for a registered district: credentials from the environment, limits from the
provider profile. The only place where registry settings meet the OneRoster library."""

from __future__ import annotations

from roster_pipeline.oneroster import OAuth1HmacSha256, OAuth2ClientCredentials, OneRosterClient
from roster_pipeline.registry import DistrictConfig, RestSource


def rest_client_for(district: DistrictConfig, *, timeout: float = 30.0) -> OneRosterClient:
    """A client for a REST district; raises MissingSecretError naming an unset credential variable."""
    source = district.source
    if not isinstance(source, RestSource):
        raise TypeError(f"district '{district.id}' has a {source.kind} source, not a REST API")
    auth_config = source.auth
    client_id = district.secret(auth_config.client_id_env)
    client_secret = district.secret(auth_config.client_secret_env)
    auth: OAuth2ClientCredentials | OAuth1HmacSha256
    if auth_config.type == "oauth2":
        assert auth_config.token_url is not None  # the registry requires it for oauth2
        auth = OAuth2ClientCredentials(
            auth_config.token_url,
            client_id,
            client_secret,
            scope=auth_config.scope,
            client_auth_method=auth_config.client_auth_method,
        )
    else:
        auth = OAuth1HmacSha256(client_id, client_secret)
    return OneRosterClient(
        source.base_url,
        auth,
        page_size=min(source.page_size, district.provider.page_size_cap),
        max_concurrency=district.provider.max_concurrency,
        timeout=timeout,
        label=f"district '{district.id}'",
    )
